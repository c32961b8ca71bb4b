#!/usr/bin/env bash
# Kubernetes control plane of the local stack: etcd, kube-apiserver, kube-controller-manager.
# Alone it has no node: an API server for CRDs, RBAC and controllers to talk to. With CLUSTER=1,
# services/cluster.sh adds the node (containerd, kubelet, kube-proxy) and the scheduler, built here too.
# Usage: kubernetes.sh install|start|stop|status|env|kubectl ARGS...
# shellcheck source=devstack/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

K8S_BIN="$BIN_DIR/kubernetes-$KUBERNETES_VERSION"
ETCD_BIN="$BIN_DIR/etcd-$ETCD_VERSION"
KUBECTL="$K8S_BIN/kubectl"
K8S_STATE="$LAKEHOUSE_STATE_DIR/kubernetes"
PKI="$K8S_STATE/pki"
KUBECONFIG_FILE="$K8S_STATE/kubeconfig"
API_URL="https://$LAKEHOUSE_BIND:$KUBE_APISERVER_PORT"
# Only the API server talks to etcd: it stays on loopback even when the cluster moves the rest.
ETCD_URL="https://127.0.0.1:$ETCD_CLIENT_PORT"
SERVICE_CIDR="$CLUSTER_SERVICE_CIDR" # routed by kube-proxy once the cluster runs
# Controllers that make sense without nodes: object lifecycle (GC, namespaces), service
# accounts and their tokens, RBAC role aggregation, quotas, and the workload controllers
# (their pods stay Pending, but Jobs/Deployments objects behave as in a real cluster).
KCM_CONTROLLERS="garbage-collector-controller,namespace-controller,serviceaccount-controller,\
serviceaccount-token-controller,root-ca-certificate-publisher-controller,\
clusterrole-aggregation-controller,resourcequota-controller,deployment-controller,\
replicaset-controller,statefulset-controller,job-controller,cronjob-controller,\
ttl-after-finished-controller"
# With a node, every default controller: endpoints for Services, node lifecycle (taints), pod GC.
[[ "$CLUSTER" != 1 ]] || KCM_CONTROLLERS="*"
BINARIES=(kube-apiserver kube-controller-manager kubectl kube-scheduler kube-proxy kubelet)


# origin_commit MODULE@VERSION: the git commit the proxy recorded for a module version (or "").
origin_commit() {
  "$GO" mod download -json "$1" | sed -n 's/.*"Hash": "\([0-9a-f]*\)".*/\1/p' | head -n1
}

# Builds into a temporary folder and renames it, so an interrupted build never looks installed.
install() {
  local b built=1
  for b in "${BINARIES[@]}"; do [[ -x "$K8S_BIN/$b" ]] || built=0; done
  if ((built)); then
    log "kubernetes $KUBERNETES_VERSION already built"
  else
    grep -q "k8s.io/kubernetes $KUBERNETES_VERSION\b" "$DEVSTACK_DIR/k8s/go.mod" \
      || die "devstack/k8s/go.mod does not pin k8s.io/kubernetes $KUBERNETES_VERSION"
    log "building kubernetes $KUBERNETES_VERSION (cold: ~15-20 min on 2 cores)"
    local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
    local commit ldflags="-s -w" kv key val
    commit="$(cd "$DEVSTACK_DIR/k8s" && origin_commit "k8s.io/kubernetes@$KUBERNETES_VERSION")"
    # The same variables Kubernetes' own hack/lib/version.sh sets, so `kubectl version` is right.
    for kv in "gitVersion=$KUBERNETES_VERSION" "gitMajor=1" "gitMinor=$minor" "gitCommit=$commit" \
      "gitTreeState=clean" "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
      key="${kv%%=*}" val="${kv#*=}"
      [[ -n "$val" ]] || continue # the proxy does not always record the commit
      ldflags+=" -X k8s.io/component-base/version.$key=$val -X k8s.io/client-go/pkg/version.$key=$val"
    done
    rm -rf "$K8S_BIN.tmp"; mkdir -p "$K8S_BIN.tmp"
    # One invocation so the binaries share the compile work.
    (cd "$DEVSTACK_DIR/k8s" && "$GO" build -trimpath -ldflags "$ldflags" -o "$K8S_BIN.tmp/" \
      "${BINARIES[@]/#/k8s.io/kubernetes/cmd/}")
    rm -rf "$K8S_BIN"; mv "$K8S_BIN.tmp" "$K8S_BIN"
  fi
  if [[ -x "$ETCD_BIN/etcd" ]]; then
    log "etcd $ETCD_VERSION already built"
  else
    grep -q "go.etcd.io/etcd/server/v3 $ETCD_VERSION\b" "$DEVSTACK_DIR/etcd/go.mod" \
      || die "devstack/etcd/go.mod does not pin go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    log "building etcd $ETCD_VERSION"
    local sha etcd_ldflags="-s -w"
    sha="$(cd "$DEVSTACK_DIR/etcd" && origin_commit "go.etcd.io/etcd/server/v3@$ETCD_VERSION")"
    [[ -z "$sha" ]] || etcd_ldflags+=" -X go.etcd.io/etcd/api/v3/version.GitSHA=${sha:0:8}"
    rm -rf "$ETCD_BIN.tmp"; mkdir -p "$ETCD_BIN.tmp"
    (cd "$DEVSTACK_DIR/etcd" && "$GO" build -trimpath -ldflags "$etcd_ldflags" \
      -o "$ETCD_BIN.tmp/etcd" go.etcd.io/etcd/server/v3)
    rm -rf "$ETCD_BIN"; mv "$ETCD_BIN.tmp" "$ETCD_BIN"
  fi
}

# pki_cert NAME SUBJECT EXTENSION...: a P-256 key and a certificate signed by the local CA.
# Made once: a second start, or a start after stop, reuses them.
pki_cert() {
  local name="$1" subj="$2"; shift 2
  [[ -s "$PKI/$name.crt" ]] && return 0
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key"
  openssl req -new -key "$PKI/$name.key" -subj "$subj" \
    | openssl x509 -req -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
        -days 3650 -out "$PKI/$name.crt" 2>/dev/null \
        -extfile <(printf '%s\n' "basicConstraints=critical,CA:FALSE" \
                     "keyUsage=critical,digitalSignature,keyEncipherment" "$@") \
    || die "could not sign the $name certificate"
}

# has_san CERT IP: true when the certificate names IP among its subject alternative names.
has_san() { openssl x509 -in "$PKI/$1.crt" -noout -ext subjectAltName 2>/dev/null | grep "IP Address:$2\b" >/dev/null; }

ensure_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  # Every address the API server may be reached on: loopback, the node (pods, kubelet) and the
  # in-cluster `kubernetes` Service; a certificate made before one of them was added is made again.
  local sans="IP:127.0.0.1,DNS:localhost,IP:$CLUSTER_NODE_IP,IP:$CLUSTER_API_SERVICE_IP"
  [[ "$LAKEHOUSE_BIND" == 127.0.0.1 || "$LAKEHOUSE_BIND" == "$CLUSTER_NODE_IP" ]] || sans+=",IP:$LAKEHOUSE_BIND"
  local name san
  for san in 127.0.0.1 "$CLUSTER_NODE_IP" "$CLUSTER_API_SERVICE_IP" "$LAKEHOUSE_BIND"; do
    has_san apiserver "$san" || rm -f "$PKI/apiserver.crt"
  done
  has_san kubelet-serving "$CLUSTER_NODE_IP" || rm -f "$PKI/kubelet-serving.crt"
  (
    umask 077
    if [[ ! -s "$PKI/ca.crt" ]]; then
      log "generating the local CA and certificates in $PKI"
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/ca.key"
      openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=lakehouse-devstack-ca" -days 3650 \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$PKI/ca.crt"
    fi
    # The in-cluster names let pods (should a node ever join) reach the API by its service name.
    pki_cert apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth" \
      "subjectAltName=$sans,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    # etcd's HTTP gateway dials its own gRPC port with this same certificate: clientAuth too.
    pki_cert etcd "/CN=etcd" "extendedKeyUsage=serverAuth,clientAuth" "subjectAltName=$sans"
    pki_cert apiserver-etcd-client "/CN=kube-apiserver-etcd-client" "extendedKeyUsage=clientAuth"
    # system:masters is the built-in superuser group; RBAC cannot restrict it.
    pki_cert admin "/O=system:masters/CN=kubernetes-admin" "extendedKeyUsage=clientAuth"
    pki_cert controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
    # The node's parts. The kubelet is system:node:<name> (Node authorizer, NodeRestriction), and
    # serves its API (logs, exec) with a certificate the API server verifies against the CA.
    pki_cert kubelet "/O=system:nodes/CN=system:node:$CLUSTER_NODE_NAME" "extendedKeyUsage=clientAuth"
    pki_cert kubelet-serving "/CN=$CLUSTER_NODE_NAME" "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:$CLUSTER_NODE_IP,DNS:$CLUSTER_NODE_NAME"
    pki_cert kube-scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
    pki_cert kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
    # The API server towards kubelets; the kubelet's webhook authorizer asks the API server, which
    # allows system:masters everything.
    pki_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
    # The aggregation layer's identity towards extension API servers (request-header auth).
    pki_cert front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth"
    # Service-account tokens are signed by the apiserver (TokenRequest) and the token
    # controller (legacy secrets) with this key; the apiserver verifies them with the public half.
    if [[ ! -s "$PKI/sa.pub" ]]; then
      openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
      openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
    fi
  )
}

# write_kubeconfig FILE CERT_NAME: a kubeconfig with embedded client certificate. Rewritten on
# each start (atomically) so it always points at the configured port.
write_kubeconfig() {
  local file="$1" cert="$2" tmp="$1.tmp"
  rm -f "$tmp"
  (
    umask 077
    kc() { "$KUBECTL" config --kubeconfig="$tmp" "$@" >/dev/null; }
    kc set-cluster devstack --server="$API_URL" --certificate-authority="$PKI/ca.crt" --embed-certs=true
    kc set-credentials "$cert" --client-certificate="$PKI/$cert.crt" --client-key="$PKI/$cert.key" --embed-certs=true
    kc set-context devstack --cluster=devstack --user="$cert"
    kc use-context devstack
  )
  mv "$tmp" "$file"
}

kctl() { "$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" "$@"; }
etcd_healthy() {
  curl -sf --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/apiserver-etcd-client.crt" \
    --key "$PKI/apiserver-etcd-client.key" "$ETCD_URL/health" | grep '"health":"true"' >/dev/null
}
apiserver_ready() { kctl --request-timeout=5s get --raw /readyz; }
# /healthz is always allowed on the controller-manager; its serving cert is self-signed.
kcm_healthy() { curl -sfk --max-time 3 "https://127.0.0.1:$KUBE_CONTROLLER_MANAGER_PORT/healthz"; }
all_healthy() {
  is_running etcd && is_running kube-controller-manager \
    && etcd_healthy && apiserver_ready && kcm_healthy
}

start() {
  install
  ensure_pki
  write_kubeconfig "$KUBECONFIG_FILE" admin
  write_kubeconfig "$K8S_STATE/controller-manager.kubeconfig" controller-manager

  # Single member; peer traffic never happens, so the peer URL stays plain HTTP on loopback.
  # No fsync, as PostgreSQL here (fsync=off): the stack's state is disposable, and on this VM each fsync took
  # ~5 ms, which every write to the API server (a run's status patches) waited for.
  start_daemon etcd "$ETCD_BIN/etcd" --name=devstack --data-dir="$K8S_STATE/etcd" \
    --listen-client-urls="$ETCD_URL" --advertise-client-urls="$ETCD_URL" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="devstack=http://127.0.0.1:$ETCD_PEER_PORT" \
    --client-cert-auth --trusted-ca-file="$PKI/ca.crt" \
    --cert-file="$PKI/etcd.crt" --key-file="$PKI/etcd.key" --unsafe-no-fsync --log-level=warn
  wait_for etcd etcd_healthy

  # --requestheader-*/--proxy-client-*: the aggregation layer; the controller-manager's delegated
  # authentication also reads that CA and logs errors without it. The shared CA is safe
  # because only the CN front-proxy-client may assert identity headers.
  # --shutdown-send-retry-after: on SIGTERM wait 2s, not --request-timeout (60s), for open watches
  # (an operator's) to close; otherwise `stop` always ran into its KILL fallback.
  # --endpoint-reconciler-type: the `kubernetes` Service's endpoint is the advertise address; a
  # loopback address is invalid there (it would log errors forever), the node's is what pods dial.
  local reconciler=none
  [[ "$LAKEHOUSE_BIND" == 127.* ]] || reconciler=lease
  start_daemon kube-apiserver "$K8S_BIN/kube-apiserver" \
    --bind-address="$LAKEHOUSE_BIND" --advertise-address="$LAKEHOUSE_BIND" \
    --secure-port="$KUBE_APISERVER_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --etcd-servers="$ETCD_URL" --etcd-cafile="$PKI/ca.crt" \
    --etcd-certfile="$PKI/apiserver-etcd-client.crt" --etcd-keyfile="$PKI/apiserver-etcd-client.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" --endpoint-reconciler-type="$reconciler" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP,Hostname \
    --requestheader-client-ca-file="$PKI/ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
    --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --shutdown-send-retry-after --profiling=false
  wait_for kube-apiserver apiserver_ready

  # --leader-elect=false: a single instance, and a restart need not wait for an old lease.
  # --use-service-account-credentials: each controller acts as its own service account.
  start_daemon kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$K8S_STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$K8S_STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$K8S_STATE/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KUBE_CONTROLLER_MANAGER_PORT" \
    --cert-dir="$K8S_STATE/controller-manager" \
    --controllers="$KCM_CONTROLLERS" --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-name=devstack --profiling=false
  wait_for kube-controller-manager kcm_healthy
  # Pods and clients expect the `default` service account; the serviceaccount controller
  # creates it shortly after start-up.
  wait_for kube-controller-manager kctl -n default get serviceaccount default
}

stop() {
  stop_daemon kube-controller-manager
  stop_daemon kube-apiserver
  stop_daemon etcd
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status_line kube-apiserver all_healthy ;;
  env)
    printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
    printf 'export KUBECTL=%q\n' "$KUBECTL" ;;
  kubectl) shift; exec "$KUBECTL" --kubeconfig="$KUBECONFIG_FILE" "$@" ;;
  # kubeconfig NAME: a kubeconfig for the certificate NAME (the node's parts), printed as a path.
  kubeconfig) ensure_pki; write_kubeconfig "$K8S_STATE/$2.kubeconfig" "$2"; echo "$K8S_STATE/$2.kubeconfig" ;;
  bin) echo "$K8S_BIN" ;;
  *) echo "usage: $0 install|start|stop|status|env|kubectl ARGS...|kubeconfig NAME|bin" >&2; exit 2 ;;
esac
