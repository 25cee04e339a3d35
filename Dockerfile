# The weave router image: `weaver` with the `weave` CLI, for running the router in a
# container (host network, privileged) instead of as a host daemon.
#   docker build -t weave-net-ts .
#   docker run -d --name weave --net=host --pid=host --privileged \
#     -v /var/lib/weave:/var/lib/weave -v /run/netns:/run/netns weave-net-ts launch-router [peers...]
FROM node:20-bookworm-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends clang llvm libbpf-dev make && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.json && make --no-print-directory bpf && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libbpf1 iproute2 nftables && rm -rf /var/lib/apt/lists/*
WORKDIR /weave
COPY --from=build /src/dist ./dist
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/bin ./bin
COPY --from=build /src/package.json ./
ENV PATH=/weave/bin:$PATH WEAVE_STATE_DIR=/var/lib/weave
ENTRYPOINT ["/weave/bin/weaver"]
