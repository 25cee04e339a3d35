// ODP flows (ovs_flow family, spec §6.5-6.7): install, look up, delete and
// dump flows with their statistics. A flow is named by its key (the kernel
// looks flows up by the unmasked key they were created with).

import { AttributeWriter, NLM_F_CREATE, NLM_F_DUMP, type GenlMessage } from '../netlink/index.js';
import {
  OVS_CMD_DEL,
  OVS_CMD_GET,
  OVS_CMD_NEW,
  OVS_CMD_SET,
  OVS_FLOW_ATTR_ACTIONS,
  OVS_FLOW_ATTR_CLEAR,
  OVS_FLOW_ATTR_KEY,
  OVS_FLOW_ATTR_MASK,
  OVS_FLOW_ATTR_STATS,
  OVS_FLOW_ATTR_USED,
} from './constants.js';
import { replyDpIfindex, type OdpConnection } from './connection.js';
import { MalformedOdpError } from './errors.js';
import { decodeActions, encodeActions, type FlowAction } from './flow-actions.js';
import { decodeFlowKey, encodeFlowKey, type FlowKey } from './flow-key.js';

export interface FlowSpec {
  key: FlowKey;
  /** Absent: exact match on every key field. A field absent from the mask is wildcarded. */
  mask?: FlowKey;
  actions: FlowAction[];
}

export interface FlowStats {
  packets: bigint;
  bytes: bigint;
}

export interface Flow {
  datapath: number;
  key: FlowKey;
  mask?: FlowKey;
  actions: FlowAction[];
  stats: FlowStats;
  /** Kernel monotonic ms of the last packet; 0n when the flow has not been used (spec §6.7 USED). */
  used: bigint;
}

function describe(dp: number, key: FlowKey): string {
  const parts: string[] = [];
  if (key.inPort !== undefined) parts.push(`in_port=${key.inPort}`);
  if (key.tunnel?.id !== undefined) parts.push(`tun_id=0x${key.tunnel.id.toString(16)}`);
  if (key.ethernet) parts.push(`eth=${key.ethernet.src}->${key.ethernet.dst}`);
  return `flow {${parts.join(',')}} in datapath ${dp}`;
}

/** Attributes of a FLOW NEW request (exported for the byte-layout tests, spec §6.6). */
export function encodeFlowAttrs(spec: FlowSpec): AttributeWriter {
  // spec §6.6: KEY, MASK, ACTIONS nests written without NLA_F_NESTED, as go-odp does.
  const w = new AttributeWriter().bytes(OVS_FLOW_ATTR_KEY, encodeFlowKey(spec.key));
  if (spec.mask !== undefined) w.bytes(OVS_FLOW_ATTR_MASK, encodeFlowKey(spec.mask));
  return w.bytes(OVS_FLOW_ATTR_ACTIONS, encodeActions(spec.actions));
}

export function decodeFlowStats(b: Buffer): FlowStats {
  if (b.length < 16) throw new MalformedOdpError(`OVS_FLOW_ATTR_STATS has ${b.length} bytes, expected 16 (struct ovs_flow_stats)`);
  return { packets: b.readBigUInt64LE(0), bytes: b.readBigUInt64LE(8) };
}

export function decodeFlow(msg: GenlMessage): Flow {
  const key = msg.attrs.bytes(OVS_FLOW_ATTR_KEY);
  if (key === undefined) throw new MalformedOdpError('flow reply lacks OVS_FLOW_ATTR_KEY');
  const mask = msg.attrs.bytes(OVS_FLOW_ATTR_MASK);
  const actions = msg.attrs.bytes(OVS_FLOW_ATTR_ACTIONS);
  const stats = msg.attrs.bytes(OVS_FLOW_ATTR_STATS);
  return {
    datapath: replyDpIfindex(msg),
    key: decodeFlowKey(key),
    ...(mask !== undefined ? { mask: decodeFlowKey(mask) } : {}),
    actions: actions !== undefined ? decodeActions(actions) : [],
    // The kernel omits STATS for a flow that matched nothing yet.
    stats: stats !== undefined ? decodeFlowStats(stats) : { packets: 0n, bytes: 0n },
    used: msg.attrs.u64(OVS_FLOW_ATTR_USED) ?? 0n,
  };
}

/**
 * Installs a flow. Rejects `EEXIST: flow {...} exists` when a flow with the
 * same key is installed: the kernel treats NLM_F_CREATE as exclusive (generic
 * netlink reads NLM_F_EXCL as a dump flag), so a flow's actions are never
 * replaced in place; delete it first.
 */
export async function createFlow(conn: OdpConnection, dp: number, spec: FlowSpec): Promise<void> {
  await conn.request({
    family: 'flow',
    cmd: OVS_CMD_NEW,
    dpIfindex: dp,
    attrs: encodeFlowAttrs(spec),
    flags: NLM_F_CREATE,
    subject: { what: describe(dp, spec.key), action: 'create' },
  });
}

/** Looks a flow up by its key. Rejects `ENOENT: flow {...} does not exist` when absent. */
export async function getFlow(conn: OdpConnection, dp: number, key: FlowKey): Promise<Flow> {
  const replies = await conn.request({
    family: 'flow',
    cmd: OVS_CMD_GET,
    dpIfindex: dp,
    attrs: new AttributeWriter().bytes(OVS_FLOW_ATTR_KEY, encodeFlowKey(key)),
    subject: { what: describe(dp, key), action: 'get' },
  });
  if (replies.length === 0) throw new Error(`get ${describe(dp, key)}: the kernel sent no reply`);
  return decodeFlow(replies[0]);
}

/** Deletes the flow with this key. Rejects ENOENT when absent. */
export async function deleteFlow(conn: OdpConnection, dp: number, key: FlowKey): Promise<void> {
  await conn.request({
    family: 'flow',
    cmd: OVS_CMD_DEL,
    dpIfindex: dp,
    attrs: new AttributeWriter().bytes(OVS_FLOW_ATTR_KEY, encodeFlowKey(key)),
    subject: { what: describe(dp, key), action: 'delete' },
  });
}

/** Deletes every flow of the datapath (FLOW DEL without a key; spec §6.1 "deletes all flows"). */
export async function deleteAllFlows(conn: OdpConnection, dp: number): Promise<void> {
  await conn.request({ family: 'flow', cmd: OVS_CMD_DEL, dpIfindex: dp, subject: { what: `flows of datapath ${dp}`, action: 'flush' } });
}

/** Every flow of the datapath, with keys, masks, actions and statistics. */
export async function listFlows(conn: OdpConnection, dp: number): Promise<Flow[]> {
  const replies = await conn.request({ family: 'flow', cmd: OVS_CMD_GET, dpIfindex: dp, flags: NLM_F_DUMP, subject: { what: `flows of datapath ${dp}`, action: 'list' } });
  return replies.map(decodeFlow);
}

/** Zeroes a flow's packet/byte counters and USED time (spec §6.5 expiry: FLOW SET with CLEAR). */
export async function clearFlowStats(conn: OdpConnection, dp: number, spec: FlowSpec): Promise<void> {
  await conn.request({
    family: 'flow',
    cmd: OVS_CMD_SET,
    dpIfindex: dp,
    attrs: encodeFlowAttrs(spec).flag(OVS_FLOW_ATTR_CLEAR),
    subject: { what: describe(dp, spec.key), action: 'clear statistics of' },
  });
}
