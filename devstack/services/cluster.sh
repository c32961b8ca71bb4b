#!/usr/bin/env bash
# The one-node cluster of the local stack (CLUSTER=1): a node for the control plane of
# services/kubernetes.sh, so that pods really run.
#   network   the bridge $CLUSTER_BRIDGE with the node address; every server of the stack binds it
#   start     containerd (+ runc, bridge CNI), the images built here, kubelet, kube-scheduler,
#             kube-proxy (iptables), CoreDNS, and Services that name the host's servers for pods
#   stop      removes the node: pods, containers, mounts, cgroups
#   network-down  after the servers stopped: the bridge, and the host's iptables rules and sysctls as they were
# Usage: cluster.sh install|network|start|stop|network-down|status|env|crictl ARGS...|tag-image SOURCE TARGET
# shellcheck source=devstack/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

CLUSTER_STATE="$LAKEHOUSE_STATE_DIR/cluster"
K8S_BIN="$("$DEVSTACK_DIR/services/kubernetes.sh" bin)"
CRICTL_BIN="$BIN_DIR/crictl-$CRICTL_VERSION/crictl"
CONTAINERD_SOCK="$CONTAINERD_RUN_DIR/containerd.sock"
# Images and snapshots outlive the stack (rebuilding them is minutes); containers do not.
CONTAINERD_ROOT="$LAKEHOUSE_CACHE_DIR/containerd"
KUBELET_ROOT="$CLUSTER_STATE/kubelet"
CNI_CONF_DIR="$CLUSTER_STATE/cni/net.d"
# Every pod's cgroup lives below this one, in each hierarchy; nothing else is touched.
CGROUP_ROOT=lakehouse
# Paths the kubelet uses whatever it is told; stop removes what it left there.
KUBELET_FIXED_PATHS=(/var/lib/kubelet /var/log/pods /var/log/containers)
# What the kubelet and kube-proxy change on the host; start records the values, stop restores them.
SYSCTLS=(kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.ipv4.ip_forward net.ipv4.conf.all.route_localnet
  net.bridge.bridge-nf-call-iptables net.netfilter.nf_conntrack_max)
# The host's servers that pods may reach on the node address (through the Services of HOST_SERVICES,
# the `kubernetes` Service); every other port of the node is closed to them.
POD_REACHABLE_PORTS="$POSTGRES_PORT,$KAFKA_CLUSTER_PORT,$S3_PORT,$ICEBERG_REST_PORT,$KUBE_APISERVER_PORT"
# iptables chains this cluster owns (ours and the kubelet's and kube-proxy's); network-down removes them.
CHAIN_PREFIXES="LAKEHOUSE-|KUBE-"

kctl() { stack_kubectl "$@"; }
crictl() { "$CRICTL_BIN" --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 30s "$@"; }

# write_if_changed FILE: stdin into FILE, untouched when equal (kube-proxy exits when its file changes).
# Returns 1 when the file changed, so that a running daemon can be restarted to read it.
write_if_changed() {
  local file="$1"
  cat > "$file.new"
  if cmp -s "$file.new" "$file"; then rm -f "$file.new"; return 0; fi
  mv "$file.new" "$file"
  return 1
}

install() {
  [[ -x /usr/bin/containerd && -x /usr/sbin/runc && -x /usr/lib/cni/bridge && -x /usr/sbin/iptables ]] \
    || die "containerd, runc, the CNI plugins and iptables are missing: run devstack/system-deps.sh"
  "$DEVSTACK_DIR/services/kubernetes.sh" install
  go_tool_install crictl "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
  "$DEVSTACK_DIR/images.sh" build
}

# --- network: before any server starts, so that they can bind the node address ---

network() {
  mkdir -p "$CLUSTER_STATE"
  record_host_state
  if ! ip link show "$CLUSTER_BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $CLUSTER_BRIDGE ($CLUSTER_NODE_IP)"
    ip link add "$CLUSTER_BRIDGE" type bridge
  fi
  local prefix="${CLUSTER_POD_CIDR#*/}"
  ip addr show dev "$CLUSTER_BRIDGE" | grep "inet $CLUSTER_NODE_IP/" >/dev/null \
    || ip addr add "$CLUSTER_NODE_IP/$prefix" dev "$CLUSTER_BRIDGE"
  ip link set "$CLUSTER_BRIDGE" up
  guard_node_address
  # Pods' packets to Service addresses are routed (and DNATed) by this host.
  sysctl -qw net.ipv4.ip_forward=1
}

# The node address and the pod and Service ranges exist for this host and its pods only. Linux would
# accept packets for them from any interface, so anything arriving from elsewhere is dropped, pods
# reach only the published ports of the node, and nothing is forwarded from pods to the outside.
guard_node_address() {
  iptables -N LAKEHOUSE-INPUT 2>/dev/null || iptables -F LAKEHOUSE-INPUT
  iptables -A LAKEHOUSE-INPUT -i lo -j RETURN
  iptables -A LAKEHOUSE-INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  iptables -A LAKEHOUSE-INPUT -i "$CLUSTER_BRIDGE" -p tcp -m multiport --dports "$POD_REACHABLE_PORTS" -j RETURN
  iptables -A LAKEHOUSE-INPUT -i "$CLUSTER_BRIDGE" -j DROP
  iptables -A LAKEHOUSE-INPUT -d "$CLUSTER_NODE_IP" -j DROP
  iptables -N LAKEHOUSE-FORWARD 2>/dev/null || iptables -F LAKEHOUSE-FORWARD
  iptables -A LAKEHOUSE-FORWARD -i "$CLUSTER_BRIDGE" -o "$CLUSTER_BRIDGE" -j RETURN
  iptables -A LAKEHOUSE-FORWARD -i "$CLUSTER_BRIDGE" -j DROP
  iptables -A LAKEHOUSE-FORWARD -d "$CLUSTER_POD_CIDR" -j DROP
  iptables -A LAKEHOUSE-FORWARD -d "$CLUSTER_SERVICE_CIDR" -j DROP
  # Before any address translation (kube-proxy's FORWARD rules accept what it marked, and FORWARD sees
  # Service addresses already translated): the ranges and the node address, from other interfaces.
  iptables -t raw -N LAKEHOUSE-PREROUTING 2>/dev/null || iptables -t raw -F LAKEHOUSE-PREROUTING
  iptables -t raw -A LAKEHOUSE-PREROUTING -i lo -j RETURN
  iptables -t raw -A LAKEHOUSE-PREROUTING -i "$CLUSTER_BRIDGE" -j RETURN
  local range
  for range in "$CLUSTER_NODE_IP/32" "$CLUSTER_POD_CIDR" "$CLUSTER_SERVICE_CIDR"; do
    iptables -t raw -A LAKEHOUSE-PREROUTING -d "$range" -j DROP
  done
  iptables -t raw -C PREROUTING -j LAKEHOUSE-PREROUTING 2>/dev/null || iptables -t raw -I PREROUTING 1 -j LAKEHOUSE-PREROUTING
  local chain
  for chain in INPUT FORWARD; do
    iptables -C "$chain" -j "LAKEHOUSE-$chain" 2>/dev/null || iptables -I "$chain" 1 -j "LAKEHOUSE-$chain"
  done
}

# Saved once per boot while the cluster runs (a second start must not record the cluster's own
# values), restored by network-down.
record_host_state() {
  local boot; boot="$(cat /proc/sys/kernel/random/boot_id)"
  [[ -f "$CLUSTER_STATE/sysctls.saved" && "$(head -n1 "$CLUSTER_STATE/sysctls.saved")" == "# boot $boot" ]] && return 0
  local key
  {
    echo "# boot $boot"
    for key in "${SYSCTLS[@]}"; do
      [[ -e "/proc/sys/${key//.//}" ]] && echo "$key=$(sysctl -n "$key")"
    done
  } > "$CLUSTER_STATE/sysctls.saved.tmp"
  mv "$CLUSTER_STATE/sysctls.saved.tmp" "$CLUSTER_STATE/sysctls.saved"
  # The kubelet's fixed paths that exist before it runs are the host's: network-down keeps them.
  local path
  for path in "${KUBELET_FIXED_PATHS[@]}"; do [[ -e "$path" ]] || echo "$path"; done > "$CLUSTER_STATE/created-paths"
}

write_cni_config() {
  mkdir -p "$CNI_CONF_DIR" "$CLUSTER_STATE/cni/ipam"
  # The bridge exists already (network); the plugin attaches each pod's veth to it and hands out
  # addresses above the node's. No masquerade and no default route: pods talk only to this host, to
  # each other and to Service addresses.
  cat > "$CNI_CONF_DIR/10-lakehouse.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "lakehouse",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CLUSTER_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CLUSTER_STATE/cni/ipam",
        "ranges": [[{"subnet": "$CLUSTER_POD_CIDR", "gateway": "$CLUSTER_NODE_IP"}]],
        "routes": [{"dst": "$CLUSTER_SERVICE_CIDR"}]
      }
    }
  ]
}
EOF
}

# --- containerd ---

# write_containerd_config PAUSE_IMAGE (computed by the caller: inside `f || g`, set -e is off).
write_containerd_config() {
  local pause_image="$1"
  mkdir -p "$CLUSTER_STATE/containerd" "$CONTAINERD_ROOT" "$CONTAINERD_RUN_DIR"
  # restrict_oom_score_adj: runc cannot lower oom_score_adj without CAP_SYS_RESOURCE, which this
  # machine does not grant; sandbox_image: the pause image built here (no registry to pull from).
  write_if_changed "$CLUSTER_STATE/containerd/config.toml" <<EOF
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_RUN_DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$CONTAINERD_SOCK"

[ttrpc]
  address = "$CONTAINERD_RUN_DIR/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Pod network namespaces under our run folder, where stop finds (and removes) exactly ours.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI_CONF_DIR"
    max_conf_num = 1

[plugins."io.containerd.internal.v1.opt"]
  path = "$CONTAINERD_ROOT/opt"
EOF
}

containerd_ready() { ctr_ version; }
ctr_() { ctr --address "$CONTAINERD_SOCK" "$@"; }

start_containerd() {
  write_cni_config
  # Containers live on in their shims (process groups of their own) across a restart of containerd,
  # and pods across a restart of the kubelet.
  local pause_image
  pause_image="$("$DEVSTACK_DIR/images.sh" content-ref pause)"
  write_containerd_config "$pause_image" || restart_on_change containerd
  start_daemon containerd /usr/bin/containerd --config "$CLUSTER_STATE/containerd/config.toml"
  wait_for containerd containerd_ready
  "$DEVSTACK_DIR/images.sh" import "$CONTAINERD_SOCK"
}

# --- kubelet ---

ensure_cgroup_root() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/; do
    [[ -f "$hierarchy/cgroup.procs" ]] || continue
    mkdir -p "$hierarchy$CGROUP_ROOT"
  done
  # A new v1 cpuset has no CPUs or memory nodes, and nothing can join it until it inherits them.
  local file
  for file in cpuset.cpus cpuset.mems; do
    [[ -f "/sys/fs/cgroup/cpuset/$CGROUP_ROOT/$file" && -z "$(cat "/sys/fs/cgroup/cpuset/$CGROUP_ROOT/$file")" ]] \
      && cat "/sys/fs/cgroup/cpuset/$file" > "/sys/fs/cgroup/cpuset/$CGROUP_ROOT/$file"
  done
  return 0
}

write_kubelet_config() {
  mkdir -p "$KUBELET_ROOT" "$CLUSTER_STATE/pod-logs" "$CLUSTER_STATE/volume-plugins"
  local pki="$LAKEHOUSE_STATE_DIR/kubernetes/pki"
  # cgroupfs/failCgroupV1: this machine has cgroups v1 and no systemd; failSwapOn: harmless here;
  # imageGC at 100%: the images cannot be pulled again, so they are never collected; evictions only
  # on real exhaustion; authentication by client certificate, authorization asked of the API server.
  write_if_changed "$CLUSTER_STATE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $CLUSTER_NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTH_PORT
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_ROOT
cgroupsPerQOS: true
enforceNodeAllocatable: [pods]
failCgroupV1: false
failSwapOn: false
oomScoreAdj: 0
clusterDNS: [$CLUSTER_DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: ""
podLogsDir: $CLUSTER_STATE/pod-logs
volumePluginDir: $CLUSTER_STATE/volume-plugins
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
maxPods: 60
serializeImagePulls: false
registerNode: true
staticPodPath: ""
shutdownGracePeriod: 0s
logging: {format: text}
EOF
}

node_ready() {
  [[ "$(kctl get node "$CLUSTER_NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# restart_on_change NAME: a running daemon whose configuration file changed is stopped, to start anew.
restart_on_change() {
  is_running "$1" || return 0
  log "$1's configuration changed: restarting it"
  stop_daemon "$1"
}

start_kubelet() {
  ensure_cgroup_root
  write_kubelet_config || restart_on_change kubelet
  local kubeconfig
  kubeconfig="$("$DEVSTACK_DIR/services/kubernetes.sh" kubeconfig kubelet)"
  start_daemon kubelet "$K8S_BIN/kubelet" --config="$CLUSTER_STATE/kubelet-config.yaml" \
    --kubeconfig="$kubeconfig" --root-dir="$KUBELET_ROOT" --cert-dir="$CLUSTER_STATE/kubelet-pki" \
    --hostname-override="$CLUSTER_NODE_NAME" --node-ip="$CLUSTER_NODE_IP" --v=1
  wait_for kubelet node_ready
}

# --- kube-scheduler and kube-proxy ---

scheduler_healthy() { curl -sfk --max-time 3 "https://127.0.0.1:$KUBE_SCHEDULER_PORT/healthz"; }
proxy_healthy() { curl -sf --max-time 3 "http://127.0.0.1:$KUBE_PROXY_HEALTH_PORT/healthz"; }

start_scheduler() {
  local kubeconfig
  kubeconfig="$("$DEVSTACK_DIR/services/kubernetes.sh" kubeconfig kube-scheduler)"
  start_daemon kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$kubeconfig" \
    --authentication-kubeconfig="$kubeconfig" --authorization-kubeconfig="$kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KUBE_SCHEDULER_PORT" --leader-elect=false --profiling=false
  wait_for kube-scheduler scheduler_healthy
}

start_proxy() {
  local kubeconfig
  kubeconfig="$("$DEVSTACK_DIR/services/kubernetes.sh" kubeconfig kube-proxy)"
  # masqueradeAll: without br_netfilter, a reply from a pod to a pod that reached it through a
  # Service IP would skip the host's conntrack; masquerading makes every Service hop go through it.
  # nodePortAddresses: NodePorts only on the node address, never on a public interface.
  # conntrack: leave the host's conntrack settings alone.
  write_if_changed "$CLUSTER_STATE/kube-proxy-config.yaml" <<EOF || restart_on_change kube-proxy
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $kubeconfig}
mode: iptables
clusterCIDR: $CLUSTER_POD_CIDR
hostnameOverride: $CLUSTER_NODE_NAME
bindAddress: $CLUSTER_NODE_IP
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTH_PORT
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
nodePortAddresses: ["$CLUSTER_NODE_IP/32"]
iptables: {masqueradeAll: true, syncPeriod: 30s, minSyncPeriod: 1s}
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start_daemon kube-proxy "$K8S_BIN/kube-proxy" --config="$CLUSTER_STATE/kube-proxy-config.yaml"
  wait_for kube-proxy proxy_healthy
}

# --- what runs in the cluster ---

# The host's servers under Service names, as managed services outside a cluster are reached:
# a selector-less Service and an EndpointSlice to the node address.
# NiFi is not among them: its HTTP API has no login in the stack, and no pod needs it.
HOST_SERVICES=(
  "postgres postgres 5432 $POSTGRES_PORT"
  "kafka kafka 9092 $KAFKA_CLUSTER_PORT"  # a listener of its own, advertised under this name (kafka.sh)
  "seaweedfs s3 8333 $S3_PORT"
  "iceberg iceberg-rest 8181 $ICEBERG_REST_PORT"
)

apply_host_services() {
  local entry namespace name port target
  for entry in "${HOST_SERVICES[@]}"; do
    read -r namespace name port target <<<"$entry"
    cat <<EOF
---
apiVersion: v1
kind: Namespace
metadata: {name: $namespace}
---
apiVersion: v1
kind: Service
metadata:
  name: $name
  namespace: $namespace
  labels: {app.kubernetes.io/part-of: lakehouse-devstack}
spec:
  ports: [{name: main, port: $port, targetPort: $target, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $name-host
  namespace: $namespace
  labels: {kubernetes.io/service-name: $name, endpointslice.kubernetes.io/managed-by: lakehouse-devstack}
addressType: IPv4
ports: [{name: main, port: $target, protocol: TCP}]
endpoints: [{addresses: ["$CLUSTER_NODE_IP"], conditions: {ready: true}}]
EOF
  done | kctl apply --server-side --force-conflicts -f - >/dev/null
}

start_dns() {
  local image
  image="$("$DEVSTACK_DIR/images.sh" ref coredns)"
  sed -e "s|COREDNS_IMAGE|$image|g" -e "s|CLUSTER_DNS_IP|$CLUSTER_DNS_IP|g" \
    -e "s|CLUSTER_DOMAIN|$CLUSTER_DOMAIN|g" "$DEVSTACK_DIR/cluster/coredns.yaml" \
    | kctl apply --server-side --force-conflicts -f - >/dev/null
  kctl -n kube-system rollout status deployment/coredns --timeout=180s >&2
}

start() {
  [[ "$CLUSTER" == 1 ]] || die "cluster.sh start needs CLUSTER=1 (the servers must bind $CLUSTER_NODE_IP)"
  install
  network
  start_containerd
  start_scheduler
  start_kubelet
  start_proxy
  apply_host_services
  start_dns
  log "cluster node $CLUSTER_NODE_NAME ready"
}

# --- stop: leave the host as it was ---

# remove_pods: with the kubelet stopped (else it recreates them), every pod through the CRI, then any
# task the CRI does not know; waits until containerd runs none.
remove_pods() {
  is_running containerd || return 0
  log "removing every pod and container"
  crictl stopp $(crictl pods -q 2>/dev/null) >/dev/null 2>&1 || true
  crictl rmp --all --force >/dev/null 2>&1 || true
  local id i
  for id in $(ctr_ -n k8s.io tasks ls -q 2>/dev/null); do ctr_ -n k8s.io tasks kill -s KILL "$id" 2>/dev/null || true; done
  for ((i = 0; i < 60; i++)); do
    [[ -z "$(ctr_ -n k8s.io tasks ls -q 2>/dev/null)" ]] && break
    sleep 0.5
  done
  for id in $(ctr_ -n k8s.io tasks ls -q 2>/dev/null); do ctr_ -n k8s.io tasks rm -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr_ -n k8s.io containers ls -q 2>/dev/null); do ctr_ -n k8s.io containers rm "$id" >/dev/null 2>&1 || true; done
}

# kill_cgroup_members: whatever still runs in our cgroups is a container that lost its shim.
kill_cgroup_members() {
  local procs pid
  { find /sys/fs/cgroup/*/"$CGROUP_ROOT" -name cgroup.procs 2>/dev/null || true; } | while read -r procs; do
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done < "$procs"
  done
  return 0
}

# unmount_below DIR: every mount point at or below DIR, deepest first.
unmount_below() {
  local dir="$1" mnt
  [[ -e "$dir" ]] || return 0
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r | uniq \
    | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

remove_cgroups() {
  local hierarchy dir
  for hierarchy in /sys/fs/cgroup/*/; do
    [[ -d "$hierarchy$CGROUP_ROOT" ]] || continue
    # Children before parents: rmdir only removes empty cgroups, so nothing running is touched.
    find "$hierarchy$CGROUP_ROOT" -depth -type d 2>/dev/null | while read -r dir; do rmdir "$dir" 2>/dev/null || true; done
    [[ ! -d "$hierarchy$CGROUP_ROOT" ]] || log "WARNING: $hierarchy$CGROUP_ROOT could not be removed (still in use)"
  done
}

# remove_chains: our chains and the kubelet's and kube-proxy's, and every rule that jumps to them, in
# each table; the host's own rules stay as they are.
remove_chains() {
  local tool table rule chain
  for tool in iptables ip6tables; do
    for table in filter nat mangle raw; do
      "$tool-save" -t "$table" >/dev/null 2>&1 || continue
      # (grep finding nothing is no failure here, whatever pipefail says)
      "$tool-save" -t "$table" | { grep -E "^-A .* -j ($CHAIN_PREFIXES)" || true; } \
        | { grep -vE "^-A ($CHAIN_PREFIXES)" || true; } | sed 's/^-A /-D /' \
        | while read -r rule; do eval "$tool -t $table $rule" || true; done
      for chain in $("$tool-save" -t "$table" | sed -nE "s/^:(($CHAIN_PREFIXES)[^ ]*) .*/\1/p"); do
        "$tool" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$tool-save" -t "$table" | sed -nE "s/^:(($CHAIN_PREFIXES)[^ ]*) .*/\1/p"); do
        "$tool" -t "$table" -X "$chain" || log "WARNING: $tool -t $table -X $chain failed"
      done
    done
  done
}

restore_host_state() {
  local line
  if [[ -f "$CLUSTER_STATE/sysctls.saved" ]]; then
    while read -r line; do
      [[ "$line" == "#"* ]] || sysctl -qw "$line" || log "WARNING: could not restore $line"
    done < "$CLUSTER_STATE/sysctls.saved"
    rm -f "$CLUSTER_STATE/sysctls.saved"
  fi
  remove_chains
}

stop() {
  # The node's agents first: a running kubelet would recreate the pods removed next.
  stop_daemon kube-proxy
  stop_daemon kube-scheduler
  stop_daemon kubelet
  remove_pods
  kill_cgroup_members
  stop_daemon containerd
  # The shims outlive containerd on purpose; with their containers gone they exit, but make sure.
  pkill -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null || true
  unmount_below "$KUBELET_ROOT"
  unmount_below "$CONTAINERD_RUN_DIR"
  unmount_below "$CONTAINERD_ROOT"
  rm -rf --one-file-system "$CONTAINERD_RUN_DIR" "$KUBELET_ROOT" "$CLUSTER_STATE/cni/ipam"
  local path
  if [[ -f "$CLUSTER_STATE/created-paths" ]]; then
    while read -r path; do unmount_below "$path"; rm -rf --one-file-system "$path"; done < "$CLUSTER_STATE/created-paths"
  fi
  remove_cgroups
}

# After the servers that bind the node address have stopped (stack.sh down calls it last).
network_down() {
  if ip link show "$CLUSTER_BRIDGE" >/dev/null 2>&1; then log "removing bridge $CLUSTER_BRIDGE"; ip link del "$CLUSTER_BRIDGE"; fi
  restore_host_state
}

status() {
  status_line containerd containerd_ready
  status_line kubelet node_ready
  status_line kube-scheduler scheduler_healthy
  status_line kube-proxy proxy_healthy
}

case "${1:-}" in
  install|network|start|stop) "$1" ;;
  network-down) network_down ;;
  # tag-image SOURCE TARGET: a second name for an image in the node's containerd (as a registry push would).
  tag-image) ctr_ -n k8s.io images tag --force "${2:?}" "${3:?}" >/dev/null ;;
  host-services) apply_host_services ;;
  status) status ;;
  env) printf 'export CONTAINERD_ADDRESS=%q\nexport CLUSTER_NODE_IP=%q\n' "$CONTAINERD_SOCK" "$CLUSTER_NODE_IP" ;;
  crictl) shift; crictl "$@" ;;
  *) echo "usage: $0 install|network|start|stop|network-down|status|env|crictl ARGS..." >&2; exit 2 ;;
esac
