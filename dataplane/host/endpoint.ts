// Container endpoints (user-surface spec §1.8, §1.9, §6.1, §6.2): a veth pair
// `vethwepl<id>` (host, on the bridge) <-> `ethwe` (inside the container's
// network namespace), with the container's addresses, a route per subnet and
// the multicast route, and rules that accept multicast only from the
// container's own subnets (container-multicast.ts). attach() converges: attaching again only adds what is
// missing; detach() removes addresses and the veth once none are left.
import { createHash } from 'node:crypto';
import { fstatSync, statSync } from 'node:fs';
import {
  isNetlinkError, openNetns, type ErrnoName, Rtnl, THREAD_NETNS_PATH, withNetns, RT_SCOPE_LINK,
  type Address, type Link, type NetnsHandle,
} from '../netlink/index.js';
import { findBridge } from './bridge.js';
import { announceAddresses } from './gratuitous-arp.js';
import { applyContainerMulticast } from './container-multicast.js';
import { networkOf, parseCidr } from './cidr.js';
import { CONTAINER_IFNAME, endpointVethNames, MULTICAST_ROUTE, validInterfaceName } from './names.js';
import { applySysctls, containerInterfaceSysctls, hostVethSysctls, setHairpin } from './sysctls.js';

export class EndpointError extends Error {}

/** Where the container's network namespace is: a path (/run/netns/X, a bind mount) or a process. */
export type NetnsTarget = { netns: string } | { pid: number };

export interface AttachOptions {
  target: NetnsTarget;
  /** Addresses as CIDRs, e.g. ["10.32.0.2/12", "10.2.1.1/24"]. */
  cidrs: readonly string[];
  /** Bridge to plug the host end into (`--weave-bridge`). */
  bridge: string;
  /** Add 224.0.0.0/4 dev ethwe (default true; `--no-multicast-route`). */
  multicastRoute?: boolean;
  /** Container-side interface name (default `ethwe`; a CNI runtime names it, e.g. eth0). */
  ifname?: string;
  /** Token for `vethwepl<id>` instead of the pid/inode (CNI: the container id). */
  vethId?: string;
  /** Hairpin mode on the host end (default true). */
  hairpin?: boolean;
  /** MTU of the pair (default, or 0: the bridge's). */
  mtu?: number;
  /** Extra routes inside the container; without a gateway a route is on-link. */
  routes?: readonly EndpointRoute[];
  /**
   * Resolves once the data plane forwards for the host-side veth; the
   * gratuitous ARPs wait for it so they reach other hosts too.
   */
  portReady?: (hostVeth: string) => Promise<void>;
}

export interface EndpointRoute {
  /** Destination CIDR, e.g. 0.0.0.0/0. */
  dst: string;
  gateway?: string;
}

export interface AttachResult {
  /** Host-side veth name. */
  hostVeth: string;
  /** MAC of the container's ethwe. */
  mac: string;
  /** Addresses ethwe now has, as CIDRs. */
  cidrs: string[];
  /** Whether this call created the veth (false: re-attach). */
  created: boolean;
  /** Addresses this call added (each announced by a gratuitous ARP). */
  added: string[];
  /** Why the gratuitous ARPs could not be sent, when they could not (the attach itself stands). */
  announceError?: Error;
}

export interface EndpointInfo {
  mac: string;
  mtu: number;
  cidrs: string[];
  /** Host-side interface index of the veth peer (IFLA_LINK as seen from inside). */
  peerIndex?: number;
  /** Routes through the interface in the main table, as CIDR and optional gateway. */
  routes: EndpointRoute[];
}

/** The namespace file of a target. */
export function targetPath(target: NetnsTarget): string {
  if ('pid' in target) {
    if (!Number.isInteger(target.pid) || target.pid <= 0) throw new EndpointError(`invalid process id ${String(target.pid)}`);
    return `/proc/${target.pid}/ns/net`;
  }
  return target.netns;
}

function openTarget(target: NetnsTarget): NetnsHandle {
  const path = targetPath(target);
  try {
    return openNetns(path);
  } catch (e) {
    const hint = 'pid' in target ? ` (is process ${target.pid} running?)` : '';
    throw new EndpointError(`${(e as Error).message}${hint}`);
  }
}

/**
 * The short id in `vethwepl<id>`: the process id when known (spec §1.8), else
 * the namespace's inode number (unique while the namespace exists), last 7 digits.
 */
export function endpointId(target: NetnsTarget, handle: NetnsHandle): string {
  const pid = 'pid' in target ? target.pid : /^\/proc\/(\d+)\/ns\/net$/.exec(target.netns)?.[1];
  if (pid !== undefined) return String(pid).slice(0, 7);
  return String(fstatSync(handle.fd).ino).slice(-7);
}

function sameNamespace(handle: NetnsHandle): boolean {
  const a = fstatSync(handle.fd);
  const b = statSync(THREAD_NETNS_PATH);
  return a.ino === b.ino && a.dev === b.dev;
}

function cidrOf(a: Address): string {
  return `${a.address}/${a.prefixLen}`;
}

async function ignoreCode<T>(p: Promise<T>, code: ErrnoName): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (isNetlinkError(e, code)) return undefined;
    throw e;
  }
}

/** Creates the veth pair with its container end already inside the namespace, named ethwe. */
async function createPair(
  host: Rtnl, inside: Rtnl, handle: NetnsHandle,
  pair: { id: string; bridge: string; mtu: number; ifname: string; hairpin: boolean; runtimeId: boolean },
): Promise<string> {
  const { id, bridge, mtu } = pair;
  let names = endpointVethNames(id);
  if (await host.findLink(names.host)) {
    if (pair.runtimeId) {
      // Another pod whose id starts with the same 7 characters holds the name: never take its veth,
      // use 7 hex digits of a hash of the whole id instead.
      names = endpointVethNames(createHash('sha256').update(id).digest('hex').slice(0, 7));
      if (await host.findLink(names.host)) throw new EndpointError(`host interfaces ${endpointVethNames(id).host} and ${names.host} already exist; remove the stale one`);
    } else {
      // A host end without its ethwe is left over from an earlier namespace with the same id.
      await ignoreCode(host.deleteLink(names.host), 'ENODEV');
    }
  }
  await host.createVeth(names.host, names.peer, { mtu, peerMtu: mtu, peerNetns: handle });
  try {
    await inside.rename(names.peer, pair.ifname);
    await host.setMaster(names.host, bridge);
    applySysctls(hostVethSysctls(names.host));
    if (pair.hairpin) setHairpin(names.host);
    await host.setUp(names.host);
  } catch (e) {
    await ignoreCode(host.deleteLink(names.host), 'ENODEV');
    throw e;
  }
  return names.host;
}

/** Finds the host end of ethwe: the link whose index ethwe names as its peer. */
async function hostEndName(host: Rtnl, peerIndex: number | undefined): Promise<string> {
  if (peerIndex === undefined) return '';
  const link = await host.findLink(peerIndex);
  return link?.name ?? '';
}

/** Attaches (or re-attaches) a container. Throws EndpointError with a message naming the fix. */
export async function attach(host: Rtnl, opts: AttachOptions): Promise<AttachResult> {
  const cidrs = opts.cidrs.map((c) => {
    parseCidr(c);
    return c;
  });
  const ifname = opts.ifname ?? CONTAINER_IFNAME;
  if (!validInterfaceName(ifname)) throw new EndpointError(`invalid interface name ${JSON.stringify(ifname)}`);
  for (const r of opts.routes ?? []) {
    parseCidr(r.dst);
    if (r.gateway !== undefined) parseCidr(`${r.gateway}/32`);
  }
  const bridgeLink = await findBridge(host, opts.bridge);
  if (!bridgeLink) throw new EndpointError(`bridge "${opts.bridge}" not present; did you launch weave?`);
  const handle = openTarget(opts.target);
  let inside: Rtnl | undefined;
  try {
    if (sameNamespace(handle)) {
      throw new EndpointError(
        `Container is running in the host network namespace, and therefore cannot be\nconnected to weave - perhaps the container was started with --net=host (namespace ${handle.path})`,
      );
    }
    inside = Rtnl.open({ netns: handle });
    let created = false;
    let ethwe = await inside.findLink(ifname);
    let hostVeth: string;
    if (!ethwe) {
      hostVeth = await createPair(host, inside, handle, {
        id: opts.vethId ?? endpointId(opts.target, handle),
        bridge: opts.bridge,
        mtu: opts.mtu !== undefined && opts.mtu > 0 ? opts.mtu : bridgeLink.mtu,
        ifname,
        hairpin: opts.hairpin ?? true,
        runtimeId: opts.vethId !== undefined,
      });
      created = true;
      ethwe = await inside.getLink(ifname);
    } else {
      if (ethwe.kind !== 'veth') {
        throw new EndpointError(`the container already has an interface named ${ifname} that is not a veth (kind ${ethwe.kind ?? 'unknown'}); remove it first`);
      }
      hostVeth = await hostEndName(host, ethwe.parentIndex);
    }
    withNetns(handle, () => applySysctls(containerInterfaceSysctls(ifname)));
    // Up before addresses, so the kernel installs each subnet's route at once.
    if (!ethwe.up) await inside.setUp(ifname);
    const have = new Set((await inside.listAddresses(ifname)).map(cidrOf));
    const added: string[] = [];
    for (const c of cidrs) {
      if (have.has(c)) continue;
      await ignoreCode(inside.addAddress(ifname, c), 'EEXIST');
      have.add(c);
      added.push(c);
    }
    // Before the multicast route: no moment where other subnets' multicast reaches the container.
    await applyContainerMulticast(handle.path, ifname, [...have]);
    for (const c of cidrs) {
      // The kernel adds the subnet route with the address; add it ourselves if something removed it.
      await ignoreCode(inside.addRoute({ dst: networkOf(c), link: ifname, scope: RT_SCOPE_LINK, source: parseCidr(c).ip }), 'EEXIST');
    }
    if (opts.multicastRoute ?? true) {
      await ignoreCode(inside.addRoute({ dst: MULTICAST_ROUTE, link: ifname, scope: RT_SCOPE_LINK }), 'EEXIST');
    }
    // In order: an on-link route to a gateway comes before the routes via it.
    for (const r of opts.routes ?? []) {
      const spec = r.gateway === undefined ? { dst: r.dst, link: ifname, scope: RT_SCOPE_LINK } : { dst: r.dst, link: ifname, gateway: r.gateway };
      await ignoreCode(inside.addRoute(spec), 'EEXIST');
    }
    const final = await inside.getLink(ifname);
    if (hostVeth !== '') await opts.portReady?.(hostVeth);
    // Peers may still map a re-used address to the MAC of its previous holder (Weave: net/veth.go).
    const announceError = final.mac ? announceAddresses(handle, final.index, final.mac, added) : undefined;
    const result: AttachResult = { hostVeth, mac: final.mac ?? '', cidrs: (await inside.listAddresses(ifname)).map(cidrOf), created, added };
    return announceError ? { ...result, announceError } : result;
  } finally {
    inside?.close();
    handle.close();
  }
}

export interface DetachResult {
  /** Addresses removed. */
  removed: string[];
  /** True when ethwe (and so the veth pair) was deleted. */
  deleted: boolean;
}

/**
 * Removes the given addresses (all of them when `cidrs` is empty) from the
 * container's ethwe; deletes the veth when no address is left (spec §1.9).
 */
export async function detach(target: NetnsTarget, cidrs: readonly string[], ifname: string = CONTAINER_IFNAME): Promise<DetachResult> {
  for (const c of cidrs) parseCidr(c);
  const handle = openTarget(target);
  const inside = Rtnl.open({ netns: handle });
  try {
    const ethwe = await inside.findLink(ifname);
    if (!ethwe) throw new EndpointError(`namespace ${handle.path} has no ${ifname} interface: it is not attached to weave`);
    const have = (await inside.listAddresses(ethwe.index)).map(cidrOf);
    const wanted = cidrs.length === 0 ? have : cidrs.filter((c) => have.includes(c));
    for (const c of wanted) await ignoreCode(inside.deleteAddress(ethwe.index, c), 'EADDRNOTAVAIL');
    const left = (await inside.listAddresses(ethwe.index)).map(cidrOf);
    // The rules follow the addresses; with the last address the table goes (the interface goes below).
    await applyContainerMulticast(handle.path, ifname, left);
    let deleted = false;
    if (left.length === 0) {
      // Deleting one end of a veth deletes the host end too.
      await ignoreCode(inside.deleteLink(ethwe.index), 'ENODEV');
      deleted = true;
    }
    return { removed: wanted, deleted };
  } finally {
    inside.close();
    handle.close();
  }
}

/**
 * Runs `fn` with a route netlink handle inside the container and its weave
 * interface: `ifname`, or for the default name any `ethwe<n>` (Docker names a
 * plugin endpoint so). `gone` when the namespace or the interface is not there.
 */
async function inContainerInterface<T>(target: NetnsTarget, ifname: string, gone: T, fn: (inside: Rtnl, link: Link, handle: NetnsHandle) => Promise<T>): Promise<T> {
  let handle: NetnsHandle;
  try {
    handle = openTarget(target);
  } catch {
    return gone;
  }
  const inside = Rtnl.open({ netns: handle });
  try {
    const link = (await inside.findLink(ifname))
      ?? (ifname === CONTAINER_IFNAME ? (await inside.listLinks()).find((l) => l.name.startsWith(CONTAINER_IFNAME)) : undefined);
    return link ? await fn(inside, link, handle) : gone;
  } finally {
    inside.close();
    handle.close();
  }
}

/**
 * Lowers the container's interface and its host end on `bridgeIndex` to `mtu`
 * (never raises either): the overlay follows a neighbour that accepts less
 * (controlplane/router/overlay-mtu.ts). The container end first, so for a
 * moment the host end may take more than the container sends, never the
 * reverse. False when the namespace or interface is gone.
 */
export function lowerEndpointMtu(host: Rtnl, target: NetnsTarget, ifname: string, bridgeIndex: number, mtu: number): Promise<boolean> {
  return inContainerInterface(target, ifname, false, async (inside, link) => {
    if (link.mtu > mtu) await inside.setMtu(link.index, mtu);
    const hostEnd = link.parentIndex === undefined ? undefined : await host.findLink(link.parentIndex);
    if (hostEnd?.kind === 'veth' && hostEnd.masterIndex === bridgeIndex && hostEnd.mtu > mtu) await host.setMtu(hostEnd.index, mtu);
    return true;
  });
}

/**
 * Sends a gratuitous ARP for each IPv4 address on the container's weave
 * interface (HostNetwork.reannounce). False when the namespace or interface
 * is gone; throws when the announcement cannot be sent.
 */
export function announceEndpoint(target: NetnsTarget, ifname: string = CONTAINER_IFNAME): Promise<boolean> {
  return inContainerInterface(target, ifname, false, async (inside, link, handle) => {
    const cidrs = (await inside.listAddresses(link.index)).map(cidrOf); // IPv4 only (RTM_GETADDR for AF_INET)
    if (!link.mac || cidrs.length === 0) return false;
    const failed = announceAddresses(handle, link.index, link.mac, cidrs);
    if (failed) throw failed;
    return true;
  });
}

/** MAC and addresses of the container's ethwe, or undefined if it has none (for `weave ps`). */
export function inspectEndpoint(target: NetnsTarget, ifname: string = CONTAINER_IFNAME): Promise<EndpointInfo | undefined> {
  return inContainerInterface<EndpointInfo | undefined>(target, ifname, undefined, async (inside, ethwe) => {
    const cidrs = (await inside.listAddresses(ethwe.index)).map(cidrOf);
    const routes = (await inside.listRoutes({ link: ethwe.index }))
      .map((r) => (r.gateway === undefined ? { dst: r.dst } : { dst: r.dst, gateway: r.gateway }));
    return { mac: ethwe.mac ?? '', mtu: ethwe.mtu, cidrs, peerIndex: ethwe.parentIndex, routes };
  });
}
