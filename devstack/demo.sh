#!/usr/bin/env bash
# The main job end to end on the running local stack (make demo runs `make up` first).
source "$(dirname "$0")/lib.sh"
eval "$("$DEVSTACK_DIR/stack.sh" env)"
exec "$REPO_ROOT/.venv/bin/python" -m lakehouse.devtools.demo
