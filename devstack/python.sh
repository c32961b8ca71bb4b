#!/usr/bin/env bash
# The project's Python environment: uv (pinned, from PyPI) installs exactly what uv.lock says into .venv.
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
cd "$REPO_ROOT"
"$UV" sync --frozen --python "$PYTHON" --quiet
