#!/usr/bin/env bash
# Helm CLI $HELM_VERSION, built from the Go module proxy into $LAKEHOUSE_CACHE_DIR/bin (no download site).
# Usage: helm.sh setup (build it if missing) | helm.sh path | helm.sh <helm arguments...>
# (not "install": that is Helm's own command, passed through like every other).
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/lib.sh"

HELM_BIN="$BIN_DIR/helm-$HELM_VERSION/helm"

# Helm's own release flags: its version stamped in.
install_helm() {
  go_tool_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}

case "${1:-}" in
  setup) install_helm ;;
  path)  install_helm; echo "$HELM_BIN" ;;
  *)     install_helm; exec "$HELM_BIN" "$@" ;;
esac
