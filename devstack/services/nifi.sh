#!/usr/bin/env bash
# Apache NiFi for the local stack: one standalone NiFi $NIFI_VERSION node, REST API (and UI) over plain
# HTTP on $LAKEHOUSE_BIND:$NIFI_HTTP_PORT, no login (NiFi allows that on HTTP only), on the Java 21+ JDK.
#
# Install: NiFi's binary zip is not on Maven Central, so the NiFi home is assembled from Maven Central into
# $LAKEHOUSE_CACHE_DIR/nifi-$NIFI_VERSION (never written to after the install):
#   lib/*.jar  the system class path (devstack/nifi/pom.xml dependencies)
#   lib/*.nar  the framework, server, provenance, standard-services-api, standard-shared and
#              record-serialization NARs as published (devstack/nifi/pom.xml, execution "nars"), and the
#              standard and update-attribute NARs packaged from their published jars with NiFi's own
#              nifi-nar-maven-plugin (devstack/nifi/nars/pom.xml), because the registry serves only the jars.
# nifi-bootstrap and nifi-resources (bin/, conf/) are not served either: the service starts the NiFi main
# class (org.apache.nifi.NiFi, what bin/nifi.sh's RunNiFi starts) itself and writes its own conf/.
#
# State: $LAKEHOUSE_STATE_DIR/nifi holds conf/ (written on every start), flow/ (the flow definition),
# the flowfile, content, database and state repositories and work/ (unpacked NARs); provenance and
# component status history are volatile (in memory). Log: $LAKEHOUSE_STATE_DIR/logs/nifi.log.
# Stop: SIGTERM runs NiFi's shutdown hook (graceful, nifi.flowcontroller.graceful.shutdown.period).
# Usage: nifi.sh install|start|stop|status|env
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/../lib.sh"

NAME=nifi
NIFI_HOME="$LAKEHOUSE_CACHE_DIR/nifi-$NIFI_VERSION"
NIFI_STATE="$LAKEHOUSE_STATE_DIR/nifi"
NIFI_CONF="$NIFI_STATE/conf"
POM="$DEVSTACK_DIR/nifi/pom.xml"
NARS_POM="$DEVSTACK_DIR/nifi/nars/pom.xml"
NARS_BUILD="$LAKEHOUSE_CACHE_DIR/nifi-$NIFI_VERSION-nars-build"
# NiFi 2 needs Java 21 or newer.
NIFI_JAVA_HOME="${NIFI_JAVA_HOME:-$JAVA21PLUS_HOME}"
NIFI_URL="http://$LAKEHOUSE_BIND:$NIFI_HTTP_PORT/nifi-api"
# NARs packaged from published jars (module names of devstack/nifi/nars/pom.xml).
BUILT_NARS=(nifi-standard-nar nifi-update-attribute-nar)
# Every NAR the home must end up with (checked after the install).
EXPECTED_NARS=(nifi-framework-nar nifi-jetty-nar nifi-server-nar nifi-provenance-repository-nar
  nifi-standard-services-api-nar nifi-standard-shared-nar nifi-record-serialization-services-nar "${BUILT_NARS[@]}")

# The install is keyed on the versions and the poms, so editing any of them re-installs.
install_key() {
  { echo "$NIFI_VERSION $NIFI_API_VERSION"; cat "$POM" "$NARS_POM" "$DEVSTACK_DIR"/nifi/nars/*/pom.xml; } \
    | sha256sum | cut -d' ' -f1
}
installed() { [[ -f "$NIFI_HOME/.installed" && "$(cat "$NIFI_HOME/.installed")" == "$(install_key)" ]]; }

need_java() {
  [[ -n "$NIFI_JAVA_HOME" && -x "$NIFI_JAVA_HOME/bin/java" ]] \
    || die "NiFi $NIFI_VERSION needs a Java 21+ JDK (none in /usr/lib/jvm/temurin-2*; set NIFI_JAVA_HOME)"
}

cmd_install() {
  if installed; then log "nifi $NIFI_VERSION already installed"; return 0; fi
  need_java
  # The running JVM loads its classes from the home being replaced.
  ! is_running "$NAME" || die "nifi runs from $NIFI_HOME: stop it (nifi.sh stop) before re-installing"
  local tmp="$NIFI_HOME.tmp" nar
  log "installing nifi $NIFI_VERSION into $NIFI_HOME"
  rm -rf "$tmp" "$NARS_BUILD"
  mkdir -p "$tmp/lib"
  # lib/*.jar (transitive runtime dependencies of the pom)
  MAVEN_OPTS="${MAVEN_OPTS:-} -Dnifi.version=$NIFI_VERSION -Dnifi.api.version=$NIFI_API_VERSION" \
    mvn_fetch "$tmp/lib" "$POM"
  # lib/*.nar as published
  mvn -q -B -Dstyle.color=never -f "$POM" -Dmaven.repo.local="$MAVEN_REPO" \
    -Dnifi.version="$NIFI_VERSION" -Dnifi.api.version="$NIFI_API_VERSION" -Dnifi.lib.dir="$tmp/lib" \
    dependency:copy@nars >&2
  # lib/*.nar packaged here; nifi-nar-maven-plugin 2.x runs on Java 21+ only (the MAVEN_OPTS flag quiets
  # Maven 3.8's own sun.misc.Unsafe warnings on Java 24+).
  log "packaging ${BUILT_NARS[*]} from their published jars"
  JAVA_HOME="$NIFI_JAVA_HOME" MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow" mvn -q -B -Dstyle.color=never -f "$NARS_POM" -Dmaven.repo.local="$MAVEN_REPO" \
    -Drevision="$NIFI_VERSION" -Dnifi.api.version="$NIFI_API_VERSION" -Dnars.build.dir="$NARS_BUILD" \
    package >&2
  for nar in "${BUILT_NARS[@]}"; do
    cp "$NARS_BUILD/$nar/$nar-$NIFI_VERSION.nar" "$tmp/lib/"
  done
  rm -rf "$NARS_BUILD"
  [[ -f "$tmp/lib/nifi-runtime-$NIFI_VERSION.jar" ]] || die "nifi-runtime-$NIFI_VERSION.jar was not resolved"
  for nar in "${EXPECTED_NARS[@]}"; do
    [[ -f "$tmp/lib/$nar-$NIFI_VERSION.nar" ]] || die "$nar-$NIFI_VERSION.nar is missing from $tmp/lib"
  done
  rm -rf "$NIFI_HOME"
  mv "$tmp" "$NIFI_HOME"
  install_key > "$NIFI_HOME/.installed"
}

healthy() { curl -fsS --max-time 5 -o /dev/null "$NIFI_URL/flow/about"; }

write_config() {
  local key
  key="$(ensure_local_secret nifi-sensitive-props-key)"
  mkdir -p "$NIFI_CONF" "$NIFI_STATE/flow" "$NIFI_STATE/work" "$NIFI_STATE/extensions"
  # nifi.properties carries the sensitive-properties key (it encrypts sensitive values in the flow).
  (umask 077; cat > "$NIFI_CONF/nifi.properties" <<EOF
# Written by devstack/services/nifi.sh on every start; edit the script, not this file.
# Standalone node, plain HTTP on $LAKEHOUSE_BIND only, no authentication or authorization (HTTP mode).
nifi.flow.configuration.file=$NIFI_STATE/flow/flow.json.gz
nifi.flow.configuration.archive.enabled=false
nifi.flow.configuration.archive.dir=$NIFI_STATE/flow/archive
nifi.flowcontroller.autoResumeState=true
nifi.flowcontroller.graceful.shutdown.period=10 sec
nifi.flowservice.writedelay.interval=500 ms
nifi.administrative.yield.duration=30 sec
nifi.bored.yield.duration=10 millis
nifi.queue.backpressure.count=10000
nifi.queue.backpressure.size=1 GB

nifi.nar.library.directory=$NIFI_HOME/lib
nifi.nar.library.autoload.directory=$NIFI_STATE/extensions
nifi.nar.working.directory=$NIFI_STATE/work/nar
nifi.nar.unpack.uber.jar=false
nifi.upload.working.directory=$NIFI_STATE/work/uploads
nifi.nar.persistence.provider.implementation=org.apache.nifi.nar.StandardNarPersistenceProvider
nifi.nar.persistence.provider.properties.directory=$NIFI_STATE/nar_repository
nifi.asset.manager.implementation=org.apache.nifi.asset.StandardAssetManager
nifi.asset.manager.properties.directory=$NIFI_STATE/assets
# No Python processors: the py4j bridge NAR is not installed (max.processes=0 disables the bridge).
nifi.python.command=
nifi.python.max.processes=0
nifi.python.working.directory=$NIFI_STATE/work/python

nifi.state.management.configuration.file=$NIFI_CONF/state-management.xml
nifi.state.management.provider.local=local-provider
nifi.state.management.provider.cluster=
nifi.state.management.embedded.zookeeper.start=false

nifi.database.directory=$NIFI_STATE/database_repository
nifi.flowfile.repository.implementation=org.apache.nifi.controller.repository.WriteAheadFlowFileRepository
nifi.flowfile.repository.wal.implementation=org.apache.nifi.wali.SequentialAccessWriteAheadLog
nifi.flowfile.repository.directory=$NIFI_STATE/flowfile_repository
nifi.flowfile.repository.checkpoint.interval=20 secs
nifi.flowfile.repository.always.sync=false
nifi.swap.manager.implementation=org.apache.nifi.controller.FileSystemSwapManager
nifi.queue.swap.threshold=20000
nifi.content.repository.implementation=org.apache.nifi.controller.repository.FileSystemRepository
nifi.content.claim.max.appendable.size=50 KB
nifi.content.repository.directory.default=$NIFI_STATE/content_repository
nifi.content.repository.archive.enabled=false
nifi.content.repository.always.sync=false
nifi.provenance.repository.implementation=org.apache.nifi.provenance.VolatileProvenanceRepository
nifi.provenance.repository.buffer.size=10000
nifi.components.status.repository.implementation=org.apache.nifi.controller.status.history.VolatileComponentStatusRepository
nifi.components.status.repository.buffer.size=1440
nifi.components.status.snapshot.frequency=1 min

nifi.web.http.host=$LAKEHOUSE_BIND
nifi.web.http.port=$NIFI_HTTP_PORT
nifi.web.https.host=
nifi.web.https.port=
nifi.web.jetty.working.directory=$NIFI_STATE/work/jetty
nifi.web.jetty.threads=50
nifi.web.max.header.size=16 KB
nifi.web.max.requests.per.second=30000
nifi.web.request.timeout=60 secs
nifi.web.should.send.server.version=false
nifi.remote.input.http.enabled=false
nifi.remote.input.secure=false

nifi.sensitive.props.key=$key
nifi.sensitive.props.algorithm=NIFI_PBKDF2_AES_GCM_256
nifi.security.keystore=
nifi.security.truststore=
nifi.security.user.authorizer=
nifi.security.user.login.identity.provider=
nifi.security.allow.anonymous.authentication=false

nifi.cluster.is.node=false
nifi.cluster.protocol.is.secure=false
nifi.zookeeper.connect.string=
nifi.analytics.predict.enabled=false
nifi.diagnostics.on.shutdown.enabled=false
EOF
  )
  cat > "$NIFI_CONF/state-management.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by devstack/services/nifi.sh on every start: processor state in $NIFI_STATE/state/local. -->
<stateManagement>
  <local-provider>
    <id>local-provider</id>
    <class>org.apache.nifi.controller.state.providers.local.WriteAheadLocalStateProvider</class>
    <property name="Directory">$NIFI_STATE/state/local</property>
    <property name="Always Sync">false</property>
    <property name="Partitions">4</property>
    <property name="Checkpoint Interval">2 mins</property>
  </local-provider>
</stateManagement>
EOF
  cat > "$NIFI_CONF/logback.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by devstack/services/nifi.sh on every start. NiFi logs to stdout, i.e. the daemon log
     $LAKEHOUSE_STATE_DIR/logs/nifi.log: warnings and errors (processor bulletins included), plus start-up. -->
<configuration scan="false">
  <contextListener class="ch.qos.logback.classic.jul.LevelChangePropagator"><resetJUL>true</resetJUL></contextListener>
  <appender name="stdout" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%date %level [%thread] %logger{40} %msg%n</pattern></encoder>
  </appender>
  <root level="WARN"><appender-ref ref="stdout"/></root>
  <logger name="org.apache.nifi.runtime.Application" level="INFO"/>
  <logger name="org.apache.nifi.web.server.JettyServer" level="INFO"/>
  <logger name="org.apache.nifi.controller.StandardFlowService" level="INFO"/>
  <logger name="org.apache.nifi.runtime.command.ShutdownCommand" level="INFO"/>
  <!-- Known noise of a UI-less, unauthenticated standalone node -->
  <logger name="org.apache.nifi.web.security" level="ERROR"/>
  <logger name="org.glassfish.jersey.internal.Errors" level="ERROR"/>
  <!-- NiFi 2.3.0 warns with a stack trace on every shutdown (its TLS auto-reload bean is unset on HTTP) -->
  <logger name="org.springframework.web.context.support.AnnotationConfigWebApplicationContext" level="ERROR"/>
</configuration>
EOF
}

# The flow's ListenHTTP has no bind-address setting: it listens on every address. Only loopback
# (where the operator's hand-offs come from, also to the node address) may reach that port.
GUARD_CHAIN=LAKEHOUSE-NIFI-LISTEN
guard_listen_port() {
  local tool
  for tool in iptables ip6tables; do
    "$tool" -N "$GUARD_CHAIN" 2>/dev/null || "$tool" -F "$GUARD_CHAIN"
    "$tool" -A "$GUARD_CHAIN" -i lo -j RETURN
    "$tool" -A "$GUARD_CHAIN" -p tcp --dport "$NIFI_LISTEN_PORT" -j DROP
    "$tool" -C INPUT -j "$GUARD_CHAIN" 2>/dev/null || "$tool" -I INPUT 1 -j "$GUARD_CHAIN"
  done
}
unguard_listen_port() {
  local tool
  for tool in iptables ip6tables; do
    while "$tool" -D INPUT -j "$GUARD_CHAIN" 2>/dev/null; do :; done
    "$tool" -F "$GUARD_CHAIN" 2>/dev/null && "$tool" -X "$GUARD_CHAIN" 2>/dev/null || true
  done
}

cmd_start() {
  guard_listen_port
  if is_running "$NAME"; then
    log "$NAME already running (pid $(cat "$(pidfile "$NAME")"))"
    wait_for "$NAME" healthy
    return 0
  fi
  installed || cmd_install
  need_java
  write_config
  # The JVM flags of NiFi's bootstrap.conf that matter here, plus a modest heap.
  # shellcheck disable=SC2086  # NIFI_HEAP_OPTS is a list of JVM flags
  (cd "$NIFI_STATE" && start_daemon "$NAME" "$NIFI_JAVA_HOME/bin/java" $NIFI_HEAP_OPTS \
    -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Djava.protocol.handler.pkgs=sun.net.www.protocol \
    -Dzookeeper.admin.enableServer=false \
    -Dnifi.properties.file.path="$NIFI_CONF/nifi.properties" \
    -Dlogback.configurationFile="$NIFI_CONF/logback.xml" \
    -Dorg.apache.nifi.management.server.address="$LAKEHOUSE_BIND:$NIFI_MANAGEMENT_PORT" \
    -cp "$NIFI_CONF:$NIFI_HOME/lib/*" org.apache.nifi.NiFi)
  # The first start unpacks every NAR into $NIFI_STATE/work/nar: give it more than the usual time.
  LAKEHOUSE_HEALTH_TIMEOUT="${NIFI_HEALTH_TIMEOUT:-$(( LAKEHOUSE_HEALTH_TIMEOUT > 300 ? LAKEHOUSE_HEALTH_TIMEOUT : 300 ))}" \
    wait_for "$NAME" healthy
}

case "${1:-}" in
  install) cmd_install ;;
  start)   cmd_start ;;
  stop)    stop_daemon "$NAME"; unguard_listen_port ;;
  unguard) unguard_listen_port ;;  # stack.sh down: also when NiFi is not among the running services
  status)  status_line "$NAME" healthy ;;
  env)     echo "export NIFI_API_URL=$NIFI_URL"
           echo "export NIFI_LISTEN_PORT=$NIFI_LISTEN_PORT"
           echo "export NIFI_LISTEN_URL=http://$LAKEHOUSE_BIND:$NIFI_LISTEN_PORT/lakehouse/ingest"
           echo "export NIFI_LISTEN_TOKEN=$(ensure_local_secret nifi-listen-token)" ;;
  *)       echo "usage: $0 install|start|stop|unguard|status|env" >&2; exit 2 ;;
esac
