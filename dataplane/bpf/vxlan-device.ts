// The VXLAN device the programs encapsulate through: `external` (collect_md),
// so one device serves every peer and VNI, on Weave's fastdp port (spec §6.1,
// §6.2). Created through the project's netlink library.

import { Rtnl } from '../netlink/rtnl.js';
import { DEFAULT_FASTDP_PORT } from '../../controlplane/well-known.js';

export const DEFAULT_TUNNEL_DEVICE = `vxlan-${DEFAULT_FASTDP_PORT}`;

export interface TunnelDeviceOptions {
  name?: string;
  port?: number;
  /** Network namespace to create it in (name under /run/netns or a path); default: the current one. */
  netns?: string;
}

/** Creates (or reuses) the external VXLAN device, brings it up, and returns its ifindex. */
export async function ensureTunnelDevice(opts: TunnelDeviceOptions = {}): Promise<number> {
  const name = opts.name ?? DEFAULT_TUNNEL_DEVICE;
  const port = opts.port ?? DEFAULT_FASTDP_PORT;
  const rtnl = Rtnl.open(opts.netns ? { netns: opts.netns } : {});
  try {
    const existing = await rtnl.findLink(name);
    if (existing && (existing.kind !== 'vxlan' || !existing.vxlan?.external || existing.vxlan.port !== port)) {
      // A leftover of another mode (or a foreign device): replace it.
      await rtnl.deleteLink(existing.index);
    }
    const link = existing && (await rtnl.findLink(name)) ? existing : await rtnl.createVxlan(name, { external: true, port, learning: false });
    if (!link.up) await rtnl.setUp(link.index);
    return link.index;
  } finally {
    rtnl.close();
  }
}

export async function deleteTunnelDevice(opts: TunnelDeviceOptions = {}): Promise<void> {
  const rtnl = Rtnl.open(opts.netns ? { netns: opts.netns } : {});
  try {
    const link = await rtnl.findLink(opts.name ?? DEFAULT_TUNNEL_DEVICE);
    if (link) await rtnl.deleteLink(link.index);
  } finally {
    rtnl.close();
  }
}

/** Interface name -> ifindex inside the datapath's namespace. */
export async function resolveIfindexes(names: readonly string[], netns?: string): Promise<Map<string, number>> {
  const rtnl = Rtnl.open(netns ? { netns } : {});
  try {
    const out = new Map<string, number>();
    for (const n of names) out.set(n, (await rtnl.getLink(n)).index);
    return out;
  } finally {
    rtnl.close();
  }
}
