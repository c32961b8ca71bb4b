#!/usr/bin/env bash
# The IngestionRun operator as a local process against the local control plane.
# start installs the CRD and the runs' namespace first; the operator reads every endpoint and
# credential from the environment, exactly as in a cluster.
source "$(dirname "$0")/../lib.sh"

NAME=operator
kubectl_() { "$DEVSTACK_DIR/services/kubernetes.sh" kubectl "$@"; }
healthy() { curl -fsS "http://$LAKEHOUSE_BIND:$OPERATOR_HEALTH_PORT/healthz" >/dev/null; }

install() { [[ -x "$REPO_ROOT/.venv/bin/python" ]] || "$DEVSTACK_DIR/python.sh"; }

install_crds() {
  kubectl_ apply --server-side --force-conflicts -f "$REPO_ROOT/charts/lakehouse/crds/" >/dev/null
  # `kubectl wait` errors out on a CRD that has no conditions yet, so poll instead. KopfPeering: replicas.
  local deadline=$((SECONDS + 60)) crd
  for crd in ingestionruns.lakehouse.dev kopfpeerings.kopf.dev; do
    until [[ "$(kubectl_ get crd "$crd" \
        -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" == True ]]; do
      ((SECONDS < deadline)) || die "CRD $crd not established after 60s"
      sleep 0.3
    done
  done
  kubectl_ get namespace "$LAKEHOUSE_NAMESPACE" >/dev/null 2>&1 || kubectl_ create namespace "$LAKEHOUSE_NAMESPACE" >/dev/null
}

start() {
  install
  install_crds
  # The stack's endpoints and credentials reach the process through its environment only; a running
  # operator started with other ones (say NiFi joined the stack since) is restarted to pick them up.
  local services fingerprint_file="$RUN_DIR/$NAME.env-sha256"
  # Whether it maintains tables counts too (LAKEHOUSE_MAINTENANCE_ENABLED, below).
  services="$("$DEVSTACK_DIR/stack.sh" env-services)
LAKEHOUSE_MAINTENANCE_ENABLED=${LAKEHOUSE_MAINTENANCE_ENABLED:-true}"
  if is_running "$NAME"; then
    if [[ "$(cat "$fingerprint_file" 2>/dev/null)" == "$(sha256sum <<<"$services")" ]]; then
      log "$NAME already running"
      return 0
    fi
    log "the stack's services or settings changed since $NAME started: restarting it"
    stop_daemon "$NAME"
  fi
  eval "$services"
  sha256sum <<<"$services" > "$fingerprint_file"
  export LAKEHOUSE_NAMESPACE LAKEHOUSE_HEALTH_PORT="$OPERATOR_HEALTH_PORT" LAKEHOUSE_METRICS_PORT="$OPERATOR_METRICS_PORT"
  export LAKEHOUSE_LISTEN_HOST="$LAKEHOUSE_BIND"  # never every address of the host
  export PYTHONUNBUFFERED=1
  # Spark runs as local spark-submit children here; in a cluster the chart selects operator mode.
  export LAKEHOUSE_SPARK_ENABLED="${LAKEHOUSE_SPARK_ENABLED:-true}" LAKEHOUSE_SPARK_MODE="${LAKEHOUSE_SPARK_MODE:-local}"
  # The tests' and benchmarks' scratch tables live in these Iceberg namespaces (operator/lakehouse_operator/access.py).
  export LAKEHOUSE_SANDBOX_NAMESPACES="${LAKEHOUSE_SANDBOX_NAMESPACES:-bronze_*,bench}"
  # Table maintenance (lakehouse/maintenance/) every minute here instead of each contract's interval, so that
  # `make demo` shows a scheduled run; checked every 10 s. `make test` and `make bench` turn it off
  # (LAKEHOUSE_MAINTENANCE_ENABLED=false): the operator restarts with it off, and with it on at the next `make up`.
  export LAKEHOUSE_MAINTENANCE_INTERVAL_SECONDS="${LAKEHOUSE_MAINTENANCE_INTERVAL_SECONDS:-60}"
  export LAKEHOUSE_MAINTENANCE_CHECK_SECONDS="${LAKEHOUSE_MAINTENANCE_CHECK_SECONDS:-10}"
  start_daemon "$NAME" "$REPO_ROOT/.venv/bin/python" -m lakehouse_operator
  wait_for "$NAME" healthy
}

stop() { stop_daemon "$NAME"; }
status() { status_line "$NAME" healthy; }
env() {
  echo "export LAKEHOUSE_NAMESPACE=$LAKEHOUSE_NAMESPACE"
  echo "export LAKEHOUSE_OPERATOR_METRICS_URL=http://$LAKEHOUSE_BIND:$OPERATOR_METRICS_PORT/metrics"
}

case "${1:-}" in
  install|start|stop|status|env) "$1" ;;
  restart) stop; start ;;
  *) echo "usage: $0 install|start|stop|restart|status|env" >&2; exit 2 ;;
esac
