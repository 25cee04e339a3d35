// Packets to and from userspace (ovs_packet family, spec §6.5, §6.7):
// receiving upcalls (misses, and userspace-action packets) on a socket of
// our own, and injecting a frame with a list of actions (EXECUTE).
//
// Each UpcallReceiver owns one netlink socket; point one or more vports at
// its portId (createVport's upcallPid, or setVportUpcallPid). Receiving waits
// off the event loop thread (the netlink socket's epoll worker).

import { AttributeWriter, decodeGenlMessage, type NetlinkMessage, type NetlinkSocket } from '../netlink/index.js';
import {
  OVS_HEADER_SIZE,
  OVS_PACKET_ATTR_ACTIONS,
  OVS_PACKET_ATTR_KEY,
  OVS_PACKET_ATTR_PACKET,
  OVS_PACKET_ATTR_USERDATA,
  OVS_PACKET_CMD_ACTION,
  OVS_PACKET_CMD_EXECUTE,
  OVS_PACKET_CMD_MISS,
} from './constants.js';
import { replyDpIfindex, type OdpConnection } from './connection.js';
import { MalformedOdpError } from './errors.js';
import { encodeActions, type FlowAction } from './flow-actions.js';
import { decodeFlowKey, encodeFlowKey, type FlowKey } from './flow-key.js';

export interface Upcall {
  /** 'miss': no flow matched; 'action': a userspace action sent it. */
  kind: 'miss' | 'action';
  /** dp_ifindex of the datapath it came from. */
  datapath: number;
  /** The whole Ethernet frame. */
  packet: Buffer;
  /** The kernel's exact flow key for the packet (in_port, tunnel, ethernet, ...). */
  key: FlowKey;
  /** OVS_USERSPACE_ATTR_USERDATA of the userspace action, when it had one. */
  userdata?: Buffer;
}

/** Decodes one ovs_packet message from the kernel; throws MalformedOdpError on a bad layout. */
export function decodeUpcall(msg: NetlinkMessage): Upcall {
  let g;
  try {
    g = decodeGenlMessage(msg, OVS_HEADER_SIZE);
  } catch (e) {
    throw new MalformedOdpError(`upcall: ${(e as Error).message}`);
  }
  if (g.cmd !== OVS_PACKET_CMD_MISS && g.cmd !== OVS_PACKET_CMD_ACTION) {
    throw new MalformedOdpError(`upcall has command ${g.cmd}, expected MISS (1) or ACTION (2)`);
  }
  const packet = g.attrs.bytes(OVS_PACKET_ATTR_PACKET);
  const key = g.attrs.bytes(OVS_PACKET_ATTR_KEY);
  if (packet === undefined || key === undefined) throw new MalformedOdpError('upcall lacks OVS_PACKET_ATTR_PACKET or OVS_PACKET_ATTR_KEY');
  const userdata = g.attrs.bytes(OVS_PACKET_ATTR_USERDATA);
  return {
    kind: g.cmd === OVS_PACKET_CMD_MISS ? 'miss' : 'action',
    datapath: replyDpIfindex(g),
    // Copies: the socket reuses its receive buffer.
    packet: Buffer.from(packet),
    key: decodeFlowKey(key),
    ...(userdata !== undefined ? { userdata: Buffer.from(userdata) } : {}),
  };
}

export class UpcallReceiver {
  private constructor(
    private readonly sock: NetlinkSocket,
    private readonly packetFamily: number,
  ) {}

  /** Opens a receiving socket in the connection's namespace. */
  static open(conn: OdpConnection): UpcallReceiver {
    return new UpcallReceiver(conn.openSibling(), conn.families.packet.id);
  }

  /** The netlink port id to give vports as their upcall pid. */
  get portId(): number {
    return this.sock.portId;
  }

  /**
   * Resolves with the upcalls queued (at least one), or [] after `timeoutMs`.
   * Messages that are not ovs_packet upcalls are skipped.
   */
  async receive(timeoutMs = Infinity): Promise<Upcall[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const msgs = await this.sock.receive(Math.max(0, deadline - Date.now()));
      if (msgs.length === 0) return [];
      const upcalls = msgs.filter((m) => m.type === this.packetFamily).map(decodeUpcall);
      if (upcalls.length > 0 || Date.now() >= deadline) return upcalls;
    }
  }

  /** Async iteration over upcalls until the receiver is closed. */
  async *upcalls(): AsyncGenerator<Upcall> {
    while (!this.sock.isClosed) {
      let batch: Upcall[];
      try {
        batch = await this.receive();
      } catch (e) {
        if (this.sock.isClosed) return;
        throw e;
      }
      yield* batch;
    }
  }

  close(): void {
    this.sock.close();
  }
}

export interface ExecuteSpec {
  /** The Ethernet frame to inject. */
  packet: Buffer;
  /** Metadata for the packet (e.g. inPort); Weave sends none (spec §6.7). */
  key?: FlowKey;
  actions: FlowAction[];
}

/** Attributes of a PACKET EXECUTE request (exported for the byte-layout tests, spec §6.7). */
export function encodeExecuteAttrs(spec: ExecuteSpec): AttributeWriter {
  return new AttributeWriter()
    .bytes(OVS_PACKET_ATTR_PACKET, spec.packet)
    .bytes(OVS_PACKET_ATTR_KEY, encodeFlowKey(spec.key ?? {}))
    .bytes(OVS_PACKET_ATTR_ACTIONS, encodeActions(spec.actions));
}

/** Runs `actions` on `packet` in datapath `dp` (OVS_PACKET_CMD_EXECUTE). */
export async function executePacket(conn: OdpConnection, dp: number, spec: ExecuteSpec): Promise<void> {
  if (spec.packet.length < 14) throw new RangeError(`packet execute: a frame needs at least 14 bytes (an Ethernet header), got ${spec.packet.length}`);
  await conn.request({
    family: 'packet',
    cmd: OVS_PACKET_CMD_EXECUTE,
    dpIfindex: dp,
    attrs: encodeExecuteAttrs(spec),
    subject: { what: `a ${spec.packet.length}-byte packet in datapath ${dp}`, action: 'execute' },
  });
}
