// ODP datapaths (ovs_datapath family, spec §6.7): create, get, delete, list.
// A datapath is identified by its dp_ifindex (the ifindex of its local
// internal port, which carries the datapath's name).

import { AttributeWriter, NLM_F_DUMP, type GenlMessage } from '../netlink/index.js';
import {
  OVS_CMD_DEL,
  OVS_CMD_GET,
  OVS_CMD_NEW,
  OVS_DP_ATTR_NAME,
  OVS_DP_ATTR_STATS,
  OVS_DP_ATTR_UPCALL_PID,
  OVS_DP_ATTR_USER_FEATURES,
  OVS_DP_F_UNALIGNED,
  OVS_DP_F_VPORT_PIDS,
} from './constants.js';
import { replyDpIfindex, type OdpConnection } from './connection.js';
import { MalformedOdpError } from './errors.js';

/** struct ovs_dp_stats. */
export interface DatapathStats {
  /** Packets that matched a flow. */
  hit: bigint;
  /** Packets that missed and were sent to userspace. */
  missed: bigint;
  /** Misses that could not be delivered to userspace. */
  lost: bigint;
  flows: bigint;
}

export interface Datapath {
  /** dp_ifindex: the id every later call names the datapath by. */
  ifindex: number;
  name: string;
  userFeatures: number;
  stats?: DatapathStats;
}

export interface CreateDatapathOptions {
  /** Netlink port id for upcalls of the datapath's own vport (0 = none). */
  upcallPid?: number;
  /** OVS_DP_F_*; default UNALIGNED | VPORT_PIDS as Weave sets (spec §6.7). */
  userFeatures?: number;
}

/** Names a datapath in calls: its name, or its dp_ifindex. */
export type DatapathRef = string | number;

const WEAVE_USER_FEATURES = OVS_DP_F_UNALIGNED | OVS_DP_F_VPORT_PIDS;

function describe(ref: DatapathRef): string {
  return typeof ref === 'number' ? `datapath ${ref}` : `datapath "${ref}"`;
}

function checkName(name: string): void {
  // IFNAMSIZ is 16 including the NUL; the datapath's local port is a netdev of this name.
  if (name.length === 0 || Buffer.byteLength(name) > 15 || /[\s/\0]/.test(name)) {
    throw new RangeError(`invalid datapath name ${JSON.stringify(name)} (1-15 bytes, no spaces or '/')`);
  }
}

export function decodeDatapathStats(b: Buffer): DatapathStats {
  if (b.length < 32) throw new MalformedOdpError(`OVS_DP_ATTR_STATS has ${b.length} bytes, expected 32 (struct ovs_dp_stats)`);
  return { hit: b.readBigUInt64LE(0), missed: b.readBigUInt64LE(8), lost: b.readBigUInt64LE(16), flows: b.readBigUInt64LE(24) };
}

export function decodeDatapath(msg: GenlMessage): Datapath {
  const name = msg.attrs.string(OVS_DP_ATTR_NAME);
  if (name === undefined) throw new MalformedOdpError('datapath reply lacks OVS_DP_ATTR_NAME');
  const stats = msg.attrs.bytes(OVS_DP_ATTR_STATS);
  return {
    ifindex: replyDpIfindex(msg),
    name,
    userFeatures: msg.attrs.u32(OVS_DP_ATTR_USER_FEATURES) ?? 0,
    ...(stats ? { stats: decodeDatapathStats(stats) } : {}),
  };
}

function refRequest(ref: DatapathRef): { dpIfindex: number; attrs: AttributeWriter } {
  const attrs = new AttributeWriter();
  if (typeof ref === 'string') {
    checkName(ref);
    attrs.string(OVS_DP_ATTR_NAME, ref);
    return { dpIfindex: 0, attrs };
  }
  return { dpIfindex: ref, attrs };
}

/** Creates a datapath. Rejects `EEXIST: datapath "NAME" exists` when it already exists. */
export async function createDatapath(conn: OdpConnection, name: string, options: CreateDatapathOptions = {}): Promise<Datapath> {
  checkName(name);
  const attrs = new AttributeWriter()
    .string(OVS_DP_ATTR_NAME, name)
    // The kernel requires UPCALL_PID on create (0 = no upcalls for the local port).
    .u32(OVS_DP_ATTR_UPCALL_PID, options.upcallPid ?? 0)
    .u32(OVS_DP_ATTR_USER_FEATURES, options.userFeatures ?? WEAVE_USER_FEATURES);
  await conn.request({ family: 'datapath', cmd: OVS_CMD_NEW, dpIfindex: 0, attrs, subject: { what: describe(name), action: 'create' } });
  // The create ACK carries no body; read the datapath back for its ifindex.
  return getDatapath(conn, name);
}

/** Looks a datapath up by name or dp_ifindex. Rejects ENODEV when it does not exist. */
export async function getDatapath(conn: OdpConnection, ref: DatapathRef): Promise<Datapath> {
  const replies = await conn.request({ family: 'datapath', cmd: OVS_CMD_GET, ...refRequest(ref), subject: { what: describe(ref), action: 'get' } });
  if (replies.length === 0) throw new Error(`get ${describe(ref)}: the kernel sent no reply`);
  return decodeDatapath(replies[0]);
}

/** Deletes a datapath with all its vports and flows. Rejects ENODEV when it does not exist. */
export async function deleteDatapath(conn: OdpConnection, ref: DatapathRef): Promise<void> {
  await conn.request({ family: 'datapath', cmd: OVS_CMD_DEL, ...refRequest(ref), subject: { what: describe(ref), action: 'delete' } });
}

/** Every datapath in the connection's namespace. */
export async function listDatapaths(conn: OdpConnection): Promise<Datapath[]> {
  const replies = await conn.request({ family: 'datapath', cmd: OVS_CMD_GET, dpIfindex: 0, flags: NLM_F_DUMP, subject: { what: 'datapaths', action: 'list' } });
  return replies.map(decodeDatapath);
}
