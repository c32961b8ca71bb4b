#!/usr/bin/env bash
# The Datasource API (FastAPI under uvicorn) as a local process in front of the local stack.
# Its API key is generated once into the state folder; the server is given only the key's
# SHA-256, through its environment, exactly as a cluster gives it a Secret.
source "$(dirname "$0")/../lib.sh"

NAME=api
healthy() { curl -fsS "http://$LAKEHOUSE_BIND:$API_PORT/healthz" >/dev/null; }

install() { [[ -x "$REPO_ROOT/.venv/bin/uvicorn" ]] || "$DEVSTACK_DIR/python.sh"; }

start() {
  install
  if is_running "$NAME"; then log "$NAME already running"; return 0; fi
  # The stack's endpoints and credentials reach the process through its environment only.
  eval "$("$DEVSTACK_DIR/stack.sh" env-services)"
  LAKEHOUSE_API_KEYS_SHA256="$(api_key_sha256)"
  export LAKEHOUSE_NAMESPACE LAKEHOUSE_API_KEYS_SHA256 PYTHONUNBUFFERED=1
  start_daemon "$NAME" "$REPO_ROOT/.venv/bin/uvicorn" --factory lakehouse_api.main:create_app \
    --host "$LAKEHOUSE_BIND" --port "$API_PORT"
  wait_for "$NAME" healthy
}

stop() { stop_daemon "$NAME"; }
status() { status_line "$NAME" healthy; }
env() {
  echo "export LAKEHOUSE_API_URL=http://$LAKEHOUSE_BIND:$API_PORT"
  echo "export LAKEHOUSE_API_KEY=$(ensure_local_secret api-key)"
}

case "${1:-}" in
  install|start|stop|status|env) "$1" ;;
  restart) stop; start ;;
  *) echo "usage: $0 install|start|stop|restart|status|env" >&2; exit 2 ;;
esac
