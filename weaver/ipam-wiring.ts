// Wires IPAM (controlplane/ipam) into weaver: the allocator on the
// `IPallocation` gossip channel, its data file in the state directory, its
// HTTP routes (wire spec §10.4, §10.2 DELETE /peer) and what `weave status`,
// `weave status ipam`, `/report` and `/metrics` show about it (user surface
// §2.1, §2.6, §3, §5.3).
import { existsSync } from 'node:fs';
import type { HttpApi } from '../controlplane/api/http-app.js';
import type { MetricFamily } from '../controlplane/api/metrics.js';
import type { ServiceSection } from '../controlplane/api/status-model.js';
import {
  Allocator, FileIpamStore, IPAM_CHANNEL, gobStreamCodec, ipamMetrics, ipamReport, ipamSummaryFields,
  registerIpamRoutes, renderStatusIpam, type GossipChannel, type Gossiper, type IpamOptions,
} from '../controlplane/ipam/index.js';
import type { PeerName } from '../controlplane/mesh/types.js';

/** What IPAM needs from the mesh router. */
export interface IpamMeshPort {
  newGossipChannel(name: string, gossiper: Gossiper): GossipChannel;
  /** Whether the peer is in the mesh topology now. */
  isKnownPeer(name: PeerName): boolean;
  /** Subscribe to peers leaving the topology. */
  onPeerRemoved?(fn: (name: PeerName) => void): void;
  /** Subscribe to topology changes (a route to a claim's owner may have appeared). */
  onTopologyChanged?(fn: () => void): void;
}

export interface IpamWiringOptions {
  options: IpamOptions;
  stateDir: string;
  identity: { name: PeerName; uid: bigint; nickName: string };
  mesh: IpamMeshPort;
  /** Number of peers the router was started with (spec §8.6 default quorum). */
  initialPeerCount(): number;
  /** Whether a container id is alive as Docker knows it; undefined defers to identIsAlive. */
  containerAlive?(ident: string): boolean | undefined;
  log?(message: string): void;
}

export interface RunningIpam {
  readonly allocator: Allocator;
  /** The allocator's routes; register on the control API. */
  registerRoutes(app: HttpApi): void;
  /** `GET /status/ipam` text. */
  statusText(): string;
  summarySection(): ServiceSection;
  reportSection(): Record<string, unknown>;
  metrics(): MetricFamily[];
  close(): void;
}

/**
 * Whether the owner of an IPAM ident is still there. Namespace paths and
 * `pid:N` can be checked here; container ids need the runtime: the Docker
 * watcher answers for them (containerAlive) while it is in step with Docker,
 * otherwise they are taken as alive (the CLI releases their addresses on detach).
 */
export function identIsAlive(ident: string): boolean {
  if (ident.startsWith('/')) return existsSync(ident);
  const pid = /^pid:(\d+)$/.exec(ident);
  if (pid) return existsSync(`/proc/${pid[1]}`);
  return true;
}

export function startIpam(opts: IpamWiringOptions): RunningIpam {
  const allocator = new Allocator({
    name: opts.identity.name,
    uid: opts.identity.uid,
    nickname: opts.identity.nickName,
    universe: opts.options.universe,
    defaultSubnet: opts.options.defaultSubnet,
    init: opts.options.init,
    initialPeerCount: opts.initialPeerCount,
    isKnownPeer: (p) => opts.mesh.isKnownPeer(p),
    codec: gobStreamCodec,
    store: new FileIpamStore(opts.stateDir),
    // A data file for another range is deleted with a log line and the router carries on, as Weave's.
    onRangeMismatch: 'discard',
    isContainerAlive: (ident) => opts.containerAlive?.(ident) ?? identIsAlive(ident),
    log: opts.log,
  });
  allocator.setChannel(opts.mesh.newGossipChannel(IPAM_CHANNEL, allocator));
  // A claim waiting on a peer that has gone fails at once instead of at the next tick.
  opts.mesh.onPeerRemoved?.(() => allocator.peersChanged());
  opts.mesh.onTopologyChanged?.(() => allocator.peersChanged());
  allocator.start();

  return {
    allocator,
    registerRoutes: (app) => registerIpamRoutes(app, allocator),
    statusText: () => renderStatusIpam(allocator.statusSnapshot()),
    summarySection: () => ({ service: 'ipam', fields: ipamSummaryFields(allocator.statusSnapshot()) }),
    reportSection: () => ipamReport(allocator.statusSnapshot()) as unknown as Record<string, unknown>,
    metrics: () => ipamMetrics(allocator.statusSnapshot()),
    close: () => allocator.stop(),
  };
}
