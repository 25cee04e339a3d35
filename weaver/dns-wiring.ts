// Wires weaveDNS (controlplane/dns) into weaver: the nameserver gossiping on
// the `nameserver` channel, the DNS server on --dns-listen-address, the HTTP
// routes (wire spec §10.5), and the DNS parts of `weave status`, `/report` and
// `/metrics`. Unless --no-dns (user surface §4.3).
import type { FastifyInstance } from 'fastify';
import { registerDnsRoutes } from '../controlplane/api/dns-routes.js';
import type { MetricFamily } from '../controlplane/api/metrics.js';
import type { ServiceSection } from '../controlplane/api/status-model.js';
import {
  DnsServer, DnsService, NAMESERVER_CHANNEL, Nameserver, NameserverGossiper, type GossipChannel, type Gossiper,
} from '../controlplane/dns/index.js';
import { DnsEntriesFileError, FileDnsEntryStore } from '../controlplane/dns/persistence.js';
import type { PeerName } from '../controlplane/mesh/types.js';
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
  readonly nameserver: Nameserver;
  readonly server: DnsServer;
  readonly service: DnsService;
  registerRoutes(app: FastifyInstance): void;
  summarySection(): ServiceSection;
  reportSection(): Record<string, unknown>;
  metrics(): MetricFamily[];
  /** The mesh garbage-collected a peer (wire spec §4.7): drop its entries. */
  peerGone(name: PeerName): void;
  close(): Promise<void>;
}

export async function startDns(opts: DnsWiringOptions): Promise<RunningDns> {
  const log = opts.log ?? ((): void => {});
  const store = opts.stateDir === undefined ? undefined : new FileDnsEntryStore(opts.stateDir, opts.ourName);
  const nameserver = new Nameserver({ ourName: opts.ourName, isKnownPeer: (p) => opts.mesh.isKnownPeer(p), store });
  if (store) {
    // Before gossip starts: peers' copies of our names must meet ours, not an empty table.
    try {
      const restored = nameserver.restore(store.load(), (id) => opts.containerAlive?.(id) ?? identIsAlive(id));
      if (restored.length > 0) log(`[dns] restored ${restored.filter((e) => e.tombstone === 0).length} names of this host from ${store.path}`);
    } catch (err) {
      if (!(err instanceof DnsEntriesFileError)) throw err;
      log(`[dns] ${err.message}`);
    }
  }
  const server = new DnsServer({ names: nameserver, ...opts.options });
  await server.start();
  const gossiper = new NameserverGossiper(nameserver);
  gossiper.attach(opts.mesh.newGossipChannel(NAMESERVER_CHANNEL, gossiper));
  nameserver.start();
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
    registerRoutes: (app) => registerDnsRoutes(app, service),
    summarySection: () => service.summarySection(),
    reportSection: () => service.reportSection(),
    metrics: () => service.metrics(),
    peerGone,
    close: async () => {
      unsubscribePeerRemoved();
      nameserver.stop();
      await server.stop();
    },
  };
}
