// Wires weaveDNS (controlplane/dns) into weaver: the nameserver gossiping on
// the `nameserver` channel, the DNS server on --dns-listen-address, the HTTP
// routes (wire spec §10.5), and the DNS parts of `weave status`, `/report` and
// `/metrics`. Unless --no-dns (user surface §4.3).
import { isIPv4 } from 'node:net';
import type { HttpApi } from '../controlplane/api/http-app.js';
import { registerDnsRoutes } from '../controlplane/api/dns-routes.js';
import type { MetricFamily } from '../controlplane/api/metrics.js';
import type { ServiceSection } from '../controlplane/api/status-model.js';
import {
  DnsServer, DnsService, NAMESERVER_CHANNEL, Nameserver, NameserverGossiper, type Entry, type GossipChannel, type Gossiper,
} from '../controlplane/dns/index.js';
import { openNodeDatagramTransport, type OpenDatagramTransport } from '../controlplane/dns/datagram-transport.js';
import { DnsEntriesFileError, FileDnsEntryStore } from '../controlplane/dns/persistence.js';
import type { PeerName } from '../controlplane/mesh/types.js';
import { openBatchedUdpTransport } from '../dataplane/sys/batched-udp.js';
import { takeQueuedConnections } from '../dataplane/sys/accept-queue.js';
import { identIsAlive } from './ipam-wiring.js';

/** What weaveDNS needs from the mesh router. */
export interface DnsMeshPort {
  newGossipChannel(name: string, gossiper: Gossiper): GossipChannel;
  isKnownPeer(name: PeerName): boolean;
  /** Subscribe to the mesh's garbage collection of peers (wire spec §4.7); returns an unsubscribe. */
  onPeerRemoved(fn: (name: PeerName) => void): () => void;
}

export interface DnsOptions {
  listenAddress?: string;
  domain?: string;
  ttl?: number;
  fallbackTimeoutMs?: number;
  resolvConf?: string;
}

export interface DnsWiringOptions {
  options: DnsOptions;
  ourName: PeerName;
  mesh: DnsMeshPort;
  /** Whether a container id is alive as Docker knows it; undefined defers to identIsAlive. */
  containerAlive?(ident: string): boolean | undefined;
  /** Where our own names are kept across restarts; none keeps them in memory only. */
  stateDir?: string;
  log?(message: string): void;
}

export interface RunningDns {
  /** Settles once the saved names are restored and the DNS server answers; rejects if it cannot start. */
  readonly ready: Promise<void>;
  readonly nameserver: Nameserver;
  readonly server: DnsServer;
  readonly service: DnsService;
  registerRoutes(app: HttpApi): void;
  summarySection(): ServiceSection;
  reportSection(): Record<string, unknown>;
  metrics(): MetricFamily[];
  /** The mesh garbage-collected a peer (wire spec §4.7): drop its entries. */
  peerGone(name: PeerName): void;
  close(): Promise<void>;
}

/**
 * Seconds added to the wall clock weaveDNS timestamps tombstones and gossip
 * with: WEAVE_TEST_DNS_CLOCK_OFFSET_SEC, for tests only (the chaos runner's
 * clock jump: a router relaunched with its clock ahead of or behind the
 * others'). Nothing here can move the process's real clock.
 */
function clockOffsetFromEnv(): number {
  const v = process.env.WEAVE_TEST_DNS_CLOCK_OFFSET_SEC;
  if (v === undefined || v === '') return 0;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new RangeError(`WEAVE_TEST_DNS_CLOCK_OFFSET_SEC=${v} is not a whole number of seconds`);
  return n;
}

/** IPv4 listeners batch queries with recvmmsg/sendmmsg; IPv6 ones use node:dgram. */
const openDnsUdp: OpenDatagramTransport = (host, port) =>
  isIPv4(host) ? openBatchedUdpTransport(host, port) : openNodeDatagramTransport(host, port);

/**
 * Starts weaveDNS without waiting for its saved names: the gossip channel is
 * registered at once (before any connection, so a neighbour's first gossip
 * reaches us), the saved names are restored in slices beside the router's
 * handshakes, and the DNS server starts once they are back. `ready` settles
 * then; it rejects if the server cannot start.
 */
export function startDns(opts: DnsWiringOptions): RunningDns {
  const log = opts.log ?? ((): void => {});
  const store = opts.stateDir === undefined ? undefined : new FileDnsEntryStore(opts.stateDir, opts.ourName);
  const offset = clockOffsetFromEnv();
  const nameserver = new Nameserver({
    ourName: opts.ourName, isKnownPeer: (p) => opts.mesh.isKnownPeer(p), store,
    ...(offset === 0 ? {} : { now: (): number => Math.floor(Date.now() / 1000) + offset }),
  });
  if (offset !== 0) log(`[dns] clock offset ${offset} s (WEAVE_TEST_DNS_CLOCK_OFFSET_SEC)`);
  const server = new DnsServer({ names: nameserver, ...opts.options, openUdp: openDnsUdp, onTcpListening: (tcp) => takeQueuedConnections(tcp) });
  const gossiper = new NameserverGossiper(nameserver, log);
  gossiper.attach(opts.mesh.newGossipChannel(NAMESERVER_CHANNEL, gossiper));
  const restored = store ? restoreSavedNames(nameserver, store, opts, log) : Promise.resolve();
  const ready = restored.then(() => server.start()).then(() => nameserver.start());
  // Awaited by the caller later (startup fails as before if the server cannot start);
  // handled here so a rejection before then is not an unhandled one.
  ready.catch(() => {});

  const service = new DnsService({
    nameserver,
    server,
    isContainerAlive: async (id) => opts.containerAlive?.(id) ?? identIsAlive(id),
    log,
  });

  const peerGone = (name: PeerName): void => {
    const n = nameserver.peerGone(name);
    if (n > 0) log(`[dns] removed ${n} entries of departed peer`);
  };
  // The mesh drops unreachable peers (wire spec §4.7); their names go with them (§9.3).
  const unsubscribePeerRemoved = opts.mesh.onPeerRemoved(peerGone);

  return {
    nameserver,
    server,
    service,
    ready,
    registerRoutes: (app) => registerDnsRoutes(app, service),
    summarySection: () => service.summarySection(),
    reportSection: () => service.reportSection(),
    metrics: () => service.metrics(),
    peerGone,
    close: async () => {
      unsubscribePeerRemoved();
      await ready.catch(() => {});
      nameserver.stop();
      await server.stop();
    },
  };
}

/** Our names saved before a restart, taken back (a damaged file is reported and set aside, as before). */
async function restoreSavedNames(nameserver: Nameserver, store: FileDnsEntryStore, opts: DnsWiringOptions, log: (message: string) => void): Promise<void> {
  const load = (): Entry[] => {
    try {
      return store.load((problem) => log(`[dns] ${problem.message}`));
    } catch (err) {
      if (!(err instanceof DnsEntriesFileError)) throw err;
      log(`[dns] ${err.message}`);
      return [];
    }
  };
  const restored = await nameserver.restore(load, (id) => opts.containerAlive?.(id) ?? identIsAlive(id));
  if (restored.length > 0) log(`[dns] restored ${restored.filter((e) => e.tombstone === 0).length} names of this host from ${store.path}`);
}
