// Flow actions (OVS_ACTION_ATTR_*, spec §6.5-6.7): output to a vport,
// set(tunnel) before output to a vxlan vport, and userspace (send to a
// netlink port). Actions run in list order.

import { AttributeWriter, parseAttributes, type Attributes } from '../netlink/index.js';
import {
  OVS_ACTION_ATTR_OUTPUT,
  OVS_ACTION_ATTR_SET,
  OVS_ACTION_ATTR_USERSPACE,
  OVS_KEY_ATTR_TUNNEL,
  OVS_TUNNEL_KEY_ATTR_IPV4_DST,
  OVS_USERSPACE_ATTR_PID,
  OVS_USERSPACE_ATTR_USERDATA,
} from './constants.js';
import { MalformedOdpError } from './errors.js';
import { decodeTunnelKey, writeTunnelKey, type TunnelKey } from './flow-key.js';

export type FlowAction =
  | { type: 'output'; port: number }
  | { type: 'set-tunnel'; tunnel: TunnelKey }
  | { type: 'userspace'; pid: number; userdata?: Buffer }
  /** Any action this module does not model, kept as raw bytes. */
  | { type: 'other'; attrType: number; value: Buffer };

export const output = (port: number): FlowAction => ({ type: 'output', port });
export const setTunnel = (tunnel: TunnelKey): FlowAction => ({ type: 'set-tunnel', tunnel });
export const userspace = (pid: number, userdata?: Buffer): FlowAction => ({ type: 'userspace', pid, ...(userdata ? { userdata } : {}) });

/** Encodes actions as the contents of OVS_FLOW_ATTR_ACTIONS / OVS_PACKET_ATTR_ACTIONS. */
export function encodeActions(actions: readonly FlowAction[]): Buffer {
  const w = new AttributeWriter();
  for (const a of actions) {
    switch (a.type) {
      case 'output':
        w.u32(OVS_ACTION_ATTR_OUTPUT, a.port);
        break;
      case 'set-tunnel':
        // spec §6.6: SET holds exactly one key attribute, here KEY_ATTR_TUNNEL.
        w.nestedNoFlag(OVS_ACTION_ATTR_SET, (set) => set.nestedNoFlag(OVS_KEY_ATTR_TUNNEL, (t) => writeTunnelKey(t, a.tunnel)));
        break;
      case 'userspace':
        w.nestedNoFlag(OVS_ACTION_ATTR_USERSPACE, (u) => {
          u.u32(OVS_USERSPACE_ATTR_PID, a.pid);
          if (a.userdata) u.bytes(OVS_USERSPACE_ATTR_USERDATA, a.userdata);
        });
        break;
      case 'other':
        w.bytes(a.attrType, a.value);
        break;
    }
  }
  return w.build();
}

function parse(bytes: Uint8Array, what: string): Attributes {
  try {
    return parseAttributes(bytes);
  } catch (e) {
    throw new MalformedOdpError(`${what}: ${(e as Error).message}`);
  }
}

function decodeSet(value: Buffer): FlowAction {
  const inner = parse(value, 'action SET');
  if (inner.list.length > 1 && inner.list.some((a) => a.type === OVS_TUNNEL_KEY_ATTR_IPV4_DST && a.value.length === 4)) {
    // spec §6.7: Linux 4.3 dumps SET(TUNNEL) without the inner TUNNEL level;
    // its tunnel attributes then sit directly in SET, IPV4_DST among them.
    return { type: 'set-tunnel', tunnel: decodeTunnelKey(inner) };
  }
  if (inner.list.length !== 1) throw new MalformedOdpError(`action SET holds ${inner.list.length} key attributes, expected exactly 1`);
  const key = inner.list[0];
  if (key.type === OVS_KEY_ATTR_TUNNEL) return { type: 'set-tunnel', tunnel: decodeTunnelKey(parse(key.value, 'action SET(TUNNEL)')) };
  return { type: 'other', attrType: OVS_ACTION_ATTR_SET, value: Buffer.from(value) };
}

/** Decodes the contents of an ACTIONS attribute; throws MalformedOdpError on a bad layout. */
export function decodeActions(bytes: Uint8Array): FlowAction[] {
  const out: FlowAction[] = [];
  for (const a of parse(bytes, 'actions').list) {
    switch (a.type) {
      case OVS_ACTION_ATTR_OUTPUT:
        if (a.value.length !== 4) throw new MalformedOdpError(`action OUTPUT has ${a.value.length} bytes, expected 4`);
        out.push({ type: 'output', port: a.value.readUInt32LE(0) });
        break;
      case OVS_ACTION_ATTR_SET:
        out.push(decodeSet(a.value));
        break;
      case OVS_ACTION_ATTR_USERSPACE: {
        const u = parse(a.value, 'action USERSPACE');
        const pid = u.get(OVS_USERSPACE_ATTR_PID);
        if (pid === undefined || pid.value.length !== 4) throw new MalformedOdpError('action USERSPACE lacks a 4-byte PID');
        const userdata = u.bytes(OVS_USERSPACE_ATTR_USERDATA);
        out.push({ type: 'userspace', pid: pid.value.readUInt32LE(0), ...(userdata ? { userdata: Buffer.from(userdata) } : {}) });
        break;
      }
      default:
        out.push({ type: 'other', attrType: a.type, value: Buffer.from(a.value) });
    }
  }
  return out;
}
