// An ODP connection: one NETLINK_GENERIC socket (optionally in a network
// namespace; datapaths are per namespace) with the ODP families resolved, and
// the request helper every typed module uses. Spec §6.7 layout:
// nlmsghdr | genlmsghdr | ovs_header (i32 dp_ifindex) | attributes.

import {
  AttributeWriter,
  NETLINK_GENERIC,
  NetlinkSocket,
  genlRequest,
  type GenlMessage,
  type NetnsHandle,
} from '../netlink/index.js';
import { OVS_HEADER_SIZE } from './constants.js';
import { describeOdpError, type OdpSubject } from './errors.js';
import { resolveOdpFamilies, type OdpFamilies } from './families.js';

export type OdpFamilyName = 'datapath' | 'vport' | 'flow' | 'packet';

export interface OdpConnectionOptions {
  /** Namespace whose datapaths to manage (name under /run/netns, path, or handle). */
  netns?: NetnsHandle | string;
}

export interface OdpRequest {
  family: OdpFamilyName;
  cmd: number;
  /** struct ovs_header dp_ifindex; 0 when the call names no datapath yet. */
  dpIfindex: number;
  attrs?: AttributeWriter;
  flags?: number;
  subject: OdpSubject;
}

export function encodeOvsHeader(dpIfindex: number): Buffer {
  if (!Number.isInteger(dpIfindex) || dpIfindex < 0 || dpIfindex > 0x7fffffff) {
    throw new RangeError(`datapath ifindex ${dpIfindex} is out of range 0..2147483647`);
  }
  const b = Buffer.alloc(OVS_HEADER_SIZE);
  b.writeInt32LE(dpIfindex, 0);
  return b;
}

/** dp_ifindex from a reply's ovs_header. */
export function replyDpIfindex(msg: GenlMessage): number {
  return msg.header.length >= OVS_HEADER_SIZE ? msg.header.readInt32LE(0) : 0;
}

export class OdpConnection {
  private constructor(
    readonly sock: NetlinkSocket,
    readonly families: OdpFamilies,
    readonly netns: NetnsHandle | string | undefined,
  ) {}

  /** Opens a socket and resolves the ODP families (ENODEV when the openvswitch module is absent). */
  static async open(options: OdpConnectionOptions = {}): Promise<OdpConnection> {
    const sock = NetlinkSocket.open(NETLINK_GENERIC, { netns: options.netns });
    try {
      return new OdpConnection(sock, await resolveOdpFamilies(sock), options.netns);
    } catch (e) {
      sock.close();
      throw e;
    }
  }

  /** A second socket in the same namespace sharing the resolved families (e.g. for upcalls). */
  openSibling(): NetlinkSocket {
    return NetlinkSocket.open(NETLINK_GENERIC, { netns: this.netns });
  }

  async request(req: OdpRequest): Promise<GenlMessage[]> {
    const family = this.families[req.family];
    try {
      return await genlRequest(
        this.sock,
        {
          family: family.id,
          cmd: req.cmd,
          version: family.version,
          header: encodeOvsHeader(req.dpIfindex),
          attrs: req.attrs,
          flags: req.flags,
          operation: `${req.subject.action} ${req.subject.what}`,
        },
        OVS_HEADER_SIZE,
      );
    } catch (e) {
      throw describeOdpError(e, req.subject);
    }
  }

  close(): void {
    this.sock.close();
  }
}
