#!/usr/bin/env bash
# Iceberg REST catalog for the local stack: Apache Iceberg's own REST catalog server (the
# RESTCatalogServer test fixture of iceberg-open-api, ICEBERG_VERSION) on Jetty, from Maven Central
# jars (devstack/iceberg-rest/pom.xml). Backend: JdbcCatalog in the PostgreSQL database
# `iceberg_catalog` (services/postgres.sh); table files via S3FileIO in s3://warehouse/ on the
# SeaweedFS S3 (services/s3.sh, path-style). Listens on $LAKEHOUSE_BIND:$ICEBERG_REST_PORT only.
#
# Started through devstack/iceberg-rest/launcher (LoopbackRESTCatalogServer): the fixture's own main
# listens on every interface and logs its configuration with the secrets; the launcher serves the
# same adapter/servlet on one address. Configuration and credentials go in CATALOG_* environment
# variables (CATALOG_ stripped, "__" -> "-", "_" -> ".", lower-cased), never in argv.
# Clients: ICEBERG_CATALOG_URI (REST) + the S3_ENDPOINT_URL/AWS_* credentials for the data files.
# Usage: iceberg-rest.sh install|start|stop|status|env
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/../lib.sh"

NAME=iceberg-rest
ICEBERG_HOME="$LAKEHOUSE_CACHE_DIR/iceberg-rest-$ICEBERG_VERSION"
ICEBERG_LIBS="$ICEBERG_HOME/libs"
LAUNCHER_SRC="$DEVSTACK_DIR/iceberg-rest/launcher/org/apache/iceberg/rest/LoopbackRESTCatalogServer.java"
LAUNCHER_CLASSES="$ICEBERG_HOME/launcher-classes"
LAUNCHER_MAIN=org.apache.iceberg.rest.LoopbackRESTCatalogServer
POM="$DEVSTACK_DIR/iceberg-rest/pom.xml"
JAVA="$JAVA17_HOME/bin/java"
CATALOG_URL="http://$LAKEHOUSE_BIND:$ICEBERG_REST_PORT"
# The warehouse the catalog places new tables in (<warehouse>/<namespace>/<table>); clients need not send it.
WAREHOUSE="s3://warehouse/"

# The install is keyed on the pom and launcher source, so editing either re-installs.
install_key() { cat "$POM" "$LAUNCHER_SRC" | sha256sum | cut -d' ' -f1; }
installed() { [[ -f "$ICEBERG_HOME/.installed" && "$(cat "$ICEBERG_HOME/.installed")" == "$(install_key)" ]]; }

cmd_install() {
  if installed; then log "iceberg-rest $ICEBERG_VERSION already installed"; return 0; fi
  log "installing iceberg-rest $ICEBERG_VERSION jars into $ICEBERG_LIBS"
  rm -rf "$ICEBERG_LIBS" "$ICEBERG_LIBS.tmp" "$LAUNCHER_CLASSES"
  MAVEN_OPTS="${MAVEN_OPTS:-} -Diceberg.version=$ICEBERG_VERSION" mvn_fetch "$ICEBERG_LIBS.tmp" "$POM"
  [[ -f "$ICEBERG_LIBS.tmp/iceberg-open-api-$ICEBERG_VERSION-test-fixtures.jar" ]] \
    || die "iceberg-open-api-$ICEBERG_VERSION-test-fixtures.jar was not resolved"
  mv "$ICEBERG_LIBS.tmp" "$ICEBERG_LIBS"
  log "compiling $LAUNCHER_SRC"
  mkdir -p "$LAUNCHER_CLASSES"
  "$JAVA17_HOME/bin/javac" -nowarn --release 17 -cp "$ICEBERG_LIBS/*" -d "$LAUNCHER_CLASSES" "$LAUNCHER_SRC"
  install_key > "$ICEBERG_HOME/.installed"
}

healthy() { curl -fsS --max-time 5 -o /dev/null "$CATALOG_URL/v1/config"; }

cmd_start() {
  if is_running "$NAME"; then
    log "$NAME already running (pid $(cat "$(pidfile "$NAME")"))"
    wait_for "$NAME" healthy
    return 0
  fi
  installed || cmd_install
  "$DEVSTACK_DIR/services/postgres.sh" status >/dev/null \
    || die "$NAME needs PostgreSQL: run devstack/services/postgres.sh start"
  "$DEVSTACK_DIR/services/s3.sh" status >/dev/null \
    || die "$NAME needs S3: run devstack/services/s3.sh start"
  (
    # ICEBERG_CATALOG_DATABASE_URL (postgresql://USER:PASSWORD@HOST:PORT/DB) of the PostgreSQL service,
    # and S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION of the S3 service.
    eval "$("$DEVSTACK_DIR/services/postgres.sh" env)"
    eval "$("$DEVSTACK_DIR/services/s3.sh" env)"
    [[ "${ICEBERG_CATALOG_DATABASE_URL:-}" =~ ^postgresql://([^:@/]+):([^@/]+)@([^/]+)/([^/?]+)$ ]] \
      || die "postgres.sh env gave no usable ICEBERG_CATALOG_DATABASE_URL"
    export CATALOG_CATALOG_NAME=lakehouse \
      CATALOG_CATALOG__IMPL=org.apache.iceberg.jdbc.JdbcCatalog \
      CATALOG_URI="jdbc:postgresql://${BASH_REMATCH[3]}/${BASH_REMATCH[4]}" \
      CATALOG_JDBC_USER="${BASH_REMATCH[1]}" \
      CATALOG_JDBC_PASSWORD="${BASH_REMATCH[2]}" \
      CATALOG_JDBC_SCHEMA__VERSION=V1 \
      CATALOG_WAREHOUSE="$WAREHOUSE" \
      CATALOG_IO__IMPL=org.apache.iceberg.aws.s3.S3FileIO \
      CATALOG_S3_ENDPOINT="$S3_ENDPOINT_URL" \
      CATALOG_S3_PATH__STYLE__ACCESS=true \
      CATALOG_S3_ACCESS__KEY__ID="$AWS_ACCESS_KEY_ID" \
      CATALOG_S3_SECRET__ACCESS__KEY="$AWS_SECRET_ACCESS_KEY" \
      CATALOG_CLIENT_REGION="$AWS_REGION" \
      CATALOG_REST_HOST="$LAKEHOUSE_BIND" \
      CATALOG_REST_PORT="$ICEBERG_REST_PORT" \
      AWS_EC2_METADATA_DISABLED=true
    # shellcheck disable=SC2086  # ICEBERG_REST_HEAP_OPTS is a list of JVM flags
    start_daemon "$NAME" "$JAVA" $ICEBERG_REST_HEAP_OPTS -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError \
      -Djava.awt.headless=true -Dorg.slf4j.simpleLogger.showDateTime=true \
      "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS" \
      -Dorg.slf4j.simpleLogger.log.org.eclipse.jetty=warn \
      -cp "$LAUNCHER_CLASSES:$ICEBERG_LIBS/*" "$LAUNCHER_MAIN"
  )
  wait_for "$NAME" healthy
  log "iceberg REST catalog ready at $CATALOG_URL (warehouse $WAREHOUSE)"
}

cmd_env() {
  echo "export ICEBERG_CATALOG_URI=$CATALOG_URL"
  echo "export ICEBERG_WAREHOUSE=$WAREHOUSE"
}

case "${1:-}" in
  install) cmd_install ;;
  start)   cmd_start ;;
  stop)    stop_daemon "$NAME" ;;
  status)  status_line "$NAME" healthy ;;
  env)     cmd_env ;;
  *)       echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
