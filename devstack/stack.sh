#!/usr/bin/env bash
# The local stack as a whole: up | down | status | logs [SERVICE] | env
source "$(dirname "$0")/lib.sh"

# Start order is dependency order: the catalog needs PostgreSQL and S3.
SERVICES=(postgres s3 kafka iceberg-rest kubernetes)
# NiFi (about 700 MiB and 20-50 s to start) joins with NIFI=1, as `make test` does, or when it
# already runs, so that down/status/env still see it.
if [[ "${NIFI:-0}" == 1 ]] || is_running nifi; then SERVICES+=(nifi); fi
# Platform processes run on top of the servers; Prometheus scrapes the operator and the API.
PLATFORM=(operator api prometheus)
# CLUSTER=1: the servers bind the node address, a node joins the control plane, and the chart runs
# the operator and the API as pods (namespace $CLUSTER_RELEASE_NAMESPACE) beside the host processes.
if [[ "$CLUSTER" == 1 ]]; then PLATFORM+=(cluster release); fi

service() { "$DEVSTACK_DIR/services/$1.sh" "${@:2}"; }

# A stack running in the other mode (servers bound elsewhere) is stopped first.
switch_mode() {
  local running=0 s
  for s in "${SERVICES[@]}" "${PLATFORM[@]}"; do is_running "$s" && running=1; done
  [[ -f "$CLUSTER_MARKER" ]] && is_running containerd && running=1
  local current=0
  [[ -f "$CLUSTER_MARKER" ]] && current=1
  if ((running)) && [[ "$current" != "$CLUSTER" ]]; then
    log "the stack runs with CLUSTER=$current: stopping it to start with CLUSTER=$CLUSTER"
    CLUSTER="$current" "$DEVSTACK_DIR/stack.sh" down
  fi
  if [[ "$CLUSTER" == 1 ]]; then touch "$CLUSTER_MARKER"; else rm -f "$CLUSTER_MARKER"; fi
}

up() {
  local started=$SECONDS s
  switch_mode
  "$DEVSTACK_DIR/python.sh"
  # The node address must exist before a server can bind it.
  if [[ "$CLUSTER" == 1 ]]; then service cluster network; fi
  for s in "${SERVICES[@]}"; do service "$s" install; done
  "$DEVSTACK_DIR/spark.sh" install
  "$DEVSTACK_DIR/helm.sh" setup  # the charts' tests install them into the local control plane
  "$DEVSTACK_DIR/kubeconform.sh" setup  # the chart test validates its manifests offline too
  "$DEVSTACK_DIR/airflow.sh" setup  # the DAG's tests run it with `airflow dags test`
  for s in "${PLATFORM[@]}"; do service "$s" install; done  # Prometheus is built here; with CLUSTER=1 the node and images
  log "installed in $((SECONDS - started))s"
  for s in "${SERVICES[@]}"; do service "$s" start; done
  "$DEVSTACK_DIR/migrate.sh"
  for s in "${PLATFORM[@]}"; do service "$s" start; done
  log "stack up in $((SECONDS - started))s; run: eval \"\$(make -s env)\""
}

# Every part is stopped even when one fails (a failure still fails the command, at the end). The
# cluster's parts go whenever anything of theirs is left, whatever CLUSTER says.
down() {
  local i failed=0 parts=("${PLATFORM[@]}")
  if [[ "$CLUSTER" != 1 ]] && cluster_left; then parts+=(cluster); fi
  for ((i = ${#parts[@]} - 1; i >= 0; i--)); do service "${parts[i]}" stop || failed=1; done
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do service "${SERVICES[i]}" stop || failed=1; done
  if [[ "$CLUSTER" == 1 ]] || cluster_left; then service cluster network-down || failed=1; fi
  service nifi unguard || failed=1
  rm -f "$CLUSTER_MARKER"
  return "$failed"
}

cluster_left() { [[ -f "$CLUSTER_MARKER" ]] || is_running containerd || ip link show "$CLUSTER_BRIDGE" >/dev/null 2>&1; }

status() {
  local s failed=0
  for s in "${SERVICES[@]}" "${PLATFORM[@]}"; do service "$s" status || failed=1; done
  return "$failed"
}

logs() {
  if [[ -n "${1:-}" ]]; then exec tail -n 200 -F "$LOG_DIR/$1.log"; fi
  local f
  for f in "$LOG_DIR"/*.log; do
    [[ -e "$f" ]] || continue
    printf '==> %s <==\n' "$f"; tail -n 20 "$f"; echo
  done
}

# env-services: the servers' endpoints only (what the platform processes are started with).
env_services() {
  local s
  for s in "${SERVICES[@]}"; do service "$s" env; done
  "$DEVSTACK_DIR/spark.sh" env
}

env() {
  echo "export LAKEHOUSE_STATE_DIR=$LAKEHOUSE_STATE_DIR"
  env_services
  for s in "${PLATFORM[@]}"; do service "$s" env; done
}

case "${1:-}" in
  up|down|status|env) "$1" ;;
  env-services) env_services ;;
  logs) logs "${2:-}" ;;
  *) echo "usage: $0 up|down|status|logs [SERVICE]|env" >&2; exit 2 ;;
esac
