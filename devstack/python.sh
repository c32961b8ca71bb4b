#!/usr/bin/env bash
# The project's Python environment: uv (pinned, from PyPI) installs exactly what uv.lock says into .venv.
# `python.sh uv ARGS...` runs that uv instead (with the stack's uv cache), e.g. for the wheel's test.
source "$(dirname "$0")/lib.sh"

UV_HOME="$LAKEHOUSE_CACHE_DIR/tools/uv-$UV_VERSION"
UV="$UV_HOME/bin/uv"
export UV_CACHE_DIR="$LAKEHOUSE_CACHE_DIR/uv"
export UV_PYTHON_DOWNLOADS=never
PYTHON="${LAKEHOUSE_PYTHON:-$(command -v python3.11 || command -v python3)}"

if [[ ! -x "$UV" ]]; then
  log "installing uv $UV_VERSION"
  "$PYTHON" -m venv "$UV_HOME"
  "$UV_HOME/bin/pip" install -q "uv==$UV_VERSION"
fi
if [[ "${1:-}" == uv ]]; then shift; exec "$UV" "$@"; fi
cd "$REPO_ROOT"
"$UV" sync --frozen --python "$PYTHON" --quiet
