# The weave router image: `weaver` with the `weave` CLI, the CNI plugin and the
# Kubernetes launcher, for running the router in a container (host network,
# privileged) instead of as a host daemon.
#   docker build -t weave-net-ts:2.8.1 .
# The entry point is the router itself: give it its flags and peers. Without
# --http-addr it serves no API (so no `weave` CLI, no CNI plugin) and without
# --ipalloc-range it runs no IPAM, so pass both as `weave launch` would:
# --restart=always brings the router back after a crash or a reboot, as
# Weave's `weave launch` did (on a host without Docker, `weave setup`
# installs a systemd unit that does the same):
#   docker run -d --name weave --restart=always --net=host --pid=host --privileged \
#     -v /var/lib/weave:/var/lib/weave -v /run/netns:/run/netns weave-net-ts:2.8.1 \
#     --http-addr=127.0.0.1:6784 --ipalloc-range=10.32.0.0/12 [peers...]
# Kubernetes runs `/weave/bin/weave-kube init` and `/weave/bin/weave-kube launch`
# from it (k8s/weave-daemonset-k8s.yaml).
FROM node:20-bookworm-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends clang llvm libbpf-dev make && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.json && node scripts/bundle-router.mjs && make --no-print-directory bpf && npm prune --omit=dev

FROM node:20-bookworm-slim
# iptables: the FORWARD rules on hosts whose iptables filters (kube-proxy's, Docker's) and the --expect-npc gate.
RUN apt-get update && apt-get install -y --no-install-recommends libbpf1 iproute2 nftables iptables && rm -rf /var/lib/apt/lists/*
WORKDIR /weave
COPY --from=build /src/dist ./dist
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/bin ./bin
COPY --from=build /src/package.json ./
ENV PATH=/weave/bin:$PATH WEAVE_STATE_DIR=/var/lib/weave
ENTRYPOINT ["/weave/bin/weaver"]
