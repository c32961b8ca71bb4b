#!/usr/bin/env bash
# S3 for the local stack: SeaweedFS (`weed server -s3`: master + volume + filer + S3 gateway in one
# process), built from source with Go (devstack/seaweedfs/go.mod, SEAWEEDFS_VERSION), listening on
# $LAKEHOUSE_BIND only: S3 on $S3_PORT, internal ports SEAWEEDFS_* from config.env.
# Data and the S3 identity file live in $LAKEHOUSE_STATE_DIR/s3. Credentials: AWS_ACCESS_KEY_ID /
# AWS_SECRET_ACCESS_KEY from the environment when set, else generated once into the state secrets.
# Usage: s3.sh install|start|stop|status|env
# shellcheck source=devstack/lib.sh
source "$(dirname "$0")/../lib.sh"

NAME=s3
WEED="$BIN_DIR/seaweedfs-$SEAWEEDFS_VERSION/weed"
S3_STATE="$LAKEHOUSE_STATE_DIR/s3"
S3_DATA="$S3_STATE/data"
S3_IDENTITIES="$S3_STATE/s3.json"
S3_URL="http://$LAKEHOUSE_BIND:$S3_PORT"

cmd_install() {
  if [[ -x "$WEED" ]]; then log "seaweedfs $SEAWEEDFS_VERSION already built"; return 0; fi
  local wrapper="$DEVSTACK_DIR/seaweedfs"
  grep -q "github.com/seaweedfs/seaweedfs $SEAWEEDFS_VERSION" "$wrapper/go.mod" \
    || die "devstack/seaweedfs/go.mod does not require seaweedfs $SEAWEEDFS_VERSION (versions.env); update both together"
  log "building seaweedfs $SEAWEEDFS_VERSION (weed) into $WEED; the first build takes several minutes"
  mkdir -p "$(dirname "$WEED")"
  # GOFLAGS=-mod=readonly: the build uses exactly go.mod/go.sum as committed.
  (cd "$wrapper" && GOFLAGS="$GOFLAGS -mod=readonly" "$GO" build -trimpath -ldflags "-s -w" -o "$WEED.tmp" \
    github.com/seaweedfs/seaweedfs/weed) || die "building seaweedfs failed"
  mv "$WEED.tmp" "$WEED"
}

# Credentials: the caller's AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY when both are set; otherwise
# the stack's own pair, generated once into the state secrets.
caller_credentials() { [[ -n "${AWS_ACCESS_KEY_ID:-}" && -n "${AWS_SECRET_ACCESS_KEY:-}" ]]; }
access_key_id() { if caller_credentials; then echo "$AWS_ACCESS_KEY_ID"; else ensure_local_secret s3-access-key-id; fi; }
secret_access_key() { if caller_credentials; then echo "$AWS_SECRET_ACCESS_KEY"; else ensure_local_secret s3-secret-access-key; fi; }

# quote STRING: STRING as a double-quoted JSON / curl-config string.
quote() { local s="${1//\\/\\\\}"; s="${s//\"/\\\"}"; printf '"%s"' "$s"; }

write_identities() {
  mkdir -p "$S3_STATE"
  (umask 077; cat > "$S3_IDENTITIES.tmp" <<EOF
{
  "identities": [
    {
      "name": "admin",
      "credentials": [{"accessKey": $(quote "$(access_key_id)"), "secretKey": $(quote "$(secret_access_key)")}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
EOF
  )
  chmod 600 "$S3_IDENTITIES.tmp"
  mv "$S3_IDENTITIES.tmp" "$S3_IDENTITIES"
}

# s3_curl CURL_ARGS...: an AWS SigV4-signed request with the admin identity. The credentials reach
# curl through its config on stdin, never through argv.
s3_curl() {
  printf 'user = %s\n' "$(quote "$(access_key_id):$(secret_access_key)")" \
    | curl -sS --max-time 10 -K - --aws-sigv4 "aws:amz:$AWS_REGION:s3" "$@"
}

# healthy: the volume server has joined the master (writes can be placed) and an authenticated
# S3 ListBuckets answers 200.
healthy() {
  curl -fsS --max-time 5 -o /dev/null "http://$LAKEHOUSE_BIND:$SEAWEEDFS_VOLUME_PORT/healthz" || return 1
  [[ "$(s3_curl -o /dev/null -w '%{http_code}' "$S3_URL/")" == 200 ]]
}

ensure_buckets() {
  local bucket code
  for bucket in $LAKEHOUSE_BUCKETS; do
    code="$(s3_curl -o /dev/null -w '%{http_code}' -I "$S3_URL/$bucket")"
    [[ "$code" == 200 ]] && continue
    code="$(s3_curl -o "$S3_STATE/create-bucket.out" -w '%{http_code}' -X PUT "$S3_URL/$bucket")"
    case "$code" in
      200|409) log "bucket $bucket created" ;;
      *) cat "$S3_STATE/create-bucket.out" >&2 2>/dev/null; die "creating bucket $bucket failed (HTTP $code)" ;;
    esac
  done
  rm -f "$S3_STATE/create-bucket.out"
}

cmd_start() {
  if is_running "$NAME"; then
    log "$NAME already running (pid $(cat "$(pidfile "$NAME")"))"
    wait_for "$NAME" healthy
    ensure_buckets
    return 0
  fi
  [[ -x "$WEED" ]] || cmd_install
  mkdir -p "$S3_DATA"
  write_identities
  # The master grows one volume per collection (= bucket) at a time instead of 7, so a small
  # -volume.max serves many buckets. Run in the state dir with -config_dir there, so no stray
  # master.toml/filer.toml is picked up; telemetry off (no traffic leaves the machine).
  (
    cd "$S3_STATE"
    export WEED_MASTER_VOLUME_GROWTH_COPY_1=1 WEED_MASTER_VOLUME_GROWTH_COPY_2=1 \
      WEED_MASTER_VOLUME_GROWTH_COPY_3=1 WEED_MASTER_VOLUME_GROWTH_COPY_OTHER=1
    export GOMEMLIMIT="$SEAWEEDFS_GOMEMLIMIT"
    # JWT keys (security.toml settings, given as WEED_* environment variables): the volume and filer
    # HTTP/gRPC APIs, which bypass S3 authentication, then refuse unsigned reads and writes.
    WEED_JWT_SIGNING_KEY="$(ensure_local_secret seaweedfs-jwt-volume-write)"
    WEED_JWT_SIGNING_READ_KEY="$(ensure_local_secret seaweedfs-jwt-volume-read)"
    WEED_JWT_FILER_SIGNING_KEY="$(ensure_local_secret seaweedfs-jwt-filer-write)"
    WEED_JWT_FILER_SIGNING_READ_KEY="$(ensure_local_secret seaweedfs-jwt-filer-read)"
    export WEED_JWT_SIGNING_KEY WEED_JWT_SIGNING_READ_KEY WEED_JWT_FILER_SIGNING_KEY WEED_JWT_FILER_SIGNING_READ_KEY
    start_daemon "$NAME" "$WEED" -logtostderr=true -config_dir="$S3_STATE" server \
      -ip="$LAKEHOUSE_BIND" -ip.bind="$LAKEHOUSE_BIND" -dir="$S3_DATA" \
      -master.port="$SEAWEEDFS_MASTER_PORT" -master.port.grpc="$SEAWEEDFS_MASTER_GRPC_PORT" \
      -master.volumeSizeLimitMB="$SEAWEEDFS_VOLUME_SIZE_LIMIT_MB" -master.telemetry=false \
      -master.peers=none \
      -volume.port="$SEAWEEDFS_VOLUME_PORT" -volume.port.grpc="$SEAWEEDFS_VOLUME_GRPC_PORT" \
      -volume.max="$SEAWEEDFS_VOLUME_MAX" -volume.preStopSeconds=1 \
      -filer.port="$SEAWEEDFS_FILER_PORT" -filer.port.grpc="$SEAWEEDFS_FILER_GRPC_PORT" \
      -filer.localSocket="$RUN_DIR/seaweedfs-filer.sock" \
      -s3 -s3.port="$S3_PORT" -s3.port.grpc="$SEAWEEDFS_S3_GRPC_PORT" \
      -s3.port.iceberg=0 -s3.port.lance=0 -s3.localSocket="$RUN_DIR/seaweedfs-s3.sock" \
      -s3.config="$S3_IDENTITIES" -s3.iam=false -s3.autoCreateBucket=false
  )
  wait_for "$NAME" healthy
  ensure_buckets
  log "s3 ready at $S3_URL, buckets: $LAKEHOUSE_BUCKETS"
}

cmd_env() {
  echo "export S3_ENDPOINT_URL=$S3_URL"
  printf 'export AWS_ACCESS_KEY_ID=%q\n' "$(access_key_id)"
  printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "$(secret_access_key)"
  echo "export AWS_REGION=$AWS_REGION"
}

case "${1:-}" in
  install) cmd_install ;;
  start)   cmd_start ;;
  stop)    stop_daemon "$NAME" ;;
  status)  status_line "$NAME" healthy ;;
  env)     cmd_env ;;
  *)       echo "usage: $0 install|start|stop|status|env" >&2; exit 2 ;;
esac
