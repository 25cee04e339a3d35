#!/bin/sh
# Builds the managed Docker plugin (user-surface spec §7.2, Weave's weaveworks/net-plugin) as a
# folder `docker plugin create NAME OUTDIR` takes: OUTDIR/config.json and OUTDIR/rootfs with
# node, busybox as /bin/sh, the built router
# (dist/) with its production dependencies for this platform, and launch.sh as entrypoint.
#
#   make build && scripts/build-net-plugin.sh OUTDIR
#   docker plugin create weave/net-plugin:latest OUTDIR
#   docker plugin set weave/net-plugin:latest EXTRA_ARGS="10.0.0.2 10.0.0.3"   # the peers
#   docker plugin enable weave/net-plugin:latest
#   docker network create -d weave/net-plugin:latest --attachable net   # (Swarm mode)
#
# Settable: WEAVE_PASSWORD WEAVE_MULTICAST WEAVE_MTU WEAVE_NO_FASTDP IPALLOC_RANGE LOG_LEVEL
# EXTRA_ARGS (router flags and peers) WEAVE_STATE_DIR (default /host/var/lib/weave, the host's
# /var/lib/weave, so the peer name and IPAM ring survive reinstalling the plugin).
set -eu

out=${1:?usage: scripts/build-net-plugin.sh OUTDIR}
repo=$(cd "$(dirname "$0")/.." && pwd)
root=$out/rootfs
[ -f "$repo/dist/router/weaver.cjs" ] && [ -f "$repo/dist/weaver/start.cjs" ] || { echo "build-net-plugin: run 'make build' first" >&2; exit 1; }
for tool in node busybox; do
  command -v "$tool" >/dev/null || { echo "build-net-plugin: $tool is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done

rm -rf "$out"
mkdir -p "$root/bin" "$root/weave" "$root/run/docker/plugins" "$root/host" "$root/etc" "$root/tmp" "$root/var/lib"

# A binary and the shared libraries it loads, at the same paths.
copy_with_libs() {
  cp -L --parents "$1" "$root"
  ldd "$1" | grep -o '/[^ )]*' | while read -r lib; do cp -L --parents "$lib" "$root"; done
}
copy_with_libs "$(command -v node)"
# Loaded by the router at run time (koffi dlopen), not linked.
for lib in libbpf.so.1; do
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|aarch64|AArch64/ { print $NF; exit }')
  [ -n "$path" ] || { echo "build-net-plugin: $lib not found (apt-get install libbpf1)" >&2; exit 1; }
  copy_with_libs "$path"
done
ln -sf "$(command -v node)" "$root/bin/node"
cp -L "$(command -v busybox)" "$root/bin/busybox"
for applet in sh hostname mkdir cat; do ln -sf busybox "$root/bin/$applet"; done

# The router and what it imports at run time, without other platforms' prebuilt binaries.
cp -r "$repo/dist" "$repo/package.json" "$root/weave/"
rm -rf "$root/weave/dist/test" "$root/weave/dist/bench"
(cd "$repo" && npm ls --omit=dev --parseable --all 2>/dev/null) | while read -r dir; do
  [ "$dir" = "$repo" ] && continue
  rel=${dir#"$repo"/}
  [ -d "$root/weave/$rel" ] && continue
  mkdir -p "$root/weave/$(dirname "$rel")"
  cp -r "$dir" "$root/weave/$rel"
done
platform="linux-$(uname -m | sed 's/x86_64/x64/; s/aarch64/arm64/')"
for prebuilds in "$root"/weave/node_modules/*/prebuilds; do
  [ -d "$prebuilds" ] || continue
  for p in "$prebuilds"/*; do [ "$(basename "$p")" = "$platform" ] || rm -rf "$p"; done
done

cat > "$root/launch.sh" <<'EOF'
#!/bin/sh
# The managed plugin's router (spec §4.4, v2 plugin): no DNS, no Docker API, one socket.
set -e
export PATH=/bin:/usr/bin:/usr/sbin:/sbin
IPALLOC_RANGE=${IPALLOC_RANGE:-10.32.0.0/12}
HTTP_ADDR=${WEAVE_HTTP_ADDR:-127.0.0.1:6784}
STATUS_ADDR=${WEAVE_STATUS_ADDR:-0.0.0.0:6782}
LOG_LEVEL=${LOG_LEVEL:-info}
STATE_DIR=${WEAVE_STATE_DIR:-/host/var/lib/weave}
mkdir -p "$STATE_DIR"
set -- --port=6783 --datapath=datapath --host-root=/host --proc-path=/host/proc \
  --http-addr="$HTTP_ADDR" --status-addr="$STATUS_ADDR" --no-dns --ipalloc-range="$IPALLOC_RANGE" \
  --nickname "$(hostname)" --log-level="$LOG_LEVEL" --state-dir="$STATE_DIR" \
  --plugin-v2 --plugin-mesh-socket='' --docker-api=''
[ -z "${WEAVE_MTU:-}" ] || set -- "$@" --mtu "$WEAVE_MTU"
[ -z "${WEAVE_NO_FASTDP:-}" ] || set -- "$@" --no-fastdp
[ -z "${WEAVE_MULTICAST:-}" ] || set -- "$@" --plugin-v2-multicast
# Two malloc arenas, as `weave launch` starts the router (controlplane/cli/daemon.ts WEAVER_ENV_DEFAULTS).
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
# EXTRA_ARGS is split on blanks on purpose: flags and peers.
# shellcheck disable=SC2086
exec /bin/node --max-semi-space-size=1 --heap-growing-percent=20 --interrupt-budget=1081344 /weave/dist/weaver/start.cjs "$@" $EXTRA_ARGS
EOF
chmod +x "$root/launch.sh"

setting() {
  printf '    { "description": "%s", "name": "%s", "settable": ["value"], "value": "%s" }' "$2" "$1" "${3:-}"
}
{
  cat <<'EOF'
{
  "description": "Weave Net plugin for Docker",
  "documentation": "README.md, 'With Docker'",
  "entrypoint": ["/launch.sh"],
  "interface": { "socket": "weave.sock", "types": ["docker.networkdriver/1.0"] },
  "linux": { "capabilities": ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_NET_RAW"] },
  "network": { "type": "host" },
  "mounts": [
    { "destination": "/host/proc/", "type": "bind", "source": "/proc/", "options": ["rbind", "rw"] },
    { "destination": "/host/var/lib/", "type": "bind", "source": "/var/lib/", "options": ["rbind"] },
    { "destination": "/host/etc/", "type": "bind", "source": "/etc/", "options": ["rbind"] },
    { "destination": "/host/sys/", "type": "bind", "source": "/sys/", "options": ["rbind", "rw"] }
  ],
  "env": [
EOF
  setting LOG_LEVEL 'Log level' ''; echo ','
  setting EXTRA_ARGS 'Extra router flags and the peers' ''; echo ','
  setting WEAVE_PASSWORD 'Encryption password' ''; echo ','
  setting WEAVE_MTU 'MTU' ''; echo ','
  setting WEAVE_NO_FASTDP 'Sleeve only (no fast datapath)' ''; echo ','
  setting WEAVE_MULTICAST 'Enable multicast for all Weave networks' ''; echo ','
  setting IPALLOC_RANGE 'The range of IP addresses used by Weave Net' ''; echo ','
  setting WEAVE_STATE_DIR 'Router state directory' ''; echo
  cat <<'EOF'
  ],
  "workdir": ""
}
EOF
} > "$out/config.json"
echo "$out"
