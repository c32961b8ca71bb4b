#!/usr/bin/env bash
# Kafka for the local stack: one JVM in KRaft mode acting as broker and controller (node 1),
# PLAINTEXT on $LAKEHOUSE_BIND:$KAFKA_PORT, controller quorum on $LAKEHOUSE_BIND:$KAFKA_CONTROLLER_PORT.
# Jars come from Maven Central (devstack/kafka/pom.xml); data, config and cluster id live in
# $LAKEHOUSE_STATE_DIR/kafka. Usage: kafka.sh install|start|stop|status|env
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/../lib.sh"

NAME=kafka
KAFKA_HOME="$LAKEHOUSE_CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_STATE="$LAKEHOUSE_STATE_DIR/kafka"
KAFKA_DATA="$KAFKA_STATE/data"
JAVA="$JAVA17_HOME/bin/java"
# Short-lived admin tools: small heap, quick JIT, quiet logging.
TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

installed() { [[ -f "$KAFKA_HOME/.installed" ]]; }

cmd_install() {
  if installed; then log "kafka $KAFKA_VERSION already installed"; return 0; fi
  log "installing kafka $KAFKA_VERSION jars into $KAFKA_LIBS"
  rm -rf "$KAFKA_LIBS" "$KAFKA_LIBS.tmp"
  MAVEN_OPTS="${MAVEN_OPTS:-} -Dkafka.version=$KAFKA_VERSION -Dlog4j.version=$KAFKA_LOG4J_VERSION" \
    mvn_fetch "$KAFKA_LIBS.tmp" "$DEVSTACK_DIR/kafka/pom.xml"
  [[ -f "$KAFKA_LIBS.tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "kafka_2.13-$KAFKA_VERSION.jar was not resolved"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
  build_ensure_topics
  touch "$KAFKA_HOME/.installed"
}

# kafka_answers: the broker answers a Kafka ApiVersions request (pure bash, no JVM start-up).
# Request v0: size=14, api_key=18, api_version=0, correlation_id=0x2a, client_id="ping".
# Healthy when the reply echoes the correlation id and carries error_code 0.
kafka_answers() {
  # shellcheck disable=SC2016  # the inner script gets host and port as $1 and $2
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf "\x00\x00\x00\x0e\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x04ping" >&3
    reply="$(head -c 10 <&3 | od -An -tx1 | tr -d " \n")"
    [[ "${reply:8:12}" == "0000002a0000" ]]
  ' _ "$LAKEHOUSE_BIND" "$KAFKA_PORT"
}

# The cluster id is made once per state dir (22 characters of base64url, like `kafka-storage random-uuid`).
cluster_id() {
  local f="$KAFKA_STATE/cluster.id" id
  if [[ ! -s "$f" ]]; then
    if [[ -f "$KAFKA_DATA/meta.properties" ]]; then
      id="$(sed -n 's/^cluster\.id=//p' "$KAFKA_DATA/meta.properties")"
    else
      id=-
      while [[ "$id" == -* ]]; do id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"; done
    fi
    echo "$id" > "$f"
  fi
  cat "$f"
}

write_config() {
  mkdir -p "$KAFKA_DATA"
  local listeners="PLAINTEXT://$LAKEHOUSE_BIND:$KAFKA_PORT,CONTROLLER://$LAKEHOUSE_BIND:$KAFKA_CONTROLLER_PORT"
  local advertised="PLAINTEXT://$LAKEHOUSE_BIND:$KAFKA_PORT"
  if [[ "$LAKEHOUSE_BIND" != 127.* ]]; then
    # Pods (the stack's cluster, or kind's) bootstrap through the Service kafka.kafka (services/cluster.sh),
    # which leads to this listener;
    # it advertises the Service's name, so their connections stay on the Service too.
    listeners+=",CLUSTER://$LAKEHOUSE_BIND:$KAFKA_CLUSTER_PORT"
    advertised+=",CLUSTER://kafka.kafka.svc.$CLUSTER_DOMAIN:9092"
  fi
  cat > "$KAFKA_STATE/server.properties" <<EOF
# Written by devstack/services/kafka.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$LAKEHOUSE_BIND:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,CLUSTER:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.retention.hours=168
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
EOF
  cat > "$KAFKA_STATE/log4j2.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Broker logging to stdout, i.e. the daemon log $LAKEHOUSE_STATE_DIR/logs/kafka.log. -->
<Configuration status="WARN">
  <Appenders>
    <Console name="stdout" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c{1})%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <!-- Warnings and errors from everything; INFO only for start-up and shut-down. -->
    <Root level="WARN"><AppenderRef ref="stdout"/></Root>
    <Logger name="kafka.server.KafkaRaftServer" level="INFO"/>
    <Logger name="kafka.server.BrokerServer" level="INFO"/>
    <Logger name="kafka.server.ControllerServer" level="INFO"/>
    <Logger name="kafka.server.BrokerLifecycleManager" level="INFO"/>
  </Loggers>
</Configuration>
EOF
  cat > "$KAFKA_STATE/log4j2-tools.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Admin tools: warnings only, to stderr. -->
<Configuration status="WARN">
  <Appenders><Console name="stderr" target="SYSTEM_ERR"><PatternLayout pattern="%p %m (%c{1})%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="stderr"/></Root></Loggers>
</Configuration>
EOF
}

# kafka_tool MAIN_CLASS ARGS...: runs a Kafka command-line tool with the installed jars.
kafka_tool() {
  "$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$KAFKA_STATE/log4j2-tools.xml" \
    -cp "$KAFKA_LIBS/*" "$@"
}

format_storage() {
  [[ -f "$KAFKA_DATA/meta.properties" ]] && return 0
  log "formatting kafka storage in $KAFKA_DATA"
  kafka_tool kafka.tools.StorageTool format --ignore-formatted \
    --cluster-id "$(cluster_id)" --config "$KAFKA_STATE/server.properties" >&2
}

# EnsureTopics (devstack/kafka/EnsureTopics.java) creates/reconciles all topics in one JVM;
# compiled against the installed jars, again whenever the source is newer than the class.
ENSURE_TOPICS_SRC="$DEVSTACK_DIR/kafka/EnsureTopics.java"
ENSURE_TOPICS_CLASSES="$KAFKA_HOME/devstack-classes"
build_ensure_topics() {
  [[ "$ENSURE_TOPICS_CLASSES/EnsureTopics.class" -nt "$ENSURE_TOPICS_SRC" ]] && return 0
  log "compiling $ENSURE_TOPICS_SRC"
  mkdir -p "$ENSURE_TOPICS_CLASSES"
  "$JAVA17_HOME/bin/javac" -nowarn --release 17 -cp "$KAFKA_LIBS/*" -d "$ENSURE_TOPICS_CLASSES" "$ENSURE_TOPICS_SRC"
}

# KAFKA_TOPICS: the platform's topics, from the list its code publishes to (lakehouse.events.TOPICS).
read_topics() {
  local names
  [[ -x "$REPO_ROOT/.venv/bin/python" ]] || "$DEVSTACK_DIR/python.sh"
  names="$("$REPO_ROOT/.venv/bin/python" -c 'from lakehouse.events import TOPICS; print(*TOPICS)')"
  read -ra KAFKA_TOPICS <<<"$names"
}

create_topics() {
  build_ensure_topics
  read_topics
  "$JAVA" "${TOOL_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$KAFKA_STATE/log4j2-tools.xml" \
    -cp "$ENSURE_TOPICS_CLASSES:$KAFKA_LIBS/*" EnsureTopics "$LAKEHOUSE_BIND:$KAFKA_PORT" \
    "$KAFKA_TOPIC_PARTITIONS" "$KAFKA_TOPIC_RETENTION_MS" "${KAFKA_TOPICS[@]}" >&2 \
    || die "could not create or reconcile the kafka topics (see above)"
}

cmd_start() {
  if is_running "$NAME"; then
    log "$NAME already running (pid $(cat "$(pidfile "$NAME")"))"
    wait_for "$NAME" kafka_answers
    return 0
  fi
  installed || cmd_install
  mkdir -p "$KAFKA_STATE"
  write_config
  cluster_id >/dev/null
  format_storage
  # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS is a list of JVM flags
  start_daemon "$NAME" "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_STATE/log4j2.xml" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_STATE/server.properties"
  wait_for "$NAME" kafka_answers
  create_topics
  log "kafka topics ready: ${KAFKA_TOPICS[*]} ($KAFKA_TOPIC_PARTITIONS partitions, retention.ms=$KAFKA_TOPIC_RETENTION_MS)"
}

case "${1:-}" in
  install) cmd_install ;;
  start)   cmd_start ;;
  stop)    stop_daemon "$NAME" ;;
  status)  status_line "$NAME" kafka_answers ;;
  env)     echo "export KAFKA_BOOTSTRAP_SERVERS=$LAKEHOUSE_BIND:$KAFKA_PORT" ;;
  *)       echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
