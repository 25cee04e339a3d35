#!/usr/bin/env bash
# Installs what building, the demo and the tests need on a Debian host (root).
# Idempotent: installs only what is missing, and `npm ci` only when the lock file changed.
set -euo pipefail
cd "$(dirname "$0")/.."

need_cmd() { command -v "$1" >/dev/null 2>&1; }
missing=()
need_cmd ip        || missing+=(iproute2)
need_cmd ping      || missing+=(iputils-ping)
need_cmd curl      || missing+=(curl)
need_cmd ss        || missing+=(iproute2)
need_cmd iperf3    || missing+=(iperf3)
need_cmd tcpdump   || missing+=(tcpdump)
need_cmd nft       || missing+=(nftables)
need_cmd ethtool   || missing+=(ethtool)
need_cmd clang     || missing+=(clang llvm)
need_cmd gcc       || missing+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
need_cmd bpftool   || missing+=(bpftool)
[ -f /usr/include/bpf/libbpf.h ] || missing+=(libbpf-dev)
need_cmd qemu-system-x86_64 || missing+=(qemu-system-x86)
[ -x /bin/busybox ] || missing+=(busybox-static)
need_cmd cpio      || missing+=(cpio)
need_cmd depmod    || missing+=(kmod)
need_cmd dockerd   || missing+=(docker.io)
need_cmd podman    || missing+=(podman)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# bpffs for pinned maps (not mounted by default on these machines)
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true

# node dependencies: prebuilt binaries only, no install scripts run
stamp=node_modules/.lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
