#!/usr/bin/env bash
# The main job end to end on the running local stack (make demo runs `make up` first).
# Only an explicit CLUSTER=1 sends the file through the cluster's pods; a stack merely left in
# cluster mode runs the quick demo on the host processes.
LAKEHOUSE_DEMO_IN_CLUSTER="${CLUSTER:-0}"
source "$(dirname "$0")/lib.sh"
eval "$("$DEVSTACK_DIR/stack.sh" env)"
export LAKEHOUSE_DEMO_IN_CLUSTER
exec "$REPO_ROOT/.venv/bin/python" -m lakehouse.devtools.demo
