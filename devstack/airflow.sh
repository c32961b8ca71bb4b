#!/usr/bin/env bash
# Apache Airflow in its own virtualenv (its pins clash with the platform's), from airflow/requirements.lock,
# with AIRFLOW_HOME in the state dir and the repository's airflow/dags as the DAGs folder. No scheduler or
# webserver runs here: `airflow dags test` executes a DAG run in-process, against the real stack.
# Usage: airflow.sh setup | lock | env | python <arguments...> | <airflow arguments...>
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/lib.sh"

LOCK="$REPO_ROOT/airflow/requirements.lock"
VENV="$LAKEHOUSE_CACHE_DIR/airflow-venv-$(sha256sum "$LOCK" | cut -c1-12)"
UV="$LAKEHOUSE_CACHE_DIR/tools/uv-$UV_VERSION/bin/uv"
export UV_CACHE_DIR="$LAKEHOUSE_CACHE_DIR/uv" UV_PYTHON_DOWNLOADS=never
export AIRFLOW_HOME="${AIRFLOW_HOME:-$LAKEHOUSE_STATE_DIR/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO_ROOT/airflow/dags"
# The provider (airflow/provider, with the platform's lakehouse.k8s types in its wheel), built from this checkout
# into a folder keyed by its sources' hash, so checkouts sharing one Airflow venv never install over each other.
PROVIDER_SOURCES=("$REPO_ROOT/airflow/provider" "$REPO_ROOT/lakehouse/__init__.py" "$REPO_ROOT/lakehouse/formats.py"
  "$REPO_ROOT/lakehouse/k8s")
PROVIDER_HASH="$(find "${PROVIDER_SOURCES[@]}" -type f \( -name '*.py' -o -name pyproject.toml -o -name README.md \) \
  -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum | sed "s|$REPO_ROOT/||" | sha256sum | cut -c1-12)"
PROVIDER_DIR="$LAKEHOUSE_CACHE_DIR/airflow-provider-$PROVIDER_HASH"
export PYTHONPATH="$PROVIDER_DIR${PYTHONPATH:+:$PYTHONPATH}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False

setup() {
  [[ -x "$UV" ]] || "$DEVSTACK_DIR/python.sh"
  # Keyed on the lock's hash; .complete marks a finished install (an interrupted one starts over).
  if [[ ! -f "$VENV/.complete" ]]; then
    log "installing Airflow into $VENV"
    rm -rf "$VENV"
    "$UV" venv -q --python "${LAKEHOUSE_PYTHON:-$(command -v python3.11 || command -v python3)}" "$VENV"
    "$UV" pip sync -q --python "$VENV/bin/python" "$LOCK"
    touch "$VENV/.complete"
  fi
  if [[ ! -f "$PROVIDER_DIR/.complete" ]]; then
    log "installing the lakehouse-airflow provider into $PROVIDER_DIR"
    # Its dependencies are Airflow's lock; the provider alone goes on top. Built aside and moved into place,
    # so two checkouts setting up at once never see half an install.
    local staging
    staging="$(mktemp -d "$PROVIDER_DIR.XXXXXX")"
    "$UV" pip install -q --python "$VENV/bin/python" --no-deps --target "$staging" "$REPO_ROOT/airflow/provider"
    touch "$staging/.complete"
    rm -rf "$PROVIDER_DIR"
    mv -T "$staging" "$PROVIDER_DIR" 2>/dev/null || rm -rf "$staging"
  fi
  # Bytecode compiled once, as pip does on install: uv installs sources only, and with PYTHONDONTWRITEBYTECODE set
  # (it is on these machines) every Airflow process, each task's included, compiled Airflow and the Kubernetes
  # client anew, minutes of CPU per task on a busy machine (a reschedule-mode poke paid it every time).
  local target
  for target in "$VENV" "$PROVIDER_DIR"; do
    if [[ ! -f "$target/.compiled" ]]; then
      "$VENV/bin/python" -m compileall -q -j 0 "$target" >/dev/null || true
      touch "$target/.compiled"
    fi
  done
  # Migrated once per Airflow install (the marker names it), and again after an interrupted migrate.
  local marker="$AIRFLOW_HOME/.migrated-$(basename "$VENV")"
  if [[ ! -f "$marker" ]]; then
    mkdir -p "$AIRFLOW_HOME"
    "$VENV/bin/airflow" db migrate >"$LOG_DIR/airflow-migrate.log" 2>&1 \
      || die "airflow db migrate failed; see $LOG_DIR/airflow-migrate.log"
    touch "$marker"
  fi
}

case "${1:-}" in
  setup) setup ;;
  lock)  "$UV" pip compile -q "$REPO_ROOT/airflow/requirements.in" -o "$LOCK" \
           --python-version 3.11 --python-platform x86_64-unknown-linux-gnu ;;
  env)   echo "export AIRFLOW_HOME=$AIRFLOW_HOME PYTHONPATH=$PYTHONPATH" ;;
  python) setup; shift; exec "$VENV/bin/python" "$@" ;;
  *)     setup; exec "$VENV/bin/airflow" "$@" ;;
esac
