// Route netlink (NETLINK_ROUTE) as a handle bound to one namespace: links
// (veth, bridge, vxlan), IPv4 addresses and IPv4 routes. The bytes are
// rtnl-codec.ts's; this module resolves names to indexes and talks to the kernel.

import type { AttributeWriter } from './attributes.js';
import { NetlinkError, isNetlinkError } from './errors.js';
import { NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, type NetlinkMessage } from './message.js';
import type { NetnsHandle } from './netns.js';
import { NETLINK_ROUTE, NetlinkSocket, type OpenOptions } from './socket.js';
import {
  IFF_UP,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELROUTE,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_GETROUTE,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTM_SETLINK,
  RT_TABLE_MAIN,
  decodeAddress,
  decodeLink,
  decodeRoute,
  encodeAddressDump,
  encodeAddressRequest,
  encodeLinkCreate,
  encodeLinkRequest,
  encodeRoute,
  encodeRouteDump,
  encodeRouteGet,
  ifinfomsg,
  setLinkAttr,
  vethData,
  vxlanData,
  type Address,
  type Link,
  type LinkCommonOptions,
  type LinkRef,
  type Route,
  type RouteSpec,
  type VethOptions,
  type VxlanOptions,
} from './rtnl-codec.js';

/** Explains the common errnos of link operations in words a user can act on. */
function hint(err: unknown, what: string): unknown {
  if (!(err instanceof NetlinkError)) return err;
  const why: Record<string, string> = {
    EEXIST: 'already exists; delete it or choose another name',
    ENODEV: 'no such link in this namespace',
    EOPNOTSUPP: 'not supported by this kernel (missing module?)',
    EPERM: 'permission denied (needs CAP_NET_ADMIN)',
  };
  const reason = why[err.code];
  return err.withOperation(reason ? `${what}: ${reason}` : what);
}

/** A route-netlink handle bound to one network namespace (the one it was opened in). */
export class Rtnl {
  constructor(readonly socket: NetlinkSocket) {}

  /** Opens a NETLINK_ROUTE socket, optionally inside another namespace. */
  static open(options: Omit<OpenOptions, 'groups'> = {}): Rtnl {
    return new Rtnl(NetlinkSocket.open(NETLINK_ROUTE, options));
  }

  close(): void {
    this.socket.close();
  }

  private async call(type: number, flags: number, payload: Buffer, what: string): Promise<NetlinkMessage[]> {
    try {
      return await this.socket.request({ type, flags, payload }, { operation: what });
    } catch (e) {
      throw hint(e, what);
    }
  }

  // ---- links

  async listLinks(): Promise<Link[]> {
    const replies = await this.call(RTM_GETLINK, NLM_F_DUMP, ifinfomsg(), 'list links');
    return replies.filter((m) => m.type === RTM_NEWLINK).map(decodeLink);
  }

  /** The link, or a NetlinkError ENODEV naming it. */
  async getLink(link: LinkRef): Promise<Link> {
    const replies = await this.call(RTM_GETLINK, 0, encodeLinkRequest(link), `get link ${JSON.stringify(link)}`);
    const m = replies.find((r) => r.type === RTM_NEWLINK);
    if (!m) throw new Error(`get link ${JSON.stringify(link)}: kernel sent no RTM_NEWLINK`);
    return decodeLink(m);
  }

  /** The link, or undefined if it does not exist. */
  async findLink(link: LinkRef): Promise<Link | undefined> {
    try {
      return await this.getLink(link);
    } catch (e) {
      if (isNetlinkError(e, 'ENODEV')) return undefined;
      throw e;
    }
  }

  private async create(name: string, kind: string, opts: LinkCommonOptions, data?: (w: AttributeWriter) => void, what?: string): Promise<Link> {
    const op = what ?? `create ${kind} link "${name}"`;
    await this.call(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, encodeLinkCreate(name, kind, opts, data), op);
    return this.getLink(name);
  }

  /** Creates a veth pair; the peer may go straight into another namespace. Returns the local end. */
  createVeth(name: string, peerName: string, opts: VethOptions = {}): Promise<Link> {
    return this.create(name, 'veth', opts, vethData(peerName, opts), `create veth link "${name}" (peer "${peerName}")`);
  }

  createBridge(name: string, opts: LinkCommonOptions = {}): Promise<Link> {
    return this.create(name, 'bridge', opts);
  }

  async createVxlan(name: string, opts: VxlanOptions): Promise<Link> {
    if (!opts.external && opts.id === undefined) {
      throw new RangeError(`create vxlan link "${name}": give a VNI (id) or external: true`);
    }
    const underlay = opts.underlay === undefined ? undefined : typeof opts.underlay === 'number' ? opts.underlay : (await this.getLink(opts.underlay)).index;
    return this.create(name, 'vxlan', opts, vxlanData(opts, underlay));
  }

  private async setLink(link: LinkRef, what: string, fill: (w: AttributeWriter) => void, flags = 0, change = 0): Promise<void> {
    await this.call(RTM_SETLINK, 0, encodeLinkRequest(link, fill, flags, change), what);
  }

  setUp(link: LinkRef): Promise<void> {
    return this.setLink(link, `set link ${JSON.stringify(link)} up`, () => {}, IFF_UP, IFF_UP);
  }

  setDown(link: LinkRef): Promise<void> {
    return this.setLink(link, `set link ${JSON.stringify(link)} down`, () => {}, 0, IFF_UP);
  }

  async setMaster(link: LinkRef, master: LinkRef): Promise<void> {
    const masterIndex = typeof master === 'number' ? master : (await this.getLink(master)).index;
    await this.setLink(link, `set master of link ${JSON.stringify(link)} to ${JSON.stringify(master)}`, setLinkAttr.master(masterIndex));
  }

  /** Releases the link from its bridge (IFLA_MASTER 0). */
  setNoMaster(link: LinkRef): Promise<void> {
    return this.setLink(link, `release link ${JSON.stringify(link)} from its master`, setLinkAttr.master(0));
  }

  setMtu(link: LinkRef, mtu: number): Promise<void> {
    return this.setLink(link, `set mtu of link ${JSON.stringify(link)} to ${mtu}`, setLinkAttr.mtu(mtu));
  }

  setMac(link: LinkRef, mac: string): Promise<void> {
    return this.setLink(link, `set address of link ${JSON.stringify(link)} to ${mac}`, setLinkAttr.mac(mac));
  }

  /** Moves the link into the namespace behind `netns` (a handle or fd). It disappears from here. */
  moveToNetns(link: LinkRef, netns: NetnsHandle | number): Promise<void> {
    return this.setLink(link, `move link ${JSON.stringify(link)} to another namespace`, setLinkAttr.netns(netns));
  }

  /** Renames a link (the kernel requires it to be down). */
  async rename(link: LinkRef, newName: string): Promise<void> {
    const setName = setLinkAttr.name(newName);
    const index = typeof link === 'number' ? link : (await this.getLink(link)).index;
    await this.call(RTM_SETLINK, 0, encodeLinkRequest(index, setName), `rename link ${JSON.stringify(link)} to "${newName}"`);
  }

  /** Deletes a link (for a veth, both ends go). */
  async deleteLink(link: LinkRef): Promise<void> {
    await this.call(RTM_DELLINK, 0, encodeLinkRequest(link), `delete link ${JSON.stringify(link)}`);
  }

  // ---- addresses

  private async indexOf(link: LinkRef): Promise<number> {
    return typeof link === 'number' ? link : (await this.getLink(link)).index;
  }

  private async addressRequest(type: number, flags: number, link: LinkRef, cidr: string, what: string): Promise<void> {
    await this.call(type, flags, encodeAddressRequest(type, await this.indexOf(link), cidr), what);
  }

  /** Adds an IPv4 address like "10.32.0.1/12". */
  addAddress(link: LinkRef, cidr: string): Promise<void> {
    return this.addressRequest(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, link, cidr, `add address ${cidr} to link ${JSON.stringify(link)}`);
  }

  deleteAddress(link: LinkRef, cidr: string): Promise<void> {
    return this.addressRequest(RTM_DELADDR, 0, link, cidr, `delete address ${cidr} from link ${JSON.stringify(link)}`);
  }

  /** IPv4 addresses, of one link or of all. */
  async listAddresses(link?: LinkRef): Promise<Address[]> {
    const index = link === undefined ? undefined : await this.indexOf(link);
    const replies = await this.call(RTM_GETADDR, NLM_F_DUMP, encodeAddressDump(), 'list addresses');
    return replies
      .filter((m) => m.type === RTM_NEWADDR)
      .map(decodeAddress)
      .filter((a): a is Address => a !== undefined && (index === undefined || a.index === index));
  }

  // ---- routes

  private async routePayload(spec: RouteSpec, forDelete: boolean): Promise<Buffer> {
    return encodeRoute(spec, spec.link === undefined ? undefined : await this.indexOf(spec.link), forDelete);
  }

  private describeRoute(spec: RouteSpec): string {
    return `route ${spec.dst}${spec.gateway ? ` via ${spec.gateway}` : ''}${spec.link !== undefined ? ` dev ${spec.link}` : ''}`;
  }

  async addRoute(spec: RouteSpec): Promise<void> {
    await this.call(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, await this.routePayload(spec, false), `add ${this.describeRoute(spec)}`);
  }

  async deleteRoute(spec: RouteSpec): Promise<void> {
    await this.call(RTM_DELROUTE, 0, await this.routePayload(spec, true), `delete ${this.describeRoute(spec)}`);
  }

  /**
   * The route the kernel picks for packets to `ip` (`ip route get`): its output
   * link, gateway and preferred source. Throws (ENETUNREACH, ...) when there is none.
   */
  async routeTo(ip: string): Promise<Route> {
    const replies = await this.call(RTM_GETROUTE, 0, encodeRouteGet(ip), `get route to ${ip}`);
    const route = replies.filter((m) => m.type === RTM_NEWROUTE).map(decodeRoute).find((r) => r !== undefined);
    if (!route) throw new Error(`get route to ${ip}: the kernel answered without a route`);
    return route;
  }

  /** IPv4 routes of one table (default main), optionally only those out of one link. */
  async listRoutes(filter: { table?: number; link?: LinkRef } = {}): Promise<Route[]> {
    const index = filter.link === undefined ? undefined : await this.indexOf(filter.link);
    const table = filter.table ?? RT_TABLE_MAIN;
    const replies = await this.call(RTM_GETROUTE, NLM_F_DUMP, encodeRouteDump(), 'list routes');
    return replies
      .filter((m) => m.type === RTM_NEWROUTE)
      .map(decodeRoute)
      .filter((r): r is Route => r !== undefined && r.table === table && (index === undefined || r.oifIndex === index));
  }
}
