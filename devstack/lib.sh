# Shared helpers for the local stack scripts. Source it; do not execute it.
# Layout:
#   $LAKEHOUSE_CACHE_DIR  downloads and builds (Go/Maven/uv caches, built binaries); safe to keep forever
#   $LAKEHOUSE_STATE_DIR  data, logs, pid files, certificates, kubeconfig of the running stack
set -euo pipefail

DEVSTACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$DEVSTACK_DIR/.." && pwd)"
: "${LAKEHOUSE_CACHE_DIR:=$REPO_ROOT/.cache}"
: "${LAKEHOUSE_STATE_DIR:=$REPO_ROOT/.state}"
: "${LAKEHOUSE_HEALTH_TIMEOUT:=180}"
export LAKEHOUSE_CACHE_DIR LAKEHOUSE_STATE_DIR

# CLUSTER=1 (`make up CLUSTER=1`, `make test`) adds the one-node cluster; the mode of a running stack
# outlives the command that started it, so `make env`, `status` and `down` need not repeat it.
CLUSTER_MARKER="$LAKEHOUSE_STATE_DIR/cluster.enabled"
if [[ -z "${CLUSTER:-}" ]]; then
  if [[ -f "$CLUSTER_MARKER" ]]; then CLUSTER=1; else CLUSTER=0; fi
fi
export CLUSTER

# shellcheck source=devstack/versions.env
source "$DEVSTACK_DIR/versions.env"
# shellcheck source=devstack/config.env
source "$DEVSTACK_DIR/config.env"

LOG_DIR="$LAKEHOUSE_STATE_DIR/logs"
RUN_DIR="$LAKEHOUSE_STATE_DIR/run"
BIN_DIR="$LAKEHOUSE_CACHE_DIR/bin"
mkdir -p "$LAKEHOUSE_CACHE_DIR" "$LAKEHOUSE_STATE_DIR" "$LOG_DIR" "$RUN_DIR" "$BIN_DIR"

# Go and Maven keep their caches beside ours so a second install is offline-fast.
export GOMODCACHE="$LAKEHOUSE_CACHE_DIR/go/mod"
export GOCACHE="$LAKEHOUSE_CACHE_DIR/go/build"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
# The machine's Go (this kind ships it at /usr/local/go/bin); never a toolchain downloaded on the fly.
GO="$(command -v go || echo /usr/local/go/bin/go)"

# A Go command built from the Go module proxy into $BIN_DIR/NAME-VERSION/ (once; an interrupted build
# leaves only its .tmp folder). Usage: go_tool_install NAME VERSION PACKAGE [EXTRA -ldflags...]
go_tool_install() {
  local name="$1" version="$2" package="$3" ldflags="-s -w ${4:-}"
  [[ -x "$BIN_DIR/$name-$version/$name" ]] && return 0
  log "building $name $version from the Go module proxy (first time only)"
  local tmp="$BIN_DIR/$name-$version.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  GOBIN="$tmp" CGO_ENABLED=0 "$GO" install -trimpath -ldflags "$ldflags" "$package@$version" >&2
  rm -rf "$BIN_DIR/$name-$version"
  mv "$tmp" "$BIN_DIR/$name-$version"
}
export GOTOOLCHAIN=local
MAVEN_REPO="$LAKEHOUSE_CACHE_DIR/m2"
JAVA17_HOME="${JAVA17_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}"
JAVA21PLUS_HOME="${JAVA21PLUS_HOME:-$(ls -d /usr/lib/jvm/temurin-2*-jdk-amd64 2>/dev/null | sort -V | tail -n1)}"

log() { printf '[devstack %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# mvn_fetch DEST_DIR POM_FILE: resolves a pom's runtime dependencies into DEST_DIR (jar files only).
mvn_fetch() {
  local dest="$1" pom="$2"
  mkdir -p "$dest"
  mvn -q -B -Dstyle.color=never -f "$pom" -Dmaven.repo.local="$MAVEN_REPO" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dest" >&2
}

pidfile() { echo "$RUN_DIR/$1.pid"; }

# is_running NAME: true when NAME's recorded process is alive.
is_running() {
  local pf; pf="$(pidfile "$1")"
  [[ -f "$pf" ]] || return 1
  local pid; pid="$(cat "$pf")"
  kill -0 "$pid" 2>/dev/null || return 1
  # A killed child not yet reaped is a zombie: dead for our purposes.
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]]
}

# start_daemon NAME CMD...: runs CMD in its own session (so stop can kill the whole group),
# logging to $LOG_DIR/NAME.log. Does nothing when NAME already runs.
start_daemon() {
  local name="$1"; shift
  if is_running "$name"; then log "$name already running (pid $(cat "$(pidfile "$name")"))"; return 0; fi
  log "starting $name"
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$(pidfile "$name")"
}

# stop_daemon NAME: TERM the process group, then KILL after a grace period.
stop_daemon() {
  local name="$1" pf pid i
  pf="$(pidfile "$name")"
  [[ -f "$pf" ]] || return 0
  pid="$(cat "$pf")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pf"
}

# wait_for NAME CMD...: polls CMD until it succeeds or LAKEHOUSE_HEALTH_TIMEOUT seconds pass.
wait_for() {
  local name="$1"; shift
  local deadline=$((SECONDS + LAKEHOUSE_HEALTH_TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ! is_running "$name"; then
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      die "$name exited during start-up (log: $LOG_DIR/$name.log)"
    fi
    if (( SECONDS >= deadline )); then
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      die "$name not healthy after ${LAKEHOUSE_HEALTH_TIMEOUT}s (log: $LOG_DIR/$name.log)"
    fi
    sleep 0.5
  done
  log "$name healthy"
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# status_line NAME HEALTH_CMD...: one line for `make status`.
status_line() {
  local name="$1"; shift
  if ! is_running "$name"; then printf '%-24s %s\n' "$name" "stopped"; return 1; fi
  if "$@" >/dev/null 2>&1; then printf '%-24s %s\n' "$name" "healthy (pid $(cat "$(pidfile "$name")"))"
  else printf '%-24s %s\n' "$name" "UNHEALTHY (pid $(cat "$(pidfile "$name")"))"; return 1; fi
}

# stack_kubectl ARGS...: kubectl on the stack's cluster; KUBECONFIG_OVERRIDE points it at another one
# (devstack/kind.sh gives a kind cluster the same objects).
stack_kubectl() {
  "$DEVSTACK_DIR/services/kubernetes.sh" kubectl ${KUBECONFIG_OVERRIDE:+--kubeconfig "$KUBECONFIG_OVERRIDE"} "$@"
}

# The API key's SHA-256, the only form in which servers get it (from stdin: the key is never an argument).
api_key_sha256() { ensure_local_secret api-key | sha256sum | cut -d' ' -f1; }

# Credentials of the local stack: generated once, kept in the state folder, never in code paths.
ensure_local_secret() {
  local name="$1" file="$LAKEHOUSE_STATE_DIR/secrets/$1"
  mkdir -p "$LAKEHOUSE_STATE_DIR/secrets"; chmod 700 "$LAKEHOUSE_STATE_DIR/secrets"
  [[ -s "$file" ]] || (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$file")
  cat "$file"
}
