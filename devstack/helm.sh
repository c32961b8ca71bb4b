#!/usr/bin/env bash
# Helm CLI $HELM_VERSION, built from the Go module proxy into $LAKEHOUSE_CACHE_DIR/bin (no download site).
# Usage: helm.sh setup (build it if missing) | helm.sh path | helm.sh <helm arguments...>
# (not "install": that is Helm's own command, passed through like every other).
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/lib.sh"

HELM_BIN="$BIN_DIR/helm-$HELM_VERSION/helm"

install_helm() {
  [[ -x "$HELM_BIN" ]] && return 0
  log "building helm $HELM_VERSION from the Go module proxy (first time only)"
  local tmp="$BIN_DIR/helm-$HELM_VERSION.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # Helm's own release flags: no cgo, trimmed paths, its version stamped in.
  GOBIN="$tmp" CGO_ENABLED=0 "$GO" install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  rm -rf "$BIN_DIR/helm-$HELM_VERSION"
  mv "$tmp" "$BIN_DIR/helm-$HELM_VERSION"
}

case "${1:-}" in
  setup) install_helm ;;
  path)  install_helm; echo "$HELM_BIN" ;;
  *)     install_helm; exec "$HELM_BIN" "$@" ;;
esac
