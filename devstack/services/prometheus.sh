#!/usr/bin/env bash
# Prometheus for the local stack: prometheus and promtool $PROMETHEUS_VERSION (Go module
# github.com/prometheus/prometheus; module v0.3XY.Z is Prometheus 3.XY.Z), built from the Go module proxy
# into $LAKEHOUSE_CACHE_DIR/bin. It scrapes the operator and the API every 5 s and evaluates the
# platform's alert rules (charts/lakehouse/files/prometheus-rules.yaml, the same file the chart's
# PrometheusRule is made of). Listens on $LAKEHOUSE_BIND:$PROMETHEUS_PORT only: with the cluster that is
# the node address, whose ports pods cannot reach unless services/cluster.sh lists them (it does not).
# State: $LAKEHOUSE_STATE_DIR/prometheus (prometheus.yml, written on every start; data/, the TSDB).
# Usage: prometheus.sh install|start|stop|status|env|promtool ARGS...
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/../lib.sh"

NAME=prometheus
MODULE=github.com/prometheus/prometheus
OUT_DIR="$BIN_DIR/prometheus-$PROMETHEUS_VERSION"
PROMETHEUS_BIN="$OUT_DIR/prometheus"
PROMTOOL_BIN="$OUT_DIR/promtool"
PROMETHEUS_STATE="$LAKEHOUSE_STATE_DIR/prometheus"
CONFIG_FILE="$PROMETHEUS_STATE/prometheus.yml"
RULES_FILE="$REPO_ROOT/charts/lakehouse/files/prometheus-rules.yaml"
PROMETHEUS_URL="http://$LAKEHOUSE_BIND:$PROMETHEUS_PORT"
# netgo: upstream's release tag (pure-Go DNS). remove_all_sd: no cloud or Kubernetes service discovery
# (static targets only), which leaves out the cloud SDKs and most of the build. No builtinassets: the
# web UI is not built (it needs npm); the HTTP API, which is all the stack uses, is complete without it.
BUILD_TAGS=netgo,remove_all_sd

# Keyed on what the binaries are built from, so another version or tag list rebuilds.
build_key() { echo "$MODULE@$PROMETHEUS_VERSION tags=$BUILD_TAGS" | sha256sum | cut -d' ' -f1; }
installed() {
  [[ -x "$PROMETHEUS_BIN" && -x "$PROMTOOL_BIN" && -f "$OUT_DIR/.key" && "$(cat "$OUT_DIR/.key")" == "$(build_key)" ]]
}

# module_json FIELD: one string field of `go mod download -json` (downloads the module the first time).
module_json() {
  "$GO" mod download -json "$MODULE@$PROMETHEUS_VERSION" \
    | sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p" | head -n1
}

cmd_install() {
  if installed; then log "prometheus $PROMETHEUS_VERSION already built"; return 0; fi
  local dir version stamp tmp="$OUT_DIR.tmp" pkg=github.com/prometheus/common/version
  dir="$(module_json Dir)"
  [[ -n "$dir" && -f "$dir/VERSION" ]] || die "go mod download of $MODULE@$PROMETHEUS_VERSION gave no module folder"
  # The module's VERSION file holds the Prometheus release (3.16.0 for v0.316.0).
  version="$(cat "$dir/VERSION")"
  stamp="$(sed -n 's/.*"Time":"\([0-9-]*\)T\([0-9:]*\).*/\1 \2/p' \
    "$GOMODCACHE/cache/download/$MODULE/@v/$PROMETHEUS_VERSION.info")"
  log "building prometheus $version (module $PROMETHEUS_VERSION) from the Go module proxy (first time only)"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # The module's go.mod has no replace directives, so `go install pkg@version` builds exactly its go.sum.
  # Upstream's release flags (.promu.yml): no cgo, the version stamped into prometheus/common/version.
  GOBIN="$tmp" CGO_ENABLED=0 "$GO" install -trimpath -tags "$BUILD_TAGS" -ldflags "-s -w \
      -X $pkg.Version=$version -X $pkg.Branch=$PROMETHEUS_VERSION -X $pkg.BuildUser=lakehouse-devstack \
      -X '$pkg.BuildDate=${stamp// /-}'" \
    "$MODULE/cmd/prometheus@$PROMETHEUS_VERSION" "$MODULE/cmd/promtool@$PROMETHEUS_VERSION" >&2
  build_key > "$tmp/.key"
  rm -rf "$OUT_DIR"
  mv "$tmp" "$OUT_DIR"
}

# The targets are the stack's own processes on the stack address; `job` names are the ones the rules and
# dashboards use (the chart's ServiceMonitors set the same).
write_config() {
  mkdir -p "$PROMETHEUS_STATE/data"
  cat > "$CONFIG_FILE.tmp" <<EOF
# Written by devstack/services/prometheus.sh on every start; edit the script, not this file.
global:
  scrape_interval: 5s
  scrape_timeout: 4s
  evaluation_interval: 5s
rule_files:
  - $RULES_FILE
storage:
  tsdb:
    retention:
      time: $PROMETHEUS_RETENTION
scrape_configs:
  - job_name: lakehouse-operator
    static_configs:
      - targets: ["$LAKEHOUSE_BIND:$OPERATOR_METRICS_PORT"]
  - job_name: lakehouse-api
    metrics_path: /metrics
    static_configs:
      - targets: ["$LAKEHOUSE_BIND:$API_PORT"]
EOF
  local checked
  checked="$("$PROMTOOL_BIN" check config --lint=none "$CONFIG_FILE.tmp" 2>&1)" \
    || { printf '%s\n' "$checked" >&2; die "invalid Prometheus configuration or rules"; }
  mv "$CONFIG_FILE.tmp" "$CONFIG_FILE"
}

healthy() { curl -fsS --max-time 5 -o /dev/null "$PROMETHEUS_URL/-/ready"; }

cmd_start() {
  installed || cmd_install
  write_config
  if is_running "$NAME"; then
    # SIGHUP re-reads the configuration and the rule files: a start picks up edited rules.
    log "$NAME already running: reloading its configuration and rules"
    kill -HUP "$(cat "$(pidfile "$NAME")")"
    wait_for "$NAME" healthy
    return 0
  fi
  # No --web.enable-lifecycle: the HTTP API cannot stop or reload it.
  GOMEMLIMIT="$PROMETHEUS_GOMEMLIMIT" start_daemon "$NAME" "$PROMETHEUS_BIN" \
    --config.file="$CONFIG_FILE" --storage.tsdb.path="$PROMETHEUS_STATE/data" \
    --web.listen-address="$LAKEHOUSE_BIND:$PROMETHEUS_PORT" --web.page-title="lakehouse devstack"
  wait_for "$NAME" healthy
  log "prometheus ready at $PROMETHEUS_URL (scraping every 5s, rules: $RULES_FILE)"
}

cmd_env() {
  echo "export PROMETHEUS_URL=$PROMETHEUS_URL"
  printf 'export PROMTOOL=%q\n' "$PROMTOOL_BIN"
}

case "${1:-}" in
  install) cmd_install ;;
  start)   cmd_start ;;
  stop)    stop_daemon "$NAME" ;;
  status)  status_line "$NAME" healthy ;;
  env)     cmd_env ;;
  promtool) shift; installed || cmd_install; exec "$PROMTOOL_BIN" "$@" ;;
  *)       echo "usage: $0 install|start|stop|status|env|promtool ARGS..." >&2; exit 2 ;;
esac
