// Notices container veths going away (user-surface spec §1.8): when a
// container's network namespace is destroyed (its process exited, `ip netns
// del`, the runtime removed it) the kernel deletes its veth pair, and the host
// end `vethwepl*` disappears with an RTM_DELLINK event. Without a container
// runtime to tell us, that event is how the router learns that a container
// is gone. A burst of deletions yields one callback.
import { decodeLink, isNetlinkError, NETLINK_ROUTE, NetlinkSocket, RTM_DELLINK, RTNLGRP_LINK } from '../netlink/index.js';
import { HOST_VETH_PREFIX } from './names.js';

/** Deletions closer together than this are reported once. */
const SETTLE_MS = 20;

export class VethDeletionWatcher {
  private readonly events: NetlinkSocket;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly loop: Promise<void>;

  /**
   * `onDeleted` runs after one or more container veths were deleted (and once
   * after lost events, since a deletion may have been among them).
   */
  constructor(private readonly onDeleted: () => void, private readonly onError: (e: Error) => void) {
    this.events = NetlinkSocket.open(NETLINK_ROUTE, { groups: [RTNLGRP_LINK] });
    this.loop = this.follow();
  }

  private async follow(): Promise<void> {
    while (!this.closed) {
      let deleted = false;
      try {
        for (const msg of await this.events.receive()) {
          if (msg.type === RTM_DELLINK && decodeLink(msg).name.startsWith(HOST_VETH_PREFIX)) deleted = true;
        }
      } catch (e) {
        if (this.closed) return;
        if (isNetlinkError(e, 'ENOBUFS')) deleted = true;
        else this.onError(e as Error);
      }
      if (deleted && !this.closed) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.onDeleted(), SETTLE_MS);
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.events.close();
    await this.loop.catch(() => undefined);
  }
}
