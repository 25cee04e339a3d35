// The local ports of the eBPF fast datapath in the bridged layout: every
// container veth enslaved to the `weave` bridge (host side `vethwepl*`, or any
// other port that is not one of Weave's own `vethwe-*` ports, such as the
// sleeve's capture port). Follows rtnl link events, so a container attached by
// another process gets the programs within milliseconds; `weave attach` asks
// for a rescan (sync) and waits for it instead.

import { isNetlinkError, NETLINK_ROUTE, NetlinkSocket, RTNLGRP_LINK, Rtnl, type Link } from '../../netlink/index.js';

export interface BridgePort {
  ifname: string;
  ifindex: number;
  /** A veth whose other end is in another namespace (a container): frames may go straight to that end (bpf_redirect_peer). */
  redirectPeer: boolean;
}

/** bpf_redirect_peer needs a veth whose peer lives in another namespace; the kernel reports that namespace's id. */
export function peerInOtherNetns(link: Link): boolean {
  return link.kind === 'veth' && link.parentNetnsId !== undefined;
}

/** Weave's own bridge ports (user-surface spec §6.1) are never container ports. */
export function isContainerPort(link: Link, bridgeIndex: number): boolean {
  return link.masterIndex === bridgeIndex && !link.name.startsWith('vethwe-') && link.name !== 'vethwe';
}

export class BridgePortWatcher {
  private readonly events: NetlinkSocket;
  private readonly rtnl: Rtnl;
  private closed = false;
  private readonly loop: Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private last = '';
  /** Rescans run one at a time, so a listing never overtakes a later one. */
  private scanning: Promise<BridgePort[]> = Promise.resolve([]);

  private constructor(
    private readonly bridge: string,
    private readonly onPorts: (ports: BridgePort[]) => void,
    private readonly onError: (e: Error) => void,
  ) {
    // Subscribe before the first listing, so no port added in between is missed.
    this.events = NetlinkSocket.open(NETLINK_ROUTE, { groups: [RTNLGRP_LINK] });
    this.rtnl = Rtnl.open();
    this.loop = this.follow();
  }

  /** Starts watching; `onPorts` is called with the full port list now and whenever it changes. */
  static async start(bridge: string, onPorts: (ports: BridgePort[]) => void, onError: (e: Error) => void): Promise<BridgePortWatcher> {
    const w = new BridgePortWatcher(bridge, onPorts, onError);
    await w.sync();
    return w;
  }

  /** The current container ports of the bridge. */
  async list(): Promise<BridgePort[]> {
    const links = await this.rtnl.listLinks();
    const bridge = links.find((l) => l.name === this.bridge);
    if (!bridge) return [];
    return links.filter((l) => isContainerPort(l, bridge.index)).map((l) => ({ ifname: l.name, ifindex: l.index, redirectPeer: peerInOtherNetns(l) })).sort((a, b) => a.ifindex - b.ifindex);
  }

  /**
   * Re-reads the ports now (not waiting for link events) and reports a change
   * to `onPorts` before resolving; resolves with the current ports.
   */
  sync(): Promise<BridgePort[]> {
    const next = this.scanning.catch(() => []).then(() => this.rescan());
    this.scanning = next;
    return next;
  }

  private async rescan(): Promise<BridgePort[]> {
    const ports = await this.list();
    const key = JSON.stringify(ports);
    if (key !== this.last && !this.closed) {
      this.last = key;
      this.onPorts(ports);
    }
    return ports;
  }

  private async follow(): Promise<void> {
    while (!this.closed) {
      try {
        const msgs = await this.events.receive();
        if (this.closed) return;
        if (msgs.length === 0) continue;
      } catch (e) {
        if (this.closed) return;
        // ENOBUFS: events were lost; the rescan below re-reads everything.
        if (!isNetlinkError(e, 'ENOBUFS')) this.onError(e as Error);
      }
      // A burst of link events (a veth pair: two links, master, up) yields one rescan.
      clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.sync().catch((e: unknown) => { if (!this.closed) this.onError(e as Error); });
      }, 10);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.events.close();
    await this.loop.catch(() => undefined);
    await this.scanning.catch(() => undefined);
    this.rtnl.close();
  }
}
