#!/usr/bin/env bash
# PostgreSQL from Debian's packages: one cluster in the state folder holding the platform
# metadata database (`lakehouse`) and the Iceberg JDBC catalog database (`iceberg_catalog`).
source "$(dirname "$0")/../lib.sh"

PG_BIN="/usr/lib/postgresql/$POSTGRES_MAJOR/bin"
PG_DATA="$LAKEHOUSE_STATE_DIR/postgres/data"
PG_SOCKET_DIR="$LAKEHOUSE_STATE_DIR/postgres/socket"
NAME=postgres

# PostgreSQL refuses to run as root; as root we run it as the package's `postgres` user.
as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install() {
  [[ -x "$PG_BIN/postgres" ]] && return 0
  log "installing postgresql-$POSTGRES_MAJOR from Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "postgresql-$POSTGRES_MAJOR" postgresql-client >/dev/null
}

ready() { "$PG_BIN/pg_isready" -q -h "$LAKEHOUSE_BIND" -p "$POSTGRES_PORT"; }

psql_admin() { as_pg "$PG_BIN/psql" -v ON_ERROR_STOP=1 -qAt -h "$PG_SOCKET_DIR" -p "$POSTGRES_PORT" -d postgres "$@"; }

# ensure_role_db ROLE DB PASSWORD: idempotent; the password comes from the state secrets.
ensure_role_db() {
  local role="$1" db="$2" password="$3"
  if [[ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$role'")" ]]; then
    psql_admin -c "CREATE ROLE $role LOGIN"
  fi
  # Password via stdin so it never appears in a process list.
  printf "ALTER ROLE %s PASSWORD '%s';\n" "$role" "$password" | psql_admin -f - >/dev/null
  if [[ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]]; then
    psql_admin -c "CREATE DATABASE $db OWNER $role"
  fi
}

# The server runs as user postgres, which must traverse every folder above its data: a checkout under a
# `mktemp -d` folder (mode 0700, as CI makes) is not, so such folders get search (x) for others, nothing more.
let_postgres_reach() {
  local dir
  dir="$(dirname "$1")"
  while [[ "$dir" != "/" ]]; do
    if ! runuser -u postgres -- test -x "$dir"; then
      log "letting user postgres traverse $dir (o+x)"
      chmod o+x "$dir"
    fi
    dir="$(dirname "$dir")"
  done
}

start() {
  install
  if is_running "$NAME" && ready; then log "$NAME already running"; return 0; fi
  mkdir -p "$PG_DATA" "$PG_SOCKET_DIR"
  [[ $EUID -eq 0 ]] && chown -R postgres:postgres "$LAKEHOUSE_STATE_DIR/postgres" && let_postgres_reach "$PG_DATA"
  chmod 700 "$PG_DATA"
  if [[ ! -s "$PG_DATA/PG_VERSION" ]]; then
    log "initialising cluster in $PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 >>"$LOG_DIR/$NAME.log" 2>&1
  fi
  [[ $EUID -eq 0 ]] && touch "$LOG_DIR/$NAME.log" && chown postgres "$LOG_DIR/$NAME.log"
  # Pods (and the node address they reach us on) connect from the cluster's pod range, with a password.
  grep -q "^host all all $CLUSTER_POD_CIDR " "$PG_DATA/pg_hba.conf" \
    || echo "host all all $CLUSTER_POD_CIDR scram-sha-256" >> "$PG_DATA/pg_hba.conf"
  log "starting $NAME"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOG_DIR/$NAME.log" -w -t "$LAKEHOUSE_HEALTH_TIMEOUT" \
    -o "-c listen_addresses=$LAKEHOUSE_BIND -p $POSTGRES_PORT -c unix_socket_directories=$PG_SOCKET_DIR -c max_connections=200 -c shared_buffers=128MB -c fsync=off" \
    start >/dev/null
  head -n1 "$PG_DATA/postmaster.pid" > "$(pidfile "$NAME")"
  wait_for "$NAME" ready
  ensure_role_db lakehouse lakehouse "$(ensure_local_secret postgres-lakehouse)"
  # Local stack only: the tests migrate throwaway databases to prove migrations from scratch.
  psql_admin -c "ALTER ROLE lakehouse CREATEDB"
  ensure_role_db iceberg iceberg_catalog "$(ensure_local_secret postgres-iceberg)"
}

stop() {
  if [[ -s "$PG_DATA/postmaster.pid" ]]; then
    log "stopping $NAME"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null || true
  fi
  rm -f "$(pidfile "$NAME")"
}

status() { status_line "$NAME" ready; }

env() {
  echo "export DATABASE_URL=postgresql://lakehouse:$(ensure_local_secret postgres-lakehouse)@$LAKEHOUSE_BIND:$POSTGRES_PORT/lakehouse"
  echo "export ICEBERG_CATALOG_DATABASE_URL=postgresql://iceberg:$(ensure_local_secret postgres-iceberg)@$LAKEHOUSE_BIND:$POSTGRES_PORT/iceberg_catalog"
}

case "${1:-}" in
  install|start|stop|status|env) "$1" ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
