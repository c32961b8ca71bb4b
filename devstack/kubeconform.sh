#!/usr/bin/env bash
# kubeconform $KUBECONFORM_VERSION, built from the Go module proxy into $LAKEHOUSE_CACHE_DIR/bin, and the JSON
# schemas it validates against, made from the stack's API server (its Kubernetes version and served CRDs).
# Usage: kubeconform.sh setup | path | schemas DIR | <kubeconform arguments...>
#   schemas DIR  writes DIR/v<version>-standalone[-strict]/*.json from the running API server's /openapi/v2;
#                then: kubeconform.sh -strict -kubernetes-version <version> -schema-location DIR FILE...
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/lib.sh"

KUBECONFORM_BIN="$BIN_DIR/kubeconform-$KUBECONFORM_VERSION/kubeconform"

install_kubeconform() {
  go_tool_install kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform \
    "-X main.version=$KUBECONFORM_VERSION"
}

schemas() {
  [[ -n "${1:-}" ]] || die "usage: kubeconform.sh schemas DIR"
  "$DEVSTACK_DIR/services/kubernetes.sh" kubectl get --raw /openapi/v2 \
    | "$REPO_ROOT/.venv/bin/python" -m lakehouse.devtools.kube_schemas "$1" "${KUBERNETES_VERSION#v}"
}

case "${1:-}" in
  setup)   install_kubeconform ;;
  path)    install_kubeconform; echo "$KUBECONFORM_BIN" ;;
  schemas) shift; schemas "$@" ;;
  *)       install_kubeconform; exec "$KUBECONFORM_BIN" "$@" ;;
esac
