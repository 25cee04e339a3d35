// The `weave` bridge (user-surface spec §6.1): on a host without Open vSwitch
// Weave uses a plain Linux bridge (bridge type `bridge`), MAC = the peer name,
// MTU as configured, up, with its sysctls. ensureBridge converges an existing
// bridge to that state and creates it otherwise, so a restarted router reuses
// the bridge its containers are plugged into.
import { isNetlinkError, type Link, type Rtnl } from '../netlink/index.js';
import { DEFAULT_BRIDGE, validInterfaceName } from './names.js';
import { applySysctls, bridgeSysctls } from './sysctls.js';

export interface BridgeOptions {
  /** Bridge name (`--weave-bridge`), default `weave`. */
  name?: string;
  mtu: number;
  /** The peer name as a MAC (xx:xx:..); left unchanged when omitted. */
  mac?: string;
}

/** The bridge type `weave bridge-type` reports for a plain Linux bridge (spec §1.13). */
export const LINUX_BRIDGE_TYPE = 'bridge';

export class BridgeError extends Error {}

/**
 * `weave bridge-type` from the kernel's links (spec §1.13, §6.1 existing-state
 * detection): the weave bridge itself an ODP datapath -> `fastdp`; a Linux
 * bridge next to the ODP datapath `datapath` -> `bridged_fastdp`; a Linux
 * bridge alone -> `bridge`; no weave device (or another kind) -> undefined.
 */
export function classifyBridge(bridgeKind: string | undefined, datapathKind: string | undefined): string | undefined {
  if (bridgeKind === 'openvswitch') return 'fastdp';
  if (bridgeKind !== 'bridge') return undefined;
  return datapathKind === 'openvswitch' ? 'bridged_fastdp' : LINUX_BRIDGE_TYPE;
}

function wrongDevice(name: string, kind: string | undefined): BridgeError {
  return new BridgeError(
    `cannot create bridge "${name}": a different device named ${name} exists (kind ${kind ?? 'unknown'}); ` +
      `run 'weave reset' to remove it, or pass --weave-bridge with another name`,
  );
}

/** Creates or converges the bridge; returns the link as it now is. Idempotent. */
export async function ensureBridge(rtnl: Rtnl, opts: BridgeOptions): Promise<Link> {
  const name = opts.name ?? DEFAULT_BRIDGE;
  if (!validInterfaceName(name)) throw new BridgeError(`invalid bridge name ${JSON.stringify(name)} (1-15 characters, no spaces, '/' or ':')`);
  let link = await rtnl.findLink(name);
  if (link && link.kind !== 'bridge') throw wrongDevice(name, link.kind);
  if (!link) {
    try {
      link = await rtnl.createBridge(name, { mtu: opts.mtu, mac: opts.mac });
    } catch (e) {
      // Lost a race with another creator: converge whatever is there now.
      if (!isNetlinkError(e, 'EEXIST')) throw e;
      link = await rtnl.getLink(name);
      if (link.kind !== 'bridge') throw wrongDevice(name, link.kind);
    }
  }
  if (link.mtu !== opts.mtu) await rtnl.setMtu(name, opts.mtu);
  if (opts.mac !== undefined && link.mac?.toLowerCase() !== opts.mac.toLowerCase()) await rtnl.setMac(name, opts.mac);
  if (!link.up) await rtnl.setUp(name);
  applySysctls(bridgeSysctls(name));
  return rtnl.getLink(name);
}

/** The bridge, or undefined when absent; throws when the name belongs to something else. */
export async function findBridge(rtnl: Rtnl, name: string): Promise<Link | undefined> {
  const link = await rtnl.findLink(name);
  if (link && link.kind !== 'bridge') throw wrongDevice(name, link.kind);
  return link;
}

/** Deletes the bridge if it is one; returns whether it did. */
export async function deleteBridge(rtnl: Rtnl, name: string): Promise<boolean> {
  const link = await rtnl.findLink(name);
  if (!link || link.kind !== 'bridge') return false;
  try {
    await rtnl.deleteLink(link.index);
  } catch (e) {
    if (isNetlinkError(e, 'ENODEV')) return false;
    throw e;
  }
  return true;
}
