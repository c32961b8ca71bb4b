#!/usr/bin/env bash
# What a user installs into the one-node cluster (CLUSTER=1), with Helm, as a user would:
#   - the Kubeflow Spark Operator from its chart (inside the Go module it is built from), running
#     SparkApplications in $CLUSTER_RELEASE_NAMESPACE;
#   - charts/lakehouse (release `lakehouse` in $CLUSTER_RELEASE_NAMESPACE): the operator and the API as
#     pods under the chart's service accounts, reaching the host's servers through Services.
# The credentials become Secrets read from stdin, never arguments.
# Usage: release.sh install|start|stop|status|env
# shellcheck source=devstack/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

NAMESPACE="$CLUSTER_RELEASE_NAMESPACE"
RELEASE=lakehouse
SPARK_OPERATOR_NAMESPACE=spark-operator
VALUES_DIR="$DEVSTACK_DIR/cluster"

kctl() { stack_kubectl "$@"; }
helm_() { "$DEVSTACK_DIR/helm.sh" --kubeconfig "${KUBECONFIG_OVERRIDE:-$LAKEHOUSE_STATE_DIR/kubernetes/kubeconfig}" "$@"; }
image() { "$DEVSTACK_DIR/images.sh" ref "$1"; }

install() {
  "$DEVSTACK_DIR/helm.sh" setup
  "$DEVSTACK_DIR/spark-operator.sh" install
}

# secret NAME: a Secret in $NAMESPACE from KEY=VALUE lines on stdin (applied, so a change takes effect).
secret() {
  kctl -n "$NAMESPACE" create secret generic "$1" --from-env-file=/dev/stdin --dry-run=client -o yaml \
    | kctl apply --server-side --force-conflicts -f - >/dev/null
}

apply_secrets() {
  kctl get namespace "$NAMESPACE" >/dev/null 2>&1 || kctl create namespace "$NAMESPACE" >/dev/null
  (
    eval "$("$DEVSTACK_DIR/stack.sh" env-services)"
    printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" \
      | secret lakehouse-s3
    # The same database, reached by its Service name instead of the node address.
    printf 'DATABASE_URL=%s\n' "${DATABASE_URL/@$LAKEHOUSE_BIND:$POSTGRES_PORT\//@postgres.postgres.svc:5432/}" \
      | secret lakehouse-database
  )
  local digest; digest="$(api_key_sha256)"
  printf 'LAKEHOUSE_API_KEYS_SHA256=%s\n' "$digest" | secret lakehouse-api-keys
}

# The CRDs ship with each chart; Helm installs them on first install only, as it does for users.
install_spark_operator() {
  # Values first: a failure inside $(...) as an argument would not stop the script.
  local ref chart
  ref="$(image spark-operator)"
  chart="$("$DEVSTACK_DIR/spark-operator.sh" chart)"
  log "helm upgrade --install spark-operator ($ref)"
  helm_ upgrade --install spark-operator "$chart" --history-max 3 \
    --namespace "$SPARK_OPERATOR_NAMESPACE" --create-namespace \
    --values "$VALUES_DIR/spark-operator-values.yaml" \
    --set "image.tag=${ref##*:}" \
    --set "spark.jobNamespaces={$NAMESPACE}" --wait --timeout 5m >/dev/null
}

install_lakehouse() {
  local ref spark_ref
  ref="$(image lakehouse)"
  spark_ref="$(image lakehouse-spark)"
  log "helm upgrade --install $RELEASE charts/lakehouse ($ref)"
  helm_ upgrade --install "$RELEASE" "$REPO_ROOT/charts/lakehouse" --history-max 3 --namespace "$NAMESPACE" \
    --values "$VALUES_DIR/lakehouse-values.yaml" \
    --set "image.repository=${ref%:*}" --set "image.tag=${ref##*:}" --set "spark.image=$spark_ref" \
    --wait --timeout 5m >/dev/null
}

start() {
  [[ "$CLUSTER" == 1 ]] || die "release.sh needs the cluster (CLUSTER=1)"
  install
  apply_secrets
  install_spark_operator
  install_lakehouse
  log "release $RELEASE running in namespace $NAMESPACE"
}

# The stack's stop removes every pod with the node; the releases stay recorded in the API server
# (etcd is kept), so the next start upgrades them in place.
stop() { :; }

api_url() {
  local ip
  ip="$(kctl -n "$NAMESPACE" get service "$RELEASE-api" -o jsonpath='{.spec.clusterIP}' 2>/dev/null)" || return 1
  [[ -n "$ip" ]] && echo "http://$ip"
}

healthy() {
  local url
  url="$(api_url)" && curl -fsS --max-time 3 "$url/healthz" >/dev/null \
    && [[ "$(kctl -n "$NAMESPACE" get deployment "$RELEASE-operator" -o jsonpath='{.status.readyReplicas}')" == 1 ]]
}

status() {
  if healthy; then printf '%-24s %s\n' release "healthy (namespace $NAMESPACE)"
  else printf '%-24s %s\n' release "UNHEALTHY or not installed (namespace $NAMESPACE)"; return 1; fi
}

env() {
  echo "export LAKEHOUSE_CLUSTER_NAMESPACE=$NAMESPACE"
  echo "export LAKEHOUSE_CLUSTER_RELEASE=$RELEASE"
  local url
  if url="$(api_url)"; then echo "export LAKEHOUSE_CLUSTER_API_URL=$url"; fi
}

case "${1:-}" in
  install|start|stop|status|env) "$1" ;;
  *) echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
