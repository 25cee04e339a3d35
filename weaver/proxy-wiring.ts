// Wires the Docker API proxy (controlplane/docker) into weaver: with --proxy
// it listens on the -H addresses, forwards to the daemon named by
// --docker-api (else DOCKER_HOST), attaches containers through the router's
// own IPAM, bridge and weaveDNS, follows Docker's container starts, and serves
// `GET /proxyaddrs` for `weave env` / `weave config` (user surface §1.12, §7.3).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces, homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpApi } from '../controlplane/api/http-app.js';
import type { Logger } from 'pino';
import type { HostControl } from '../controlplane/api/host-control.js';
import { DockerApiForwarder, type DaemonAddress } from '../controlplane/docker/api-forwarder.js';
import { EngineClient, dockerHostFrom, parseDockerHost } from '../controlplane/docker/engine-client.js';
import { EventWatcher } from '../controlplane/docker/events.js';
import { compileHostnameMatch } from '../controlplane/docker/hostname.js';
import { DockerProxy, type ProxyWeave } from '../controlplane/docker/proxy.js';
import {
  DEFAULT_PROXY_PORT, DEFAULT_PROXY_SOCKET, formatProxyAddress, listenProxy, parseProxyAddress,
  type ProxyListenAddress, type ProxyTls, type RunningProxyListener,
} from '../controlplane/docker/proxy-listener.js';
import { formatCIDR, parseCIDR, type Allocator } from '../controlplane/ipam/index.js';
import type { DnsService } from '../controlplane/dns/index.js';
import type { ProxyRewriteFlags, WeaverConfig } from './flags.js';
import { takeQueuedConnections } from '../dataplane/sys/accept-queue.js';

/** dist/weaver/proxy-wiring.js -> dist/weavewait: the waiter builds (Makefile target `weavewait`). */
export const WAITER_ROOT = fileURLToPath(new URL('../weavewait', import.meta.url));

export interface ProxyConfig extends ProxyRewriteFlags {
  listen: ProxyListenAddress[];
  /** No -H given: the default address, which another router on this host may hold already. */
  listenIsDefault: boolean;
  daemon: string;
  tls?: ProxyTls;
  /** TLS client settings for a daemon that listens with TLS. */
  daemonTls?: { key: Buffer; cert: Buffer; ca?: Buffer };
}

function readCert(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`Could not configure tls for proxy: cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The proxy's settings from the router's flags; undefined without --proxy. */
export function proxyConfigOf(cfg: WeaverConfig, env: NodeJS.ProcessEnv = process.env): ProxyConfig | undefined {
  if (!cfg.proxy) return undefined;
  const flags = cfg.proxyFlags;
  const daemon = dockerHostFrom(cfg.dockerApi || undefined, env);
  const daemonAddr = parseDockerHost(daemon);
  const given = flags.listen;
  // spec §1.12: a unix socket when Docker is reached over one, else TCP on all addresses.
  const listen = (given.length > 0 ? given : [daemonAddr.kind === 'unix' ? `unix://${DEFAULT_PROXY_SOCKET}` : `tcp://0.0.0.0:${DEFAULT_PROXY_PORT}`])
    .map(parseProxyAddress);
  let tls: ProxyTls | undefined;
  let daemonTls: ProxyConfig['daemonTls'];
  if (flags.tls || flags.tlsverify) {
    const certDir = env.DOCKER_CERT_PATH || join(homedir(), '.docker');
    const key = readCert(flags.tlskey ?? join(certDir, 'key.pem'), 'key');
    const cert = readCert(flags.tlscert ?? join(certDir, 'cert.pem'), 'certificate');
    const caPath = flags.tlscacert ?? join(certDir, 'ca.pem');
    const ca = flags.tlsverify || existsSync(caPath) ? readCert(caPath, 'CA certificate') : undefined;
    tls = { key, cert, ca, verifyClients: flags.tlsverify };
    // The daemon uses the same TLS setup: present the same certificate to it.
    if (daemonAddr.kind === 'tcp') daemonTls = { key, cert, ca };
  }
  compileHostnameMatch(flags.rewrite.hostnameMatch);
  return {
    listen,
    listenIsDefault: given.length === 0,
    daemon,
    tls,
    daemonTls,
    ...flags.rewrite,
  };
}

export interface ProxyServices {
  host: HostControl;
  allocator?: Allocator;
  dns?: DnsService;
  logger: Logger;
}

export interface RunningProxy {
  addresses(): string[];
  registerRoutes(app: HttpApi): void;
  close(): Promise<void>;
}

function ipv4Of(ifname: string): string | undefined {
  return (networkInterfaces()[ifname] ?? []).find((a) => a.family === 'IPv4')?.address;
}

/**
 * The weaveDNS address containers are told to use: the listen address when it is a specific
 * one; else the docker bridge's address (DOCKER_BRIDGE, as Weave did), else the weave bridge's
 * first address (after `weave expose`), which attached containers reach over ethwe.
 */
async function containerDnsServer(dns: DnsService, host: HostControl): Promise<string | undefined> {
  const listen = dns.dnsAddress();
  if (listen !== '' && listen !== '0.0.0.0' && listen !== '::') return listen;
  const dockerBridge = ipv4Of(process.env.DOCKER_BRIDGE || 'docker0');
  if (dockerBridge) return dockerBridge;
  const exposed = (await host.ps(['weave:expose'])).find((e) => e.label === 'weave:expose');
  return exposed?.cidrs[0]?.split('/')[0];
}

function weaveServices(s: ProxyServices): ProxyWeave {
  const ipam = (): Allocator => {
    if (!s.allocator) throw new Error("IP address allocation must be enabled to use 'net:' addresses (WEAVE_CIDR) or to attach without an address");
    return s.allocator;
  };
  // No check-alive: the proxy asks right after Docker reported the container running, and the
  // plugin's event watcher (IPAM's liveness source) may not have seen that start yet.
  return {
    allocate: async (id, subnet) => formatCIDR(await ipam().allocate(id, subnet === undefined ? undefined : parseCIDR(subnet))),
    claim: async (id, cidr) => {
      if (s.allocator) await s.allocator.claim(id, parseCIDR(cidr));
    },
    attach: async (req) => {
      await s.host.attach({ target: { pid: req.pid }, label: req.containerId, cidrs: req.cidrs, multicastRoute: req.multicastRoute });
    },
    addresses: async (id) => {
      const e = (await s.host.ps([id])).find((p) => p.label === id);
      return e ? { mac: e.mac, cidrs: e.cidrs } : undefined;
    },
    registerName: (id, ip, fqdn) => s.dns?.addName(id, ip, fqdn, true) ?? Promise.resolve(),
    dns: async () => {
      if (!s.dns) return undefined;
      const server = await containerDnsServer(s.dns, s.host);
      if (server === undefined) {
        s.logger.warn('weaveDNS listens on all addresses and there is no docker bridge nor exposed weave bridge address: containers keep their DNS settings');
        return undefined;
      }
      return { domain: s.dns.domain(), server };
    },
  };
}

/** Whether something answers on a unix socket (a live proxy of another router). */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts the proxy when Docker answers (as `weave launch` turns it on by default, a host
 * without Docker just runs without it); otherwise says why it is off. Explicit -H addresses
 * that cannot be listened on stop the router; the default one held by another router does not.
 */
export async function startProxy(cfg: ProxyConfig, services: ProxyServices): Promise<RunningProxy | { off: string }> {
  const { logger } = services;
  const endpoint = parseDockerHost(cfg.daemon);
  const daemon: DaemonAddress = endpoint.kind === 'unix'
    ? { kind: 'unix', socketPath: endpoint.socketPath }
    : { kind: 'tcp', host: endpoint.host, port: endpoint.port, ...(cfg.daemonTls ? { tls: cfg.daemonTls } : {}) };
  const client = new EngineClient(endpoint, cfg.daemonTls ? { tls: cfg.daemonTls } : {});
  if (!existsSync(join(WAITER_ROOT, 'w', 'w'))) return { off: `the waiter binary ${join(WAITER_ROOT, 'w', 'w')} is missing: build it with 'make'` };
  try {
    const v = await client.version();
    logger.info(`[proxy] Docker ${v.Version} (API ${v.ApiVersion}) at ${client.address}`);
  } catch (e) {
    return { off: (e as Error).message };
  }
  if (cfg.listenIsDefault) {
    for (const a of cfg.listen) {
      if (a.kind !== 'unix') continue;
      if (await socketIsLive(a.path)) return { off: `another proxy is listening on ${a.path}; give this one an address with -H` };
      mkdirSync(dirname(a.path), { recursive: true });
    }
  }
  const proxy = new DockerProxy(new DockerApiForwarder(daemon), client, weaveServices(services), {
    waiterRoot: WAITER_ROOT,
    noDefaultIpalloc: cfg.noDefaultIpalloc,
    noRewriteHosts: cfg.noRewriteHosts,
    withoutDns: cfg.withoutDns,
    noMulticastRoute: cfg.noMulticastRoute,
    rewriteInspect: cfg.rewriteInspect,
    hostnameRules: { fromLabel: cfg.hostnameFromLabel, match: compileHostnameMatch(cfg.hostnameMatch), replacement: cfg.hostnameReplacement },
    log: (level, message) => logger[level](`[proxy] ${message}`),
  });
  const listeners: RunningProxyListener[] = [];
  try {
    for (const addr of cfg.listen) {
      const listener = await listenProxy(addr, {
        request: (req, res) => proxy.handleRequest(req, res),
        upgrade: (req, socket, head) => proxy.handleUpgrade(req, socket, head),
      }, { tls: cfg.tls, permissionsFrom: endpoint.kind === 'unix' ? endpoint.socketPath : undefined });
      listeners.push(listener);
      takeQueuedConnections(listener.server);
      logger.info(`proxy listening on ${formatProxyAddress(addr)}`);
    }
  } catch (err) {
    await Promise.allSettled(listeners.map((l) => l.close()));
    if (cfg.listenIsDefault) return { off: `cannot listen on ${cfg.listen.map(formatProxyAddress).join(' ')}: ${(err as Error).message}` };
    throw new Error(`Unable to start the Docker API proxy: ${(err as Error).message}`);
  }
  // Containers Docker starts by itself (restart policies) are attached from its events; each time
  // the stream (re)opens, every running weave container is attached again first.
  const watcher = new EventWatcher(client, {
    filters: { type: ['container'], event: ['start'] },
    onSync: () => proxy.reattachRunning(),
    // Not awaited: an attach waiting for IPAM must not hold back the events of other containers.
    onEvent: (ev) => { void proxy.containerStarted(ev.Actor.ID); },
    onError: (err, during) => logger.warn(`[proxy] Docker events (${during}): ${err.message}`),
    minBackoffMs: 2_000,
    maxBackoffMs: 60_000,
  });
  watcher.start();
  const addresses = (): string[] => cfg.listen.map(formatProxyAddress);
  return {
    addresses,
    registerRoutes: (app) => {
      app.get('/proxyaddrs', (_req, reply) => reply.code(200).type('text/plain; charset=utf-8').send(addresses().join('\n')));
    },
    close: async () => {
      proxy.close();
      await watcher.stop();
      await Promise.allSettled(listeners.map((l) => l.close()));
    },
  };
}
