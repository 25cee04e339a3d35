// Vport NEW/DEL notifications on the ovs_vport multicast group (spec §6.7):
// a vport added by someone else (e.g. a container veth in the unbridged
// layout) needs our upcall pid, and any change of bridge ports invalidates flows.

import { decodeGenlMessage, type NetlinkSocket } from '../../netlink/index.js';
import type { OdpConnection } from '../connection.js';
import { OVS_CMD_DEL, OVS_CMD_NEW, OVS_HEADER_SIZE } from '../constants.js';
import { decodeVport, type Vport } from '../vport.js';

export type VportEvent = { kind: 'new' | 'del'; vport: Vport };

export class VportEventListener {
  private readonly sock: NetlinkSocket;
  private readonly done: Promise<void>;

  /** Starts listening; `onEvent` sees every vport NEW/DEL of datapath `dp`. */
  constructor(conn: OdpConnection, dp: number, onEvent: (e: VportEvent) => void, onError: (e: Error) => void) {
    const group = conn.families.vportGroup;
    if (group === undefined) throw new Error('the kernel announces no ovs_vport multicast group; vport changes cannot be followed');
    const sock = conn.openSibling();
    this.sock = sock;
    sock.join(group);
    const family = conn.families.vport.id;
    this.done = (async () => {
      for await (const msg of sock.messages()) {
        if (msg.type !== family) continue;
        try {
          const g = decodeGenlMessage(msg, OVS_HEADER_SIZE);
          if (g.cmd !== OVS_CMD_NEW && g.cmd !== OVS_CMD_DEL) continue;
          const vport = decodeVport(g);
          if (vport.datapath === dp) onEvent({ kind: g.cmd === OVS_CMD_NEW ? 'new' : 'del', vport });
        } catch (e) {
          onError(e as Error);
        }
      }
    })().catch((e: unknown) => onError(e as Error));
  }

  async close(): Promise<void> {
    this.sock.close();
    await this.done;
  }
}
