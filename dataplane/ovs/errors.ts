// Readable errors for ODP calls: the kernel answers bare errnos, so each call
// says which object it was about and what the errno means for it.

import { MalformedAttributeError, NetlinkError, isNetlinkError } from '../netlink/index.js';

/** Thrown by the ODP decoders for attributes that do not have the layout openvswitch.h gives them. */
export class MalformedOdpError extends Error {
  constructor(message: string) {
    super(`malformed ODP attribute: ${message}`);
    this.name = 'MalformedOdpError';
  }
}

/** Words for one ODP call: the object and what we were doing to it. */
export interface OdpSubject {
  /** e.g. `datapath "weave"`, `vport "vxlan-6784" in datapath 7`. */
  what: string;
  /** e.g. `create`, `delete`, `get`. */
  action: string;
}

/**
 * Rewrites a kernel error so it names the object: `EEXIST: datapath "weave" exists`,
 * `ENODEV: datapath "weave" does not exist (get)`. Other errors keep the action.
 */
export function describeOdpError(err: unknown, subject: OdpSubject): unknown {
  if (err instanceof MalformedAttributeError) return new MalformedOdpError(`${subject.action} ${subject.what}: ${err.message}`);
  if (!isNetlinkError(err)) return err;
  let text: string;
  switch (err.code) {
    case 'EEXIST':
      text = `${subject.what} exists`;
      break;
    case 'ENODEV':
    case 'ENOENT':
      text = `${subject.what} does not exist (${subject.action})`;
      break;
    case 'EAFNOSUPPORT':
      text = `${subject.action} ${subject.what}: the kernel's openvswitch lacks this tunnel type (modprobe vport_vxlan)`;
      break;
    case 'EADDRINUSE':
      text = `${subject.action} ${subject.what}: its UDP port is in use by another socket or vport`;
      break;
    case 'EBUSY':
      text = `${subject.action} ${subject.what}: the device already belongs to a datapath or bridge`;
      break;
    default:
      text = `${subject.action} ${subject.what}`;
  }
  return err.withOperation(text);
}

/** True when ODP refused to create something that exists (a flow with the same key, say). */
export function isOdpExists(err: unknown): err is NetlinkError {
  return isNetlinkError(err, 'EEXIST');
}

/** True for the errnos ODP uses for "no such datapath/vport/flow" (ENODEV and ENOENT). */
export function isOdpNotFound(err: unknown): err is NetlinkError {
  return isNetlinkError(err, 'ENODEV') || isNetlinkError(err, 'ENOENT');
}
