// The router's host networking as one object: the bridge, container
// endpoints, exposed addresses and the firewall that follows from them.
// The firewall is recomputed from the bridge's addresses after every change,
// so the rules always match what is exposed (desired state, applied whole).
import { readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic } from '../../controlplane/atomic-file.js';
import { Rtnl } from '../netlink/index.js';
import { ensureBridge, LINUX_BRIDGE_TYPE } from './bridge.js';
import {
  announceEndpoint, attach, detach, inspectEndpoint, lowerEndpointMtu, targetPath,
  type AttachOptions, type AttachResult, type DetachResult, type EndpointInfo, type NetnsTarget,
} from './endpoint.js';
import { CONTAINER_IFNAME } from './names.js';
import { lowerBridgeMtu } from './mtu.js';
import { createPluginEndpoint, deletePluginEndpoint, type PluginEndpoint } from './plugin-endpoint.js';
import { addBridgeAddress, bridgeAddresses, removeBridgeAddress } from './expose.js';
import { applyFirewall, type FirewallConfig } from './firewall.js';
import { VethDeletionWatcher } from './veth-deletions.js';
import { ensureForwardRules, type IptablesBackend } from './iptables-forward.js';
import { networkOf } from './cidr.js';

export interface HostNetworkOptions {
  bridge: string;
  mtu: number;
  /** Bridge MAC: the peer name (spec §6.1). */
  mac?: string;
  controlApi?: FirewallConfig['controlApi'];
  /** `--docker-bridge`: kept out of the weave bridge (spec §6.3). */
  dockerBridge?: string;
  /** IPTABLES_BACKEND: the one iptables to program; default every one in use. */
  iptablesBackend?: IptablesBackend;
  /** `--expect-npc`: traffic into the bridge passes weave-npc's chains (spec §6.3). */
  expectNpc?: boolean;
  /** Where attached endpoints are remembered across router restarts (for `weave ps`). */
  registryFile?: string;
}

export interface AttachRequest extends Pick<AttachOptions, 'multicastRoute' | 'ifname' | 'vethId' | 'hairpin' | 'mtu' | 'routes' | 'portReady'> {
  target: NetnsTarget;
  /** What `weave ps` shows for it: a container id, or the namespace as given. */
  label: string;
  cidrs: readonly string[];
}

export interface PsEntry {
  label: string;
  mac: string;
  cidrs: string[];
}

/** The `weave ps` label of the bridge's own addresses (spec §1.6). */
export const EXPOSE_LABEL = 'weave:expose';

interface RegistryEntry {
  label: string;
  target: NetnsTarget;
  /** Set when not `ethwe` (CNI endpoints). */
  ifname?: string;
}

/** Registry key: a namespace holds one endpoint per interface name. */
function endpointKey(target: NetnsTarget, ifname: string | undefined): string {
  const path = targetPath(target);
  return ifname === undefined || ifname === CONTAINER_IFNAME ? path : `${path}#${ifname}`;
}

export class HostNetwork {
  private readonly endpoints = new Map<string, RegistryEntry>();
  /** Exposed CIDRs added with `--without-masquerade`; everything else on the bridge is masqueraded. */
  private readonly skipNat = new Set<string>();
  private vethWatcher: VethDeletionWatcher | undefined;
  /** Serialises changes: the firewall is rendered from a state read in between. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly rtnl: Rtnl,
    readonly opts: HostNetworkOptions,
  ) {}

  /**
   * Creates/converges the bridge and loads our nftables rules, re-exposing
   * addresses already on the bridge (spec §4.5 step 5). The iptables FORWARD
   * rules follow in the background (`forwardRulesApplied`): on a host with
   * Docker that is several iptables runs, and nothing before the first attach
   * needs them, while every change here (attach included) queues behind them.
   */
  static async start(opts: HostNetworkOptions): Promise<HostNetwork> {
    const rtnl = Rtnl.open();
    const net = new HostNetwork(rtnl, opts);
    try {
      await ensureBridge(rtnl, { name: opts.bridge, mtu: opts.mtu, mac: opts.mac });
      net.loadRegistry();
      const addrs = await bridgeAddresses(rtnl, opts.bridge);
      await net.applyNftRules(addrs);
      // First in the queue: nothing can change the bridge's addresses before it runs.
      net.forwardRulesApplied = net.serial(() => net.applyForwardRules(addrs));
    } catch (e) {
      rtnl.close();
      throw e;
    }
    // Awaited by whoever started the network; a failure here is theirs to report, not an unhandled rejection.
    net.forwardRulesApplied.catch(() => undefined);
    return net;
  }

  /** Settles once the iptables FORWARD rules of the start are in place; rejects with why they are not. */
  forwardRulesApplied: Promise<void> = Promise.resolve();

  get bridgeType(): string {
    return LINUX_BRIDGE_TYPE;
  }

  close(): void {
    void this.vethWatcher?.close();
    this.rtnl.close();
  }

  /**
   * Follows container veth deletions: once an attached endpoint's namespace
   * or ethwe is gone, it leaves the registry and `onGone(label)` runs, so
   * the router can release what the container held (its names, addresses).
   */
  watchEndpoints(onGone: (label: string) => void, onError: (e: Error) => void): void {
    if (this.vethWatcher) return;
    this.vethWatcher = new VethDeletionWatcher(() => {
      this.sweepEndpoints().then((gone) => gone.forEach((label) => onGone(label)), onError);
    }, onError);
  }

  /** Drops registry entries whose endpoint no longer exists; returns their labels. */
  private sweepEndpoints(): Promise<string[]> {
    return this.serial(async () => {
      const gone: string[] = [];
      for (const [key, entry] of this.endpoints) {
        if (await inspectEndpoint(entry.target)) continue;
        this.endpoints.delete(key);
        gone.push(entry.label);
      }
      if (gone.length > 0) this.saveRegistry();
      return gone;
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async syncFirewall(): Promise<void> {
    const addrs = await bridgeAddresses(this.rtnl, this.opts.bridge);
    await this.applyNftRules(addrs);
    await this.applyForwardRules(addrs);
  }

  /** Our nftables table for the bridge's addresses `addrs`: NAT for exposed ones, the control port closed to other hosts. */
  private async applyNftRules(addrs: readonly string[]): Promise<void> {
    await applyFirewall({
      bridge: this.opts.bridge,
      exposed: addrs.map((cidr) => ({ cidr, masquerade: !this.skipNat.has(cidr) })),
      controlApi: this.opts.controlApi,
      dockerBridge: this.opts.dockerBridge,
    });
  }

  /** A host whose iptables drops forwarded traffic (Docker's FORWARD policy) needs our accepts there too. */
  private async applyForwardRules(addrs: readonly string[]): Promise<void> {
    await ensureForwardRules({
      bridge: this.opts.bridge, dockerBridge: this.opts.dockerBridge, exposedSubnets: [...new Set(addrs.map(networkOf))], backend: this.opts.iptablesBackend,
      npc: this.opts.expectNpc === true,
    });
  }

  attach(req: AttachRequest): Promise<AttachResult> {
    return this.serial(async () => {
      const { label, ...opts } = req;
      const result = await attach(this.rtnl, { ...opts, bridge: this.opts.bridge });
      const entry: RegistryEntry = { label, target: req.target };
      if (req.ifname !== undefined && req.ifname !== CONTAINER_IFNAME) entry.ifname = req.ifname;
      this.endpoints.set(endpointKey(req.target, req.ifname), entry);
      this.saveRegistry();
      return result;
    });
  }

  detach(target: NetnsTarget, cidrs: readonly string[], ifname?: string): Promise<DetachResult> {
    return this.serial(async () => {
      const result = await detach(target, cidrs, ifname);
      if (result.deleted && this.endpoints.delete(endpointKey(target, ifname))) this.saveRegistry();
      return result;
    });
  }

  /**
   * Lowers the overlay MTU on this host to `mtu` (never raises anything): the
   * bridge, so containers attached from now on get it, and every attached
   * container (attach, CNI, Docker plugin) with the host end of its veth.
   * Serialised with attach, so a container attached meanwhile is lowered
   * either by the bridge or here. One container that cannot be changed does
   * not stop the others: it is named in `failed`.
   */
  lowerMtu(mtu: number): Promise<{ reached: number; failed: string[] }> {
    return this.serial(async () => {
      await lowerBridgeMtu(this.rtnl, this.opts.bridge, mtu);
      const bridge = await this.rtnl.findLink(this.opts.bridge);
      const out = { reached: 0, failed: [] as string[] };
      if (!bridge) return out;
      for (const entry of this.endpoints.values()) {
        try {
          if (await lowerEndpointMtu(this.rtnl, entry.target, entry.ifname ?? CONTAINER_IFNAME, bridge.index, mtu)) out.reached++;
        } catch (err) {
          out.failed.push(`${entry.label}: ${(err as Error).message}`);
        }
      }
      return out;
    });
  }

  /**
   * Every attached container (attach, CNI, Docker plugin) sends a gratuitous
   * ARP for each IPv4 address on its weave interface again. Called when peers
   * become reachable: one that was cut off when a container was attached (a
   * re-used address above all) missed its first announcement and would keep
   * sending to the address's previous MAC until its neighbour entry ages. A
   * container gone meanwhile is skipped; one that cannot be reached is named in
   * `failed` and does not stop the others.
   */
  reannounce(): Promise<{ announced: number; failed: string[] }> {
    return this.serial(async () => {
      const out = { announced: 0, failed: [] as string[] };
      for (const entry of this.endpoints.values()) {
        try {
          if (await announceEndpoint(entry.target, entry.ifname ?? CONTAINER_IFNAME)) out.announced++;
        } catch (err) {
          out.failed.push(`${entry.label}: ${(err as Error).message}`);
        }
      }
      return out;
    });
  }

  /** A veth pair for a Docker plugin endpoint, host end on the bridge (spec §7.1 CreateEndpoint). */
  createPluginEndpoint(endpointId: string): Promise<PluginEndpoint> {
    return this.serial(() => createPluginEndpoint(this.rtnl, endpointId, this.opts.bridge));
  }

  /** Removes a plugin endpoint's veth pair; false when it was already gone. */
  deletePluginEndpoint(endpointId: string): Promise<boolean> {
    return this.serial(() => deletePluginEndpoint(this.rtnl, endpointId));
  }

  /**
   * Remembers a container attached by someone else (the Docker plugin) so `weave ps` lists
   * it under `label`; it is forgotten once its namespace has no `ethwe*` any more.
   */
  track(label: string, target: NetnsTarget): void {
    this.endpoints.set(endpointKey(target, undefined), { label, target });
    this.saveRegistry();
  }

  /** The endpoint's interface `ifname` as the kernel has it, with the name of its host end, or undefined. */
  inspect(target: NetnsTarget, ifname?: string): Promise<(EndpointInfo & { hostVeth: string }) | undefined> {
    return this.serial(async () => {
      const info = await inspectEndpoint(target, ifname);
      if (!info) return undefined;
      const host = info.peerIndex === undefined ? undefined : await this.rtnl.findLink(info.peerIndex);
      return { ...info, hostVeth: host?.name ?? '' };
    });
  }

  /** The bridge line, then one line per attached endpoint still present; `labels` filters (prefix match). */
  ps(labels: readonly string[] = []): Promise<PsEntry[]> {
    return this.serial(async () => {
      const out: PsEntry[] = [];
      const wanted = (label: string): boolean => labels.length === 0 || labels.some((l) => label === l || (l.length >= 3 && label.startsWith(l)));
      const bridge = await this.rtnl.findLink(this.opts.bridge);
      if (!bridge) return out;
      if (labels.length === 0 || labels.includes(EXPOSE_LABEL)) {
        out.push({ label: EXPOSE_LABEL, mac: bridge.mac ?? '', cidrs: await bridgeAddresses(this.rtnl, this.opts.bridge) });
      }
      let changed = false;
      for (const [key, entry] of this.endpoints) {
        const info = await inspectEndpoint(entry.target, entry.ifname);
        if (!info) {
          this.endpoints.delete(key);
          changed = true;
          continue;
        }
        if (wanted(entry.label)) out.push({ label: entry.label, mac: info.mac, cidrs: info.cidrs });
      }
      if (changed) this.saveRegistry();
      return out;
    });
  }

  expose(cidr: string, masquerade: boolean): Promise<void> {
    return this.serial(async () => {
      await addBridgeAddress(this.rtnl, this.opts.bridge, cidr);
      if (masquerade) this.skipNat.delete(cidr);
      else this.skipNat.add(cidr);
      await this.syncFirewall();
    });
  }

  /** Removes the given bridge addresses (all when empty); returns those removed. */
  hide(cidrs: readonly string[] = []): Promise<string[]> {
    return this.serial(async () => {
      const targets = cidrs.length > 0 ? cidrs : await bridgeAddresses(this.rtnl, this.opts.bridge);
      const removed: string[] = [];
      for (const c of targets) {
        if (await removeBridgeAddress(this.rtnl, this.opts.bridge, c)) removed.push(c);
        this.skipNat.delete(c);
      }
      await this.syncFirewall();
      return removed;
    });
  }

  private loadRegistry(): void {
    if (!this.opts.registryFile) return;
    let text: string;
    try {
      text = readFileSync(this.opts.registryFile, 'utf8');
    } catch {
      return;
    }
    try {
      const entries = JSON.parse(text) as RegistryEntry[];
      for (const e of entries) this.endpoints.set(endpointKey(e.target, e.ifname), e);
    } catch {
      // A damaged registry only costs `weave ps` lines; start afresh.
      rmSync(this.opts.registryFile, { force: true });
    }
  }

  private saveRegistry(): void {
    if (!this.opts.registryFile) return;
    // Not durable: it only names `weave ps` lines, and after a power loss the endpoints are gone.
    writeFileAtomic(this.opts.registryFile, JSON.stringify([...this.endpoints.values()]), { durable: false });
  }
}
