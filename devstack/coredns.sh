#!/usr/bin/env bash
# CoreDNS $COREDNS_VERSION, the cluster DNS, built from the Go module proxy through the wrapper module
# devstack/coredns (go.mod pins the version, main.go picks the plugins) into $LAKEHOUSE_CACHE_DIR/bin.
# Usage: coredns.sh install (build it if missing or if the wrapper changed) | coredns.sh path
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/lib.sh"

WRAPPER="$DEVSTACK_DIR/coredns"
OUT_DIR="$BIN_DIR/coredns-$COREDNS_VERSION"
COREDNS_BIN="$OUT_DIR/coredns"

# Keyed on the wrapper module's files, so another plugin list or version rebuilds.
build_key() { cat "$WRAPPER/go.mod" "$WRAPPER/go.sum" "$WRAPPER/main.go" | sha256sum | cut -d' ' -f1; }
installed() { [[ -x "$COREDNS_BIN" && -f "$OUT_DIR/.key" && "$(cat "$OUT_DIR/.key")" == "$(build_key)" ]]; }

install_coredns() {
  installed && return 0
  local pinned
  pinned="$(cd "$WRAPPER" && "$GO" list -m -f '{{.Version}}' github.com/coredns/coredns)"
  [[ "$pinned" == "$COREDNS_VERSION" ]] \
    || die "devstack/coredns/go.mod requires coredns $pinned but versions.env pins $COREDNS_VERSION"
  log "building coredns $COREDNS_VERSION from the Go module proxy (first time only)"
  local tmp="$OUT_DIR.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # CoreDNS's release flags: no cgo, stripped; the version stands where its Makefile puts the git commit.
  (cd "$WRAPPER" && CGO_ENABLED=0 "$GO" build -trimpath \
      -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
      -o "$tmp/coredns" .) >&2
  build_key > "$tmp/.key"
  rm -rf "$OUT_DIR"
  mv "$tmp" "$OUT_DIR"
}

case "${1:-}" in
  install) install_coredns ;;
  path)    install_coredns; echo "$COREDNS_BIN" ;;
  *)       echo "usage: $0 install|path" >&2; exit 2 ;;
esac
