// Endpoints of the Docker network plugin (user-surface spec §6.1, §7.1): Docker asks the
// driver for an interface, the driver makes a veth pair `vethwl<id>` (on the weave bridge)
// <-> `vethwg<id>` (left in the host namespace, down), and Docker itself moves `vethwg<id>`
// into the container and names it `ethwe<n>`. Also the ARP settings and gratuitous ARP the
// plugin's event watcher applies to a started container's `ethwe*` interfaces.
import * as libc from '../netlink/libc.js';
import { isNetlinkError, openNetns, Rtnl, withNetns, type NetnsHandle } from '../netlink/index.js';
import { findBridge } from './bridge.js';
import { CONTAINER_IFNAME } from './names.js';
import { applySysctls, arpTuning, hostVethSysctls, setHairpin } from './sysctls.js';
import { EndpointError, targetPath, type NetnsTarget } from './endpoint.js';

/** Host end of a plugin endpoint's veth (spec §6.1). */
export const PLUGIN_HOST_VETH_PREFIX = 'vethwl';
/** The end Docker moves into the container. */
export const PLUGIN_PEER_VETH_PREFIX = 'vethwg';
/** Endpoint ids are assumed unique in their first 9 characters (IFNAMSIZ - 1 - 'vethwl'). */
export const PLUGIN_ENDPOINT_ID_CHARS = 9;
/** Host-end names of endpoints made by older plugin versions: `vethwl` + 5 characters. */
const LEGACY_ID_CHARS = 5;

export interface PluginVethNames {
  host: string;
  peer: string;
}

export function pluginVethNames(endpointId: string): PluginVethNames {
  if (!/^[0-9A-Za-z]{5,}$/.test(endpointId)) throw new EndpointError(`invalid endpoint id ${JSON.stringify(endpointId.slice(0, 80))}: expected Docker's hex id`);
  const id = endpointId.slice(0, PLUGIN_ENDPOINT_ID_CHARS);
  return { host: `${PLUGIN_HOST_VETH_PREFIX}${id}`, peer: `${PLUGIN_PEER_VETH_PREFIX}${id}` };
}

export interface PluginEndpoint {
  hostVeth: string;
  peerVeth: string;
  /** MAC of the container-side end, which Docker keeps when it moves it. */
  mac: string;
}

/**
 * Creates (or, if left from an earlier try, re-creates) the pair with the bridge's MTU and
 * puts the host end on the bridge, up, hairpin on.
 */
export async function createPluginEndpoint(rtnl: Rtnl, endpointId: string, bridge: string): Promise<PluginEndpoint> {
  const names = pluginVethNames(endpointId);
  const br = await findBridge(rtnl, bridge);
  if (!br) throw new EndpointError(`bridge "${bridge}" not present; did you launch weave?`);
  if (await rtnl.findLink(names.host)) await ignoreNoDevice(rtnl.deleteLink(names.host));
  await rtnl.createVeth(names.host, names.peer, { mtu: br.mtu, peerMtu: br.mtu });
  try {
    await rtnl.setMaster(names.host, br.index);
    applySysctls(hostVethSysctls(names.host));
    setHairpin(names.host);
    await rtnl.setUp(names.host);
    const peer = await rtnl.getLink(names.peer);
    return { hostVeth: names.host, peerVeth: names.peer, mac: peer.mac ?? '' };
  } catch (e) {
    await ignoreNoDevice(rtnl.deleteLink(names.host));
    throw e;
  }
}

/** Deletes the pair (either end takes the other with it); false when it was already gone. */
export async function deletePluginEndpoint(rtnl: Rtnl, endpointId: string): Promise<boolean> {
  const names = pluginVethNames(endpointId);
  for (const name of [names.host, `${PLUGIN_HOST_VETH_PREFIX}${endpointId.slice(0, LEGACY_ID_CHARS)}`]) {
    try {
      await rtnl.deleteLink(name);
      return true;
    } catch (e) {
      if (!isNetlinkError(e, 'ENODEV')) throw e;
    }
  }
  return false;
}

async function ignoreNoDevice(p: Promise<void>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!isNetlinkError(e, 'ENODEV')) throw e;
  }
}

// ---- ARP tuning and gratuitous ARP inside a container ----

const ETH_P_ARP = 0x0806;
const ARP_REQUEST = 1;
const SOCKADDR_LL_SIZE = 20;
const BROADCAST_MAC = Buffer.alloc(6, 0xff);

function htons(v: number): number {
  return ((v & 0xff) << 8) | (v >> 8);
}

/** A gratuitous ARP request (sender = target = `ip`) from `mac`, as an Ethernet frame. */
export function gratuitousArpFrame(mac: string, ip: string): Buffer {
  const m = Buffer.from(mac.split(':').map((b) => parseInt(b, 16)));
  const a = Buffer.from(ip.split('.').map(Number));
  if (m.length !== 6 || a.length !== 4) throw new EndpointError(`cannot build gratuitous ARP for ${mac} ${ip}`);
  const f = Buffer.alloc(42);
  BROADCAST_MAC.copy(f, 0);
  m.copy(f, 6);
  f.writeUInt16BE(ETH_P_ARP, 12);
  f.writeUInt16BE(1, 14); // hardware type Ethernet
  f.writeUInt16BE(0x0800, 16); // protocol IPv4
  f.writeUInt8(6, 18);
  f.writeUInt8(4, 19);
  f.writeUInt16BE(ARP_REQUEST, 20);
  m.copy(f, 22);
  a.copy(f, 28);
  // target hardware address stays zero
  a.copy(f, 38);
  return f;
}

/** Sends one frame out of `ifindex` in the current namespace (call inside withNetns). */
function sendFrame(ifindex: number, frame: Buffer): void {
  const fd = libc.socket(17 /* AF_PACKET */, libc.SOCK_RAW | libc.SOCK_CLOEXEC, htons(ETH_P_ARP));
  if (fd < 0) throw new EndpointError(`cannot open AF_PACKET socket for gratuitous ARP (errno ${libc.lastErrno()}; needs CAP_NET_RAW)`);
  try {
    const sll = Buffer.alloc(SOCKADDR_LL_SIZE);
    sll.writeUInt16LE(17, 0);
    sll.writeUInt16LE(htons(ETH_P_ARP), 2);
    sll.writeInt32LE(ifindex, 4);
    sll.writeUInt8(6, 11);
    BROADCAST_MAC.copy(sll, 12);
    if (libc.sendto(fd, frame, frame.length, 0, sll, SOCKADDR_LL_SIZE) < 0) {
      throw new EndpointError(`cannot send gratuitous ARP on ifindex ${ifindex} (errno ${libc.lastErrno()})`);
    }
  } finally {
    libc.close(fd);
  }
}

export interface ArpConfigured {
  interfaces: string[];
  /** Gratuitous ARPs sent (one per IPv4 address). */
  announced: number;
}

/**
 * For every interface named `ethwe*` in the container's namespace: fast ARP re-resolution
 * (spec §6.2) and a gratuitous ARP per IPv4 address, so peers that knew the address at
 * another MAC (a container restarted elsewhere) learn the new one at once.
 */
export async function configureContainerArp(target: NetnsTarget, prefix: string = CONTAINER_IFNAME): Promise<ArpConfigured> {
  let handle: NetnsHandle;
  try {
    handle = openNetns(targetPath(target));
  } catch (e) {
    throw new EndpointError(`${(e as Error).message} (is the container running?)`);
  }
  const inside = Rtnl.open({ netns: handle });
  try {
    const out: ArpConfigured = { interfaces: [], announced: 0 };
    for (const link of await inside.listLinks()) {
      if (!link.name.startsWith(prefix)) continue;
      const addrs = await inside.listAddresses(link.index);
      withNetns(handle, () => {
        applySysctls(arpTuning(link.name));
        for (const a of addrs) {
          if (!link.mac) continue;
          sendFrame(link.index, gratuitousArpFrame(link.mac, a.address));
          out.announced++;
        }
      });
      out.interfaces.push(link.name);
    }
    return out;
  } finally {
    inside.close();
    handle.close();
  }
}
