#!/usr/bin/env bash
# kernel-lab.sh — run one command inside a throwaway VM booted from Debian's stock kernel.
#
# The host kernel of the build machines lacks the openvswitch datapath and ESP; Debian's kernel
# has both. The guest sees the host's filesystem read-only (virtio-9p) under a tmpfs overlay, so
# node, iproute2 and dist/ are all there; the guest's /out is the host folder given with -o.
#
#   kernel-lab.sh [-o OUTDIR] [-m MEM_MB] [-c CPUS] [-t TIMEOUT_S] -- COMMAND...
#
# The command runs as root in the guest, in the caller's current directory; its stdout and
# stderr (merged) are printed here and its exit status is ours. 99: the guest never reported a
# status (boot failure or timeout) — the console tail is then printed on stderr.
# QEMU runs in TCG software emulation: nested KVM hangs on these machines.
set -euo pipefail
OUT=""; MEM=2048; CPUS=2; TMO=900
while [ $# -gt 0 ]; do case "$1" in
  -o) OUT=$2; shift 2;; -m) MEM=$2; shift 2;; -c) CPUS=$2; shift 2;; -t) TMO=$2; shift 2;;
  --) shift; break;; *) break;; esac; done
[ $# -gt 0 ] || { echo "usage: $0 [-o OUTDIR] [-m MEM_MB] [-c CPUS] [-t TIMEOUT_S] -- COMMAND..." >&2; exit 2; }

CACHE=${KERNEL_LAB_CACHE:-/var/cache/kernel-lab}
mkdir -p "$CACHE"
have() { command -v "$1" >/dev/null 2>&1; }

# 1. tools, the kernel package and a command-independent initramfs, once per cache.
#    A lock keeps concurrent first runs from downloading twice.
exec 9>"$CACHE/.lock"; flock 9
if ! have qemu-system-x86_64 || ! have cpio || ! [ -x /bin/busybox ] || ! have depmod; then
  echo "kernel-lab: installing qemu-system-x86 busybox-static cpio kmod" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends qemu-system-x86 busybox-static cpio kmod >/dev/null
fi
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
if [ ! -f "$CACHE/ready" ]; then
  echo "kernel-lab: downloading Debian's linux-image into $CACHE (once)" >&2
  pkg=$(kernel_pkg); [ -n "$pkg" ] || { apt-get update -qq >/dev/null; pkg=$(kernel_pkg); }
  [ -n "$pkg" ] || { echo "kernel-lab: apt-cache knows no linux-image-amd64 dependency (check /etc/apt/sources.list)" >&2; exit 2; }
  ( cd "$CACHE" && rm -rf root ./*.deb && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null && dpkg -x "$pkg"_*.deb root && rm -f ./*.deb )
  kver=$(ls "$CACHE/root/lib/modules" | head -1); depmod -b "$CACHE/root" "$kver"
  echo "$kver" > "$CACHE/kver"; touch "$CACHE/ready"
fi
KVER=$(cat "$CACHE/kver"); INITRD=$CACHE/initrd-$KVER.gz
if [ ! -f "$INITRD" ] || [ "$0" -nt "$INITRD" ]; then
  B=$(mktemp -d /tmp/kernel-lab-initrd.XXXXXX)
  I=$B/initrd; M=$CACHE/root/lib/modules/$KVER
  mkdir -p "$I"/{bin,proc,sys,dev,newroot,lower,rw,lib/modules/$KVER}
  cp /bin/busybox "$I/bin/"
  ( cd "$M" && tar cf - modules.* kernel/net kernel/crypto kernel/lib kernel/fs/9p kernel/fs/netfs \
      kernel/fs/fscache kernel/fs/overlayfs kernel/drivers/virtio kernel/drivers/net/vxlan \
      kernel/drivers/net/geneve.ko kernel/drivers/net/veth.ko kernel/drivers/net/tun.ko \
      kernel/drivers/net/dummy.ko kernel/arch/x86/crypto 2>/dev/null || true ) | ( cd "$I/lib/modules/$KVER" && tar xf - )
  # The init reads the command and working directory from /out, so this image is reusable.
  cat > "$I/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in crc32c_generic virtio_pci 9pnet_virtio 9p overlay openvswitch vport-vxlan vport-geneve \
         vxlan geneve esp4 esp6 xfrm_user xfrm_interface crypto_null jitterentropy_rng drbg \
         aes_generic aesni_intel ctr ghash_generic gcm seqiv echainiv authenc cbc hmac \
         sha256_generic sha1_generic chacha20poly1305 veth tun dummy bridge br_netfilter \
         nf_conntrack nf_nat iptable_nat iptable_filter nft_chain_nat nf_tables \
         nft_fib nft_fib_inet nft_fib_ipv4 nft_ct nft_masq nft_nat nft_reject nft_reject_inet; do
  modprobe $m 2>/dev/null || true
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /lower
mount -t tmpfs tmpfs /rw; mkdir -p /rw/up /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/up,workdir=/rw/work /newroot
mkdir -p /newroot/out; mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 hostout /newroot/out
mount --move /proc /newroot/proc; mount --move /sys /newroot/sys; mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh -c '
  # A fresh /tmp, unless the project itself lives under /tmp (a CI clone): then keep the host view.
  case "$(cat /out/.cwd)" in /tmp/*) ;; *) mount -t tmpfs tmpfs /tmp;; esac
  mount -t tmpfs tmpfs /run; mkdir -p /run/netns /var/run
  mount -t bpf bpf /sys/fs/bpf 2>/dev/null; mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null
  ip link set lo up
  export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
  cd "$(cat /out/.cwd)"; set --; while IFS= read -r a; do set -- "$@" "$a"; done < /out/.argv
  "$@" > /out/.stdout 2>&1; echo $? > /out/.rc; sync; poweroff -f'
INIT
  chmod +x "$I/init"
  ( cd "$I" && find . | cpio -o -H newc 2>/dev/null | gzip -1 > "$B/initrd.gz" ) && mv "$B/initrd.gz" "$INITRD"
  rm -rf "$B"
fi
flock -u 9

# 2. boot, with the host's / read-only and OUTDIR read-write
WORK=$(mktemp -d /tmp/kernel-lab.XXXXXX); trap 'rm -rf "$WORK"' EXIT
[ -n "$OUT" ] || OUT=$WORK/out
mkdir -p "$OUT"; rm -f "$OUT/.rc" "$OUT/.stdout"
printf '%s\n' "$@" > "$OUT/.argv"; pwd > "$OUT/.cwd"
qrc=0
timeout "$TMO" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m "$MEM" -smp "$CPUS" \
  -nographic -no-reboot -kernel "$CACHE/root/boot/vmlinuz-$KVER" -initrd "$INITRD" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$OUT",mount_tag=hostout,security_model=none,multidevs=remap \
  -append "console=ttyS0 panic=-1 loglevel=1 quiet" > "$WORK/console.log" 2>&1 || qrc=$?
cat "$OUT/.stdout" 2>/dev/null || true
if [ -f "$OUT/.rc" ]; then rc=$(cat "$OUT/.rc"); else
  rc=99
  [ "$qrc" = 124 ] && echo "kernel-lab: the guest did not finish within $TMO s (raise -t)" >&2
  echo "kernel-lab: the guest reported no exit status (qemu exit $qrc); console tail:" >&2
  tail -30 "$WORK/console.log" >&2
fi
rm -f "$OUT/.argv" "$OUT/.cwd" "$OUT/.rc" "$OUT/.stdout"
exit "$rc"
