// Warns when hairpin mode is switched on for the bridge's datapath port
// `vethwe-bridge` (user-surface spec §6.1): the sleeve would get back every
// frame it injects, which breaks connectivity. Other software on the host
// (container runtimes, CNI plugins setting hairpin on every bridge port) does
// this; Weave logged `Hairpin mode enabled on "vethwe-bridge"` (its
// DetectHairpin) and so do we, at start and whenever it is switched on.
import { readFileSync } from 'node:fs';
import { decodeLink, isNetlinkError, NETLINK_ROUTE, NetlinkSocket, RTNLGRP_LINK } from '../netlink/index.js';

export class HairpinWatcher {
  private readonly events: NetlinkSocket;
  private closed = false;
  private enabled: boolean;
  private readonly loop: Promise<void>;

  /** `onEnabled(atStart)`: hairpin was found on at start, or was switched on later. */
  constructor(private readonly port: string, private readonly onEnabled: (atStart: boolean) => void, private readonly onError: (e: Error) => void) {
    // Subscribe before the first look, so a change in between is not missed.
    this.events = NetlinkSocket.open(NETLINK_ROUTE, { groups: [RTNLGRP_LINK] });
    this.enabled = this.hairpinOn();
    if (this.enabled) onEnabled(true);
    this.loop = this.follow();
  }

  /** The port's hairpin flag; false while the port does not exist. */
  private hairpinOn(): boolean {
    try {
      return readFileSync(`/sys/class/net/${this.port}/brport/hairpin_mode`, 'utf8').trim() === '1';
    } catch {
      return false;
    }
  }

  private async follow(): Promise<void> {
    while (!this.closed) {
      let touched = false;
      try {
        // Bridge port changes come as RTM_NEWLINK (AF_UNSPEC and AF_BRIDGE) for the port.
        for (const msg of await this.events.receive()) if (decodeLink(msg).name === this.port) touched = true;
      } catch (e) {
        if (this.closed) return;
        if (isNetlinkError(e, 'ENOBUFS')) touched = true;
        else this.onError(e as Error);
      }
      if (!touched || this.closed) continue;
      const now = this.hairpinOn();
      if (now && !this.enabled) this.onEnabled(false);
      this.enabled = now;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.events.close();
    await this.loop.catch(() => undefined);
  }
}
