// ODP vports (ovs_vport family, spec §6.1, §6.7): internal ports, netdev
// ports attaching an existing interface (a container veth), and vxlan ports
// listening on a UDP port (Weave: 6784).

import { AttributeWriter, NLM_F_DUMP, type Attributes, type GenlMessage } from '../netlink/index.js';
import {
  OVS_CMD_DEL,
  OVS_CMD_GET,
  OVS_CMD_NEW,
  OVS_CMD_SET,
  OVS_TUNNEL_ATTR_DST_PORT,
  OVS_VPORT_ATTR_IFINDEX,
  OVS_VPORT_ATTR_NAME,
  OVS_VPORT_ATTR_OPTIONS,
  OVS_VPORT_ATTR_PORT_NO,
  OVS_VPORT_ATTR_STATS,
  OVS_VPORT_ATTR_TYPE,
  OVS_VPORT_ATTR_UPCALL_PID,
  OVS_VPORT_TYPE_GENEVE,
  OVS_VPORT_TYPE_GRE,
  OVS_VPORT_TYPE_INTERNAL,
  OVS_VPORT_TYPE_NETDEV,
  OVS_VPORT_TYPE_VXLAN,
} from './constants.js';
import { replyDpIfindex, type OdpConnection } from './connection.js';
import { MalformedOdpError } from './errors.js';

export type VportType = 'netdev' | 'internal' | 'gre' | 'vxlan' | 'geneve';

const TYPE_NUMBERS: Record<VportType, number> = {
  netdev: OVS_VPORT_TYPE_NETDEV,
  internal: OVS_VPORT_TYPE_INTERNAL,
  gre: OVS_VPORT_TYPE_GRE,
  vxlan: OVS_VPORT_TYPE_VXLAN,
  geneve: OVS_VPORT_TYPE_GENEVE,
};

/** What to create: an internal port, an existing interface, or a VXLAN tunnel port. */
export type VportSpec =
  | { type: 'internal'; name: string }
  | { type: 'netdev'; name: string }
  | { type: 'vxlan'; name: string; dstPort: number };

/** struct ovs_vport_stats. */
export interface VportStats {
  rxPackets: bigint;
  txPackets: bigint;
  rxBytes: bigint;
  txBytes: bigint;
  rxErrors: bigint;
  txErrors: bigint;
  rxDropped: bigint;
  txDropped: bigint;
}

export interface Vport {
  /** dp_ifindex of the datapath the vport belongs to. */
  datapath: number;
  portNo: number;
  type: VportType | 'unknown';
  name: string;
  /** Netlink port ids receiving this vport's misses (0 = none). */
  upcallPids: number[];
  /** For tunnel vports: the UDP port they receive on. */
  dstPort?: number;
  ifindex?: number;
  stats?: VportStats;
}

/** Names a vport in calls: its port number, or its name. */
export type VportRef = number | string;

function describe(dp: number, ref: VportRef): string {
  return `${typeof ref === 'number' ? `vport ${ref}` : `vport "${ref}"`} in datapath ${dp}`;
}

function checkName(name: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > 15 || /[\s/\0]/.test(name)) {
    throw new RangeError(`invalid vport name ${JSON.stringify(name)} (an interface name: 1-15 bytes, no spaces or '/')`);
  }
}

export function decodeVportStats(b: Buffer): VportStats {
  if (b.length < 64) throw new MalformedOdpError(`OVS_VPORT_ATTR_STATS has ${b.length} bytes, expected 64 (struct ovs_vport_stats)`);
  const at = (i: number): bigint => b.readBigUInt64LE(i * 8);
  return {
    rxPackets: at(0),
    txPackets: at(1),
    rxBytes: at(2),
    txBytes: at(3),
    rxErrors: at(4),
    txErrors: at(5),
    rxDropped: at(6),
    txDropped: at(7),
  };
}

function decodeUpcallPids(b: Buffer | undefined): number[] {
  if (b === undefined) return [];
  if (b.length % 4 !== 0) throw new MalformedOdpError(`OVS_VPORT_ATTR_UPCALL_PID has ${b.length} bytes, not a whole number of u32`);
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 4) out.push(b.readUInt32LE(i));
  return out;
}

function decodeDstPort(options: Attributes | undefined): number | undefined {
  // spec §6.7: OVS_TUNNEL_ATTR_DST_PORT is a u16 in host order.
  return options?.u16(OVS_TUNNEL_ATTR_DST_PORT);
}

export function decodeVport(msg: GenlMessage): Vport {
  const a = msg.attrs;
  const portNo = a.u32(OVS_VPORT_ATTR_PORT_NO);
  const typeNo = a.u32(OVS_VPORT_ATTR_TYPE);
  const name = a.string(OVS_VPORT_ATTR_NAME);
  if (portNo === undefined || typeNo === undefined || name === undefined) {
    throw new MalformedOdpError('vport reply lacks PORT_NO, TYPE or NAME');
  }
  const type = (Object.keys(TYPE_NUMBERS) as VportType[]).find((t) => TYPE_NUMBERS[t] === typeNo) ?? 'unknown';
  const stats = a.bytes(OVS_VPORT_ATTR_STATS);
  const dstPort = decodeDstPort(a.nested(OVS_VPORT_ATTR_OPTIONS));
  const ifindex = a.u32(OVS_VPORT_ATTR_IFINDEX);
  return {
    datapath: replyDpIfindex(msg),
    portNo,
    type,
    name,
    upcallPids: decodeUpcallPids(a.bytes(OVS_VPORT_ATTR_UPCALL_PID)),
    ...(dstPort !== undefined ? { dstPort } : {}),
    ...(ifindex !== undefined ? { ifindex } : {}),
    ...(stats ? { stats: decodeVportStats(stats) } : {}),
  };
}

/** Attributes of a VPORT NEW request (exported for the byte-layout tests, spec §6.7). */
export function encodeVportCreate(spec: VportSpec, upcallPid = 0): AttributeWriter {
  checkName(spec.name);
  const w = new AttributeWriter().string(OVS_VPORT_ATTR_NAME, spec.name).u32(OVS_VPORT_ATTR_TYPE, TYPE_NUMBERS[spec.type]);
  if (spec.type === 'vxlan') {
    if (!Number.isInteger(spec.dstPort) || spec.dstPort < 1 || spec.dstPort > 0xffff) {
      throw new RangeError(`vxlan vport "${spec.name}": UDP port ${spec.dstPort} is out of range 1..65535`);
    }
    // go-odp and the kernel's old policy: OPTIONS written without NLA_F_NESTED.
    w.nestedNoFlag(OVS_VPORT_ATTR_OPTIONS, (o) => o.u16(OVS_TUNNEL_ATTR_DST_PORT, spec.dstPort));
  }
  // The kernel requires UPCALL_PID on create.
  return w.u32(OVS_VPORT_ATTR_UPCALL_PID, upcallPid);
}

function refAttrs(ref: VportRef): AttributeWriter {
  if (typeof ref === 'string') {
    checkName(ref);
    return new AttributeWriter().string(OVS_VPORT_ATTR_NAME, ref);
  }
  return new AttributeWriter().u32(OVS_VPORT_ATTR_PORT_NO, ref);
}

export interface CreateVportOptions {
  /** Netlink port id for this vport's misses (an UpcallReceiver's portId); 0 = none. */
  upcallPid?: number;
}

/**
 * Adds a vport to datapath `dp` (a dp_ifindex). Rejects `EEXIST: vport "NAME" in datapath N exists`,
 * ENODEV when a netdev vport names an interface that does not exist.
 */
export async function createVport(conn: OdpConnection, dp: number, spec: VportSpec, options: CreateVportOptions = {}): Promise<Vport> {
  await conn.request({
    family: 'vport',
    cmd: OVS_CMD_NEW,
    dpIfindex: dp,
    attrs: encodeVportCreate(spec, options.upcallPid ?? 0),
    subject: { what: `${spec.type} ${describe(dp, spec.name)}`, action: 'create' },
  });
  return getVport(conn, dp, spec.name);
}

/** Looks a vport up by port number or name. Rejects ENODEV when it does not exist. */
export async function getVport(conn: OdpConnection, dp: number, ref: VportRef): Promise<Vport> {
  const replies = await conn.request({ family: 'vport', cmd: OVS_CMD_GET, dpIfindex: dp, attrs: refAttrs(ref), subject: { what: describe(dp, ref), action: 'get' } });
  if (replies.length === 0) throw new Error(`get ${describe(dp, ref)}: the kernel sent no reply`);
  return decodeVport(replies[0]);
}

export async function deleteVport(conn: OdpConnection, dp: number, ref: VportRef): Promise<void> {
  await conn.request({ family: 'vport', cmd: OVS_CMD_DEL, dpIfindex: dp, attrs: refAttrs(ref), subject: { what: describe(dp, ref), action: 'delete' } });
}

/** Every vport of datapath `dp`, including its local internal port (port 0). */
export async function listVports(conn: OdpConnection, dp: number): Promise<Vport[]> {
  const replies = await conn.request({ family: 'vport', cmd: OVS_CMD_GET, dpIfindex: dp, flags: NLM_F_DUMP, subject: { what: `vports of datapath ${dp}`, action: 'list' } });
  return replies.map(decodeVport);
}

/** Points a vport's misses at a netlink port id (spec §6.7 "Set upcall socket"). */
export async function setVportUpcallPid(conn: OdpConnection, dp: number, ref: VportRef, upcallPid: number): Promise<void> {
  await conn.request({
    family: 'vport',
    cmd: OVS_CMD_SET,
    dpIfindex: dp,
    attrs: refAttrs(ref).u32(OVS_VPORT_ATTR_UPCALL_PID, upcallPid),
    subject: { what: describe(dp, ref), action: 'set upcall pid of' },
  });
}
