#!/usr/bin/env bash
# Entrypoint of the lakehouse Spark image (spark/Dockerfile), run by tini as PID 1.
#
# Spark on Kubernetes starts this image in two roles, told apart by the first argument:
#   driver   <spark-submit arguments>   the driver pod spark-submit --deploy-mode cluster creates, with
#            `--properties-file /opt/spark/conf/spark.properties --class <main class> <app> <app args>`;
#            its pod IP arrives as SPARK_DRIVER_BIND_ADDRESS. The driver runs as spark-submit in client
#            mode inside the pod.
#   executor                            the executor pods the driver creates; everything comes from the
#            environment: SPARK_DRIVER_URL, SPARK_EXECUTOR_ID, SPARK_EXECUTOR_CORES, SPARK_EXECUTOR_MEMORY,
#            SPARK_APPLICATION_ID, SPARK_EXECUTOR_POD_IP, SPARK_EXECUTOR_POD_NAME,
#            SPARK_RESOURCE_PROFILE_ID, the JVM options as SPARK_JAVA_OPT_0, SPARK_JAVA_OPT_1, ... and
#            optionally SPARK_CLASSPATH (spark.executor.extraClassPath) and SPARK_CONF_DIR.
# Any other command runs as given (e.g. `python3 ...`, `bash`, the Spark Operator's binary).
set -euo pipefail

: "${SPARK_HOME:?SPARK_HOME must point at the Spark installation (the pyspark package folder)}"

java_bin() {
  if [[ -n "${JAVA_HOME:-}" ]]; then echo "$JAVA_HOME/bin/java"; else command -v java; fi
}

# require NAME...: every variable is set and non-empty, or the pod fails saying which one is missing.
require() {
  local name
  for name in "$@"; do
    [[ -n "${!name:-}" ]] || { echo "entrypoint: $name is not set (is this pod started by Spark?)" >&2; exit 64; }
  done
}

# The executor's class path: its extra class path first (Spark's own order), then Spark's jars, then the
# configuration folders Spark mounts, so log4j2 and Hadoop settings found there apply.
executor_classpath() {
  local path="$SPARK_HOME/jars/*"
  [[ -n "${SPARK_CLASSPATH:-}" ]] && path="$SPARK_CLASSPATH:$path"
  [[ -n "${SPARK_DIST_CLASSPATH:-}" ]] && path="$path:$SPARK_DIST_CLASSPATH"
  [[ -n "${HADOOP_CONF_DIR:-}" ]] && path="$HADOOP_CONF_DIR:$path"
  [[ -n "${SPARK_CONF_DIR:-}" ]] && path="$SPARK_CONF_DIR:$path"
  printf '%s' "$path"
}

run_driver() {
  require SPARK_DRIVER_BIND_ADDRESS
  # Spark sets spark.driver.host to the driver's Service; the JVM binds to the pod's own address.
  exec "$SPARK_HOME/bin/spark-submit" \
    --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
    --deploy-mode client \
    "$@"
}

run_executor() {
  require SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_EXECUTOR_MEMORY \
    SPARK_APPLICATION_ID SPARK_EXECUTOR_POD_IP SPARK_RESOURCE_PROFILE_ID SPARK_EXECUTOR_POD_NAME
  # SPARK_JAVA_OPT_<n> in the order of n (one JVM option each; the values may hold spaces).
  local -a java_opts=()
  local name
  while read -r name; do
    [[ -n "$name" ]] && java_opts+=("${!name}")
  done < <(compgen -v SPARK_JAVA_OPT_ | sed -n 's/^SPARK_JAVA_OPT_\([0-9][0-9]*\)$/\1 &/p' | sort -n | cut -d' ' -f2)
  exec "$(java_bin)" "${java_opts[@]}" \
    -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
    -cp "$(executor_classpath)" \
    org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
    --driver-url "$SPARK_DRIVER_URL" \
    --executor-id "$SPARK_EXECUTOR_ID" \
    --cores "$SPARK_EXECUTOR_CORES" \
    --app-id "$SPARK_APPLICATION_ID" \
    --hostname "$SPARK_EXECUTOR_POD_IP" \
    --resourceProfileId "$SPARK_RESOURCE_PROFILE_ID" \
    --podName "$SPARK_EXECUTOR_POD_NAME"
}

case "${1:-}" in
  driver)   shift; run_driver "$@" ;;
  executor) shift; run_executor "$@" ;;
  "")       echo "usage: entrypoint.sh driver <spark-submit args> | executor | <command> [args]" >&2; exit 64 ;;
  *)        exec "$@" ;;
esac
