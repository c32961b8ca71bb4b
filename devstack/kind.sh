#!/usr/bin/env bash
# For people with Docker: the same images and Helm installs as the stack's one-node cluster
# (services/cluster.sh + services/release.sh), on a kind cluster instead.
# NOT exercised on the machines this repository is developed and tested on: they have no Docker
# engine, and kind pulls its node image from a registry they cannot reach.
#   up                 create the kind cluster `lakehouse` (if missing), then deploy
#   deploy KUBECONFIG  load the images, point the dependency Services at the host, install both charts;
#                      prints NAMESPACE, RELEASE, API_URL (tests/utils/cluster.py reads them)
#   down               the port-forward and the kind cluster
# The stack's servers stay on the host: start it bound to the kind network's gateway so that the
# nodes can reach it, e.g. `LAKEHOUSE_BIND=$(devstack/kind.sh gateway) make up`.
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/lib.sh"

KIND_CLUSTER=lakehouse
NAMESPACE="$CLUSTER_RELEASE_NAMESPACE"

need() { command -v "$1" >/dev/null || die "$1 is required for make kind (install Docker and kind)"; }

gateway() {
  docker network inspect kind -f '{{range .IPAM.Config}}{{if .Gateway}}{{.Gateway}} {{end}}{{end}}' | awk '{print $1}'
}

deploy() {
  local kubeconfig="$1" name archive
  need docker; need kind
  "$DEVSTACK_DIR/images.sh" build
  local content ref
  for name in lakehouse lakehouse-spark spark-operator; do
    archive="$("$DEVSTACK_DIR/images.sh" archive "$name")"
    content="$("$DEVSTACK_DIR/images.sh" content-ref "$name")"
    ref="$("$DEVSTACK_DIR/images.sh" ref "$name")"
    kind load image-archive "$archive" --name "$KIND_CLUSTER" >&2
    # The archive names the image by its content; the releases use its version tag.
    docker exec "$KIND_CLUSTER-control-plane" ctr -n k8s.io images tag --force "$content" "$ref" >&2
  done
  # The release scripts, pointed at this cluster and at the host through the kind network's gateway.
  KUBECONFIG_OVERRIDE="$kubeconfig" CLUSTER_NODE_IP="$(gateway)" CLUSTER=1 \
    "$DEVSTACK_DIR/services/cluster.sh" host-services
  KUBECONFIG_OVERRIDE="$kubeconfig" CLUSTER=1 "$DEVSTACK_DIR/services/release.sh" start
  echo "export NAMESPACE=$NAMESPACE"
  echo "export RELEASE=lakehouse"
  # Reached through a port-forward: kind's Service addresses are inside Docker's network.
  # The key stays in the state folder (secrets/api-key): it is never printed.
  stop_daemon kind-port-forward
  KUBECONFIG="$kubeconfig" start_daemon kind-port-forward "$("$DEVSTACK_DIR/services/kubernetes.sh" bin)/kubectl" \
    -n "$NAMESPACE" port-forward svc/lakehouse-api "$KIND_API_PORT:80"
  echo "export API_URL=http://127.0.0.1:$KIND_API_PORT"
}

up() {
  need docker; need kind
  kind get clusters | grep -x "$KIND_CLUSTER" >/dev/null || kind create cluster --name "$KIND_CLUSTER" >&2
  local kubeconfig="$LAKEHOUSE_STATE_DIR/kind-kubeconfig"
  kind get kubeconfig --name "$KIND_CLUSTER" > "$kubeconfig"
  deploy "$kubeconfig"
}

case "${1:-}" in
  up) up ;;
  down) stop_daemon kind-port-forward; kind delete cluster --name "$KIND_CLUSTER" ;;
  deploy) deploy "${2:?usage: kind.sh deploy KUBECONFIG}" ;;
  gateway) gateway ;;
  *) echo "usage: $0 up|deploy KUBECONFIG|down|gateway" >&2; exit 2 ;;
esac
