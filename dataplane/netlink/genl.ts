// Generic netlink (linux/genetlink.h): the genlmsghdr codec, family
// resolution through the nlctrl controller, and a request helper that later
// families (ovs_datapath, ovs_vport, ovs_flow, ovs_packet) build on.

import { AttributeWriter, parseAttributes, type Attributes } from './attributes.js';
import { NetlinkError, isNetlinkError } from './errors.js';
import { NLM_F_DUMP, type NetlinkMessage } from './message.js';
import type { NetlinkSocket } from './socket.js';

/** GENL_ID_CTRL: nlctrl, the controller family, has the fixed id 16 (NLMSG_MIN_TYPE). */
export const GENL_ID_CTRL = 16;
/** GENL_HDRLEN: struct genlmsghdr { u8 cmd; u8 version; u16 reserved; }. */
export const GENL_HDRLEN = 4;

// Controller commands and attributes, linux/genetlink.h.
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
export const CTRL_ATTR_VERSION = 3;
export const CTRL_ATTR_HDRSIZE = 4;
export const CTRL_ATTR_MAXATTR = 5;
export const CTRL_ATTR_MCAST_GROUPS = 7;
export const CTRL_ATTR_MCAST_GRP_NAME = 1;
export const CTRL_ATTR_MCAST_GRP_ID = 2;
/** Version of the nlctrl protocol we speak (CTRL_CMD_GETFAMILY exists since version 1). */
const CTRL_VERSION = 1;

export interface GenlFamily {
  name: string;
  id: number;
  version: number;
  /** Size of the family's own fixed header after genlmsghdr (ovs: 4, struct ovs_header). */
  hdrSize: number;
  maxAttr: number;
  /** Multicast group name -> group id (to pass to NetlinkSocket.join). */
  multicastGroups: Map<string, number>;
}

/** A decoded generic netlink message. */
export interface GenlMessage {
  cmd: number;
  version: number;
  /** The family-specific fixed header (hdrSize bytes; empty for most families). */
  header: Buffer;
  attrs: Attributes;
  /** The netlink header fields, for callers that need seq/pid (e.g. upcalls). */
  raw: NetlinkMessage;
}

export function encodeGenlHeader(cmd: number, version: number): Buffer {
  const b = Buffer.alloc(GENL_HDRLEN);
  b.writeUInt8(cmd, 0);
  b.writeUInt8(version, 1);
  return b;
}

/** Decodes genlmsghdr, then `hdrSize` bytes of family header, then attributes. */
export function decodeGenlMessage(msg: NetlinkMessage, hdrSize = 0): GenlMessage {
  if (msg.payload.length < GENL_HDRLEN + hdrSize) {
    throw new Error(`generic netlink message type ${msg.type} has ${msg.payload.length} bytes, shorter than its ${GENL_HDRLEN + hdrSize}-byte headers`);
  }
  return {
    cmd: msg.payload.readUInt8(0),
    version: msg.payload.readUInt8(1),
    header: msg.payload.subarray(GENL_HDRLEN, GENL_HDRLEN + hdrSize),
    attrs: parseAttributes(msg.payload.subarray(GENL_HDRLEN + hdrSize)),
    raw: msg,
  };
}

export interface GenlRequest {
  /** Family id (from resolveFamily) */
  family: number;
  cmd: number;
  version: number;
  /** Family header bytes (e.g. struct ovs_header with dp_ifindex). */
  header?: Buffer;
  attrs?: AttributeWriter | Buffer;
  /** Extra nlmsg flags (NLM_F_DUMP, NLM_F_CREATE, NLM_F_EXCL, NLM_F_ECHO...). */
  flags?: number;
  /** Words for errors, e.g. `create datapath "weave"`. */
  operation?: string;
}

/** Sends a generic netlink request; resolves with decoded replies. */
export async function genlRequest(sock: NetlinkSocket, req: GenlRequest, replyHdrSize = req.header?.length ?? 0): Promise<GenlMessage[]> {
  const attrs = req.attrs instanceof AttributeWriter ? req.attrs.build() : (req.attrs ?? Buffer.alloc(0));
  const payload = Buffer.concat([encodeGenlHeader(req.cmd, req.version), req.header ?? Buffer.alloc(0), attrs]);
  const replies = await sock.request(
    { type: req.family, flags: req.flags ?? 0, payload },
    { operation: req.operation ?? `generic netlink family ${req.family} command ${req.cmd}` },
  );
  return replies.map((m) => decodeGenlMessage(m, replyHdrSize));
}

function familyFromAttrs(attrs: Attributes): GenlFamily {
  const name = attrs.string(CTRL_ATTR_FAMILY_NAME);
  const id = attrs.u16(CTRL_ATTR_FAMILY_ID);
  if (name === undefined || id === undefined) throw new Error('nlctrl reply lacks CTRL_ATTR_FAMILY_NAME or CTRL_ATTR_FAMILY_ID');
  const groups = new Map<string, number>();
  // CTRL_ATTR_MCAST_GROUPS nests one attribute per group (types 1..n), each nesting name and id.
  for (const g of attrs.nested(CTRL_ATTR_MCAST_GROUPS)?.list ?? []) {
    const ga = parseAttributes(g.value);
    const gname = ga.string(CTRL_ATTR_MCAST_GRP_NAME);
    const gid = ga.u32(CTRL_ATTR_MCAST_GRP_ID);
    if (gname !== undefined && gid !== undefined) groups.set(gname, gid);
  }
  return {
    name,
    id,
    version: attrs.u32(CTRL_ATTR_VERSION) ?? 0,
    hdrSize: attrs.u32(CTRL_ATTR_HDRSIZE) ?? 0,
    maxAttr: attrs.u32(CTRL_ATTR_MAXATTR) ?? 0,
    multicastGroups: groups,
  };
}

/**
 * Looks up a family by name. Rejects with NetlinkError ENOENT naming the family
 * when the kernel does not know it (its module is not loaded or not built).
 */
export async function resolveFamily(sock: NetlinkSocket, name: string): Promise<GenlFamily> {
  const operation = `resolve generic netlink family "${name}"`;
  // GENL_NAMSIZ is 16 including the NUL; the kernel answers EINVAL, not ENOENT, for longer names.
  if (name.length === 0 || Buffer.byteLength(name) > 15) {
    throw new RangeError(`${operation}: family names are 1-15 bytes`);
  }
  let replies: GenlMessage[];
  try {
    replies = await genlRequest(sock, {
      family: GENL_ID_CTRL,
      cmd: CTRL_CMD_GETFAMILY,
      version: CTRL_VERSION,
      attrs: new AttributeWriter().string(CTRL_ATTR_FAMILY_NAME, name),
      operation,
    });
  } catch (e) {
    if (isNetlinkError(e, 'ENOENT')) {
      throw new NetlinkError(e.errno, `${operation}: no such family (is its kernel module loaded? e.g. modprobe)`, e.kernelMessage);
    }
    throw e;
  }
  if (replies.length === 0) throw new Error(`${operation}: nlctrl sent no reply`);
  return familyFromAttrs(replies[0].attrs);
}

/** Lists every family the kernel currently registers. */
export async function listFamilies(sock: NetlinkSocket): Promise<GenlFamily[]> {
  const replies = await genlRequest(sock, {
    family: GENL_ID_CTRL,
    cmd: CTRL_CMD_GETFAMILY,
    version: CTRL_VERSION,
    flags: NLM_F_DUMP,
    operation: 'list generic netlink families',
  });
  return replies.map((r) => familyFromAttrs(r.attrs));
}
