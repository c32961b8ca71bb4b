#!/usr/bin/env bash
# Kubeflow Spark Operator $SPARK_OPERATOR_VERSION, from the Go module proxy (no download site, no registry image):
# the module github.com/kubeflow/spark-operator/v2 carries the operator's source, its Helm chart and its CRDs.
# Usage: spark-operator.sh install   download the module, build ./cmd/operator (cached)
#        spark-operator.sh path      the built binary (for devstack/images/spark-operator/Dockerfile)
#        spark-operator.sh chart     the chart folder inside the module (helm install/template it)
#        spark-operator.sh crds      the CRD folder of that chart
# The module cache is read-only, so the chart is used in place and never edited; our settings are in
# devstack/cluster/spark-operator-values.yaml.
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/lib.sh"

MODULE=github.com/kubeflow/spark-operator/v2
OUT_DIR="$BIN_DIR/spark-operator-$SPARK_OPERATOR_VERSION"
OPERATOR_BIN="$OUT_DIR/spark-operator"

# module_json FIELD: one string field of `go mod download -json` (downloads the module the first time).
module_json() {
  "$GO" mod download -json "$MODULE@$SPARK_OPERATOR_VERSION" \
    | sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}$/\1/p" | head -n1
}

module_dir() {
  local dir
  dir="$(module_json Dir)"
  [[ -n "$dir" && -d "$dir" ]] || die "go mod download of $MODULE@$SPARK_OPERATOR_VERSION gave no module folder"
  echo "$dir"
}

install_operator() {
  [[ -x "$OPERATOR_BIN" ]] && return 0
  log "building spark-operator $SPARK_OPERATOR_VERSION from the Go module proxy (first time only)"
  local dir commit stamp tmp="$OUT_DIR.tmp"
  dir="$(module_dir)"
  # The proxy's record of the tag: its commit and time stand in for the git metadata of upstream's Makefile.
  commit="$(module_json Hash)"
  stamp="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$GOMODCACHE/cache/download/$MODULE/@v/$SPARK_OPERATOR_VERSION.info")"
  rm -rf "$tmp" && mkdir -p "$tmp"
  # Built inside the module (its go.mod has replace directives, so `go install pkg@version` refuses it);
  # upstream's release flags: no cgo, static, the version stamped into the root package.
  local pkg="$MODULE"
  (cd "$dir" && CGO_ENABLED=0 "$GO" build -trimpath -o "$tmp/spark-operator" -ldflags "-s -w \
      -X $pkg.version=${SPARK_OPERATOR_VERSION#v} -X $pkg.gitTag=$SPARK_OPERATOR_VERSION \
      -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=clean -X $pkg.buildDate=$stamp" \
      ./cmd/operator) >&2
  rm -rf "$OUT_DIR"
  mv "$tmp" "$OUT_DIR"
}

case "${1:-}" in
  install) install_operator ;;
  path)    install_operator; echo "$OPERATOR_BIN" ;;
  chart)   echo "$(module_dir)/charts/spark-operator-chart" ;;
  crds)    echo "$(module_dir)/charts/spark-operator-chart/crds" ;;
  *)       echo "usage: $0 install|path|chart|crds" >&2; exit 2 ;;
esac
