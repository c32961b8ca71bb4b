#!/usr/bin/env bash
# Debian packages the stack needs beyond what this kind of machine ships (Go, JDK 17, Maven, Python 3.11).
# Installs only what is missing, so a warm machine does no apt work at all.
source "$(dirname "$0")/lib.sh"

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v mvn >/dev/null || need_apt+=(maven)
[[ -x "$JAVA17_HOME/bin/java" ]] || need_apt+=(openjdk-17-jdk-headless)
[[ -x "/usr/lib/postgresql/$POSTGRES_MAJOR/bin/postgres" ]] || need_apt+=("postgresql-$POSTGRES_MAJOR" postgresql-client)
command -v curl >/dev/null || need_apt+=(curl)
# The one-node cluster (services/cluster.sh) and its images (images.sh): a container runtime, pod
# networking, the rules kube-proxy writes, and image builds without a Docker engine or a registry.
command -v containerd >/dev/null || need_apt+=(containerd)
command -v runc >/dev/null || need_apt+=(runc)
[[ -x /usr/lib/cni/bridge ]] || need_apt+=(containernetworking-plugins)
command -v iptables >/dev/null || need_apt+=(iptables)
command -v conntrack >/dev/null || need_apt+=(conntrack)
command -v ip >/dev/null || need_apt+=(iproute2)
# images.sh: podman builds (no recommends needed: root, overlay, host network), mmdebstrap makes the
# base image from the Debian mirror, gcc and the static libc compile the pause binary.
command -v podman >/dev/null || need_apt+=(podman)
command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
command -v gcc >/dev/null || need_apt+=(gcc)
compgen -G '/usr/lib/*/libc.a' >/dev/null || need_apt+=(libc6-dev)

if ((${#need_apt[@]})); then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

command -v go >/dev/null || die "Go is required (this machine kind ships it at /usr/local/go/bin)"
command -v python3.11 >/dev/null || python3 -c 'import sys; assert sys.version_info[:2] == (3, 11)' \
  || die "Python 3.11 is required"
