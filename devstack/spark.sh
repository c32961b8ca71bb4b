#!/usr/bin/env bash
# Jars of the Spark bronze-transform job (lakehouse/jobs/bronze_transform.py), from Maven Central
# (devstack/spark/pom.xml): Iceberg's Spark runtime + AWS bundle (tables through the REST catalog,
# S3FileIO) and hadoop-aws (S3A, for the raw and quarantine Parquet files). pyspark (uv.lock) brings
# Spark itself and spark-submit; nothing runs as a service.
# Usage: spark.sh install|env   (env prints `export SPARK_JARS=<comma-separated jar paths>`)
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/lib.sh"

SPARK_JARS_DIR="$LAKEHOUSE_CACHE_DIR/spark-jars-$ICEBERG_VERSION"
POM="$DEVSTACK_DIR/spark/pom.xml"
RUNTIME_JAR="iceberg-spark-runtime-$SPARK_ICEBERG_RUNTIME-$ICEBERG_VERSION.jar"

# Keyed on the pom and the versions it is resolved with, so changing either re-installs.
install_key() {
  { cat "$POM"; echo "$ICEBERG_VERSION $SPARK_ICEBERG_RUNTIME $SPARK_HADOOP_VERSION"; } | sha256sum | cut -d' ' -f1
}
installed() { [[ -f "$SPARK_JARS_DIR/.installed" && "$(cat "$SPARK_JARS_DIR/.installed")" == "$(install_key)" ]]; }

cmd_install() {
  if installed; then log "spark jars (iceberg $ICEBERG_VERSION) already installed"; return 0; fi
  log "installing spark jars (iceberg $ICEBERG_VERSION, hadoop-aws $SPARK_HADOOP_VERSION) into $SPARK_JARS_DIR"
  rm -rf "$SPARK_JARS_DIR" "$SPARK_JARS_DIR.tmp"
  local properties="-Diceberg.version=$ICEBERG_VERSION -Dspark.iceberg.runtime=$SPARK_ICEBERG_RUNTIME"
  properties+=" -Dspark.hadoop.version=$SPARK_HADOOP_VERSION"
  MAVEN_OPTS="${MAVEN_OPTS:-} $properties" mvn_fetch "$SPARK_JARS_DIR.tmp" "$POM"
  [[ -f "$SPARK_JARS_DIR.tmp/$RUNTIME_JAR" ]] || die "$RUNTIME_JAR was not resolved"
  mv "$SPARK_JARS_DIR.tmp" "$SPARK_JARS_DIR"
  install_key > "$SPARK_JARS_DIR/.installed"
}

cmd_env() {
  installed || die "spark jars not installed: run devstack/spark.sh install"
  local jars
  jars="$(find "$SPARK_JARS_DIR" -maxdepth 1 -name '*.jar' | sort | paste -sd, -)"
  echo "export SPARK_JARS=$jars"
}

case "${1:-}" in
  install) cmd_install ;;
  env)     cmd_env ;;
  *)       echo "usage: $0 install|env" >&2; exit 2 ;;
esac
