// The CNI commands of `weave-net` (network plugin) and `weave-ipam` (IPAM
// plugin), user-surface spec §7.4, extended to CNI spec 1.1: ADD, DEL, CHECK,
// VERSION, GC, STATUS. Pure logic over WeaveRouterPort (the router does the
// namespace and veth work) and IpamDelegate (another IPAM plugin, run by the
// executable).
import { cidrRange, formatCIDR, parseAddress, parseCIDR } from '../ipam/addr.js';
import { AttachmentStore } from './attachments.js';
import { decodeConfigObject, configVersion, parseNetConf, type CniRoute, type NetConf } from './config.js';
import type { CniCommand, CniEnvironment } from './environment.js';
import { CniError, CniErrorCode } from './errors.js';
import { addressesOf, formatResult, type CniResult, type ResultIp } from './result.js';
import { RouterDownError, RouterRequestError, type WeaveRouterPort } from './router-port.js';
import { requireVersion, versionInfo } from './versions.js';

export type PluginKind = 'net' | 'ipam';

/** Runs another IPAM plugin (found on CNI_PATH) with the same config; resolves with its stdout, throws its CniError. */
export interface IpamDelegate {
  exec(type: string, command: CniCommand, stdin: string): Promise<string>;
}

export interface PluginDeps {
  router: WeaveRouterPort;
  delegate: IpamDelegate;
  /** A line for stderr (without the `weave-cni:` prefix). */
  warn(line: string): void;
}

/** The bridge's label in IPAM when the plugin gives the bridge an address (spec §7.4). */
const EXPOSE_IDENT = 'weave:expose';
const DEFAULT_ROUTE = '0.0.0.0/0';

/** Router failures as CNI errors: not running -> try again later (the runtime retries; STATUS says why). */
function routerError(err: unknown, router: WeaveRouterPort, doing: string): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof RouterDownError) {
    return new CniError(CniErrorCode.TryAgainLater, `${doing}: weave router not reachable at ${router.address} (is weave running?)`, err.message);
  }
  if (err instanceof RouterRequestError) return new CniError(CniErrorCode.RouterError, `${doing}: ${err.message}`);
  return new CniError(CniErrorCode.Internal, `${doing}: ${(err as Error).message}`);
}

function networkOf(cidr: string): string {
  const c = parseCIDR(cidr);
  return formatCIDR({ addr: cidrRange(c).start, prefixLen: c.prefixLen });
}

function contains(cidr: string, ip: string): boolean {
  const r = cidrRange(parseCIDR(cidr));
  const a = parseAddress(ip);
  return a >= r.start && a < r.end;
}

function ipOf(cidr: string): string {
  return cidr.slice(0, cidr.indexOf('/'));
}

interface IpamOutcome {
  ips: ResultIp[];
  /** Undefined: the config said nothing about routes (the plugin adds a default one). */
  routes?: CniRoute[];
}

/** A delegated plugin's result of any version, as addresses, gateways and routes. */
function parseDelegatedResult(stdout: string): IpamOutcome {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    throw new CniError(CniErrorCode.DecodingFailure, `IPAM plugin returned invalid JSON: ${stdout.slice(0, 200)}`);
  }
  const ips: ResultIp[] = [];
  const routes: CniRoute[] = [];
  const takeRoutes = (v: unknown): void => {
    if (!Array.isArray(v)) return;
    for (const r of v as { dst?: unknown; gw?: unknown }[]) {
      if (typeof r.dst === 'string') routes.push(typeof r.gw === 'string' ? { dst: r.dst, gw: r.gw } : { dst: r.dst });
    }
  };
  if (Array.isArray(o.ips)) {
    for (const ip of o.ips as { address?: unknown; gateway?: unknown; version?: unknown }[]) {
      if (typeof ip.address !== 'string' || ip.address.includes(':')) continue; // IPv4 only, as Weave
      ips.push(typeof ip.gateway === 'string' ? { address: ip.address, gateway: ip.gateway } : { address: ip.address });
    }
    takeRoutes(o.routes);
    return { ips, routes: Array.isArray(o.routes) ? routes : undefined };
  }
  const ip4 = o.ip4 as { ip?: unknown; gateway?: unknown; routes?: unknown } | undefined;
  if (ip4 && typeof ip4.ip === 'string') {
    ips.push(typeof ip4.gateway === 'string' ? { address: ip4.ip, gateway: ip4.gateway } : { address: ip4.ip });
    takeRoutes(ip4.routes);
    return { ips, routes: Array.isArray(ip4.routes) ? routes : undefined };
  }
  return { ips };
}

class Plugin {
  private readonly store: AttachmentStore;

  constructor(
    private readonly kind: PluginKind,
    private readonly env: CniEnvironment,
    private readonly conf: NetConf,
    private readonly deps: PluginDeps,
  ) {
    this.store = new AttachmentStore(conf.dataDir, conf.name);
  }

  private get router(): WeaveRouterPort {
    return this.deps.router;
  }

  private get delegated(): boolean {
    return this.kind === 'net' && this.conf.ipam.type !== '';
  }

  /** Weave's IPAM (spec §7.4 "weave-ipam standalone"): one IPv4 address, the configured gateway and routes. */
  private async allocateWeave(): Promise<IpamOutcome> {
    const { subnet, gateway, routes } = this.conf.ipam;
    const address = await this.router.allocate(this.env.containerId, subnet === undefined ? undefined : networkOf(subnet));
    const ip: ResultIp = gateway === undefined ? { address } : { address, gateway };
    return routes === undefined ? { ips: [ip] } : { ips: [ip], routes };
  }

  private async allocate(): Promise<IpamOutcome> {
    try {
      if (this.delegated) return parseDelegatedResult(await this.deps.delegate.exec(this.conf.ipam.type, 'ADD', this.conf.raw));
      return await this.allocateWeave();
    } catch (err) {
      const e = routerError(err, this.router, 'unable to allocate IP address');
      throw new CniError(e.code, e.message.startsWith('unable to allocate') ? e.message : `unable to allocate IP address: ${e.message}`, e.details);
    }
  }

  private async release(): Promise<void> {
    if (this.delegated) {
      await this.deps.delegate.exec(this.conf.ipam.type, 'DEL', this.conf.raw);
      return;
    }
    try {
      await this.router.release(this.env.containerId);
    } catch (err) {
      throw routerError(err, this.router, 'unable to release IP address');
    }
  }

  /** The bridge's address in the container's subnet (else its first), giving the bridge one when it has none (spec §7.4). */
  private async bridgeGateway(containerCidr: string): Promise<string> {
    const addrs = await this.router.bridgeAddresses();
    const inSubnet = addrs.find((a) => contains(networkOf(containerCidr), ipOf(a)));
    if (inSubnet) return ipOf(inSubnet);
    if (addrs[0] !== undefined) return ipOf(addrs[0]);
    const cidr = await this.router.allocate(EXPOSE_IDENT, networkOf(containerCidr));
    await this.router.expose(cidr);
    return ipOf(cidr);
  }

  async add(): Promise<string> {
    if (this.kind === 'ipam') return this.addIpam();
    this.store.add({ containerId: this.env.containerId, ifname: this.env.ifname });
    const outcome = await this.allocate();
    const first = outcome.ips[0];
    if (!first) throw new CniError(CniErrorCode.RouterError, 'IPAM plugin failed to allocate IP address');
    try {
      return await this.plumb(outcome, first);
    } catch (err) {
      // Give the address back, so a failed ADD leaks nothing; if the router is gone the record stays for DEL/GC.
      try {
        await this.release();
        this.store.remove(this.env.containerId);
      } catch (releaseErr) {
        this.deps.warn(`releasing ${first.address} after the failed ADD: ${(releaseErr as Error).message}`);
      }
      throw err;
    }
  }

  private async plumb(outcome: IpamOutcome, first: ResultIp): Promise<string> {
    const netns = this.env.netns as string;
    let gateway = first.gateway;
    try {
      if (outcome.routes === undefined && gateway === undefined) gateway = await this.bridgeGateway(first.address);
    } catch (err) {
      throw routerError(err, this.router, 'unable to find the bridge address for the gateway');
    }
    // Routes inside the container, as Weave's plugin set them (spec §7.4).
    const installed: CniRoute[] = [];
    let reported: CniRoute[];
    if (outcome.routes === undefined) {
      if (gateway !== undefined && !contains(networkOf(first.address), gateway)) installed.push({ dst: `${gateway}/32` });
      reported = gateway === undefined ? [] : [{ dst: DEFAULT_ROUTE, gw: gateway }];
      installed.push(...reported);
    } else {
      reported = outcome.routes.map((r) => {
        const gw = r.gw ?? gateway;
        return gw === undefined ? { dst: r.dst } : { dst: r.dst, gw };
      });
      installed.push(...reported);
    }
    try {
      await this.router.attach({
        netns,
        ifname: this.env.ifname,
        containerId: this.env.containerId,
        cidrs: outcome.ips.map((i) => i.address),
        hairpin: this.conf.hairpinMode,
        mtu: this.conf.mtu,
        routes: installed,
      });
    } catch (err) {
      throw routerError(err, this.router, 'error setting up interface');
    }
    let state;
    try {
      state = await this.router.inspect(netns, this.env.ifname);
    } catch (err) {
      throw routerError(err, this.router, 'error reading the interface back');
    }
    if (!state) throw new CniError(CniErrorCode.Internal, `interface ${this.env.ifname} vanished from ${netns} right after it was set up`);
    const result: CniResult = {
      interfaces: [
        { name: state.hostVeth },
        { name: this.env.ifname, mac: state.mac, sandbox: netns, mtu: state.mtu },
      ],
      ips: outcome.ips.map((ip) => ({ ...ip, gateway: ip.gateway ?? gateway, interface: 1 })),
      routes: reported,
    };
    if (this.conf.dns) result.dns = this.conf.dns;
    return JSON.stringify(formatResult(result, this.conf.cniVersion));
  }

  private async addIpam(): Promise<string> {
    this.store.add({ containerId: this.env.containerId, ifname: this.env.ifname });
    const outcome = await this.allocate();
    const result: CniResult = { interfaces: [], ips: outcome.ips, routes: outcome.routes ?? [] };
    if (this.conf.dns) result.dns = this.conf.dns;
    return JSON.stringify(formatResult(result, this.conf.cniVersion));
  }

  async del(): Promise<void> {
    if (this.kind === 'net' && this.env.netns !== undefined) {
      // spec §7.4: a failure to remove the interface is only logged; the address is released regardless.
      try {
        await this.router.detach(this.env.netns, this.env.ifname);
      } catch (err) {
        if (err instanceof RouterDownError) throw routerError(err, this.router, 'error removing interface');
        this.deps.warn(`error removing interface: ${(err as Error).message}`);
      }
    }
    await this.release();
    this.store.remove(this.env.containerId);
  }

  async check(): Promise<void> {
    requireVersion(this.conf.cniVersion, '0.4.0', 'CHECK');
    const prev = this.conf.prevResult;
    if (!prev) throw new CniError(CniErrorCode.InvalidNetworkConfig, 'CHECK needs prevResult in the network configuration');
    if (this.delegated) await this.deps.delegate.exec(this.conf.ipam.type, 'CHECK', this.conf.raw);
    const want = addressesOf(prev);
    if (!this.delegated) {
      let held: string[];
      try {
        held = await this.router.lookup(this.env.containerId, this.conf.ipam.subnet === undefined ? undefined : networkOf(this.conf.ipam.subnet));
      } catch (err) {
        throw routerError(err, this.router, 'CHECK');
      }
      for (const a of want) {
        if (!held.includes(a)) throw new CniError(CniErrorCode.CheckFailed, `IPAM holds no address ${a} for container ${this.env.containerId} (it holds: ${held.join(' ') || 'none'})`);
      }
    }
    if (this.kind === 'ipam') return;
    let state;
    try {
      state = await this.router.inspect(this.env.netns as string, this.env.ifname);
    } catch (err) {
      throw routerError(err, this.router, 'CHECK');
    }
    if (!state) throw new CniError(CniErrorCode.CheckFailed, `interface ${this.env.ifname} not found in ${this.env.netns as string}`);
    for (const a of want) {
      if (!state.cidrs.includes(a)) throw new CniError(CniErrorCode.CheckFailed, `interface ${this.env.ifname} lacks address ${a} (it has: ${state.cidrs.join(' ') || 'none'})`);
    }
    const prevRoutes = Array.isArray(prev.routes) ? (prev.routes as CniRoute[]) : [];
    for (const r of prevRoutes) {
      if (!state.routes.some((s) => s.dst === r.dst && s.gw === r.gw)) {
        throw new CniError(CniErrorCode.CheckFailed, `route ${r.dst}${r.gw === undefined ? '' : ` via ${r.gw}`} missing on ${this.env.ifname}`);
      }
    }
  }

  /** Releases the addresses of every container id this network recorded that the runtime no longer lists (CNI spec 1.1 "GC"). */
  async gc(): Promise<void> {
    requireVersion(this.conf.cniVersion, '1.1.0', 'GC');
    const valid = new Set((this.conf.validAttachments ?? []).map((a) => a.containerID));
    const failures: string[] = [];
    for (const rec of this.store.list()) {
      if (valid.has(rec.containerId)) continue;
      try {
        if (!this.delegated) await this.router.release(rec.containerId);
        this.store.remove(rec.containerId);
      } catch (err) {
        if (err instanceof RouterDownError) throw routerError(err, this.router, 'GC');
        failures.push(`${rec.containerId}: ${(err as Error).message}`);
      }
    }
    if (this.delegated) await this.deps.delegate.exec(this.conf.ipam.type, 'GC', this.conf.raw);
    if (failures.length > 0) throw new CniError(CniErrorCode.RouterError, `GC could not release ${failures.length} container(s)`, failures.join('; '));
  }

  /** Whether ADD would work now (CNI spec 1.1 "STATUS"): the runtime keeps pods pending while it fails. */
  async status(): Promise<void> {
    requireVersion(this.conf.cniVersion, '1.1.0', 'STATUS');
    const h = await this.router.health();
    switch (h.kind) {
      case 'unreachable':
        throw new CniError(CniErrorCode.PluginNotAvailable, `weave router not running: nothing answers at ${this.router.address}`, h.reason);
      case 'not-ready':
        throw new CniError(CniErrorCode.PluginNotAvailable, `weave router at ${this.router.address} is not ready: ${h.reason}`);
      case 'no-ipam':
        if (!this.delegated) throw new CniError(CniErrorCode.PluginNotAvailable, `weave router at ${this.router.address} runs without IPAM (launch it with --ipalloc-range)`);
        break;
      case 'ready':
        break;
    }
    if (this.delegated) await this.deps.delegate.exec(this.conf.ipam.type, 'STATUS', this.conf.raw);
  }
}

/** The config's cniVersion for an error reply, when stdin says; else the latest. */
export function replyVersion(stdin: string): string {
  try {
    return configVersion(decodeConfigObject(stdin));
  } catch {
    return versionInfo().cniVersion;
  }
}

/** Runs one command; resolves with what goes to stdout (possibly empty), throws CniError. */
export async function runPlugin(kind: PluginKind, env: CniEnvironment, stdin: string, deps: PluginDeps): Promise<string> {
  if (env.command === 'VERSION') return JSON.stringify(versionInfo());
  const plugin = new Plugin(kind, env, parseNetConf(stdin), deps);
  switch (env.command) {
    case 'ADD':
      return plugin.add();
    case 'DEL':
      await plugin.del();
      return '';
    case 'CHECK':
      await plugin.check();
      return '';
    case 'GC':
      await plugin.gc();
      return '';
    case 'STATUS':
      await plugin.status();
      return '';
  }
}
