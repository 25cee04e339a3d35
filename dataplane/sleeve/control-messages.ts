// Sleeve control messages carried over the TCP control connection (spec §2.4,
// §5.5): `subTag | payload`. Wrapping in tag 7 + overlay index (or sending
// unwrapped to legacy peers) is the overlay switch's job.
import { SleeveControlTag } from './constants.js';
import { SleeveDecodeError } from './frame-codec.js';

export type SleeveControlMessage =
  | { type: 'ConnectionEstablished' }
  | { type: 'FragmentationReceived' }
  | { type: 'PMTUVerified'; mtu: number };

export function encodeSleeveControl(msg: SleeveControlMessage): Uint8Array {
  switch (msg.type) {
    case 'ConnectionEstablished': return Uint8Array.of(SleeveControlTag.ConnectionEstablished);
    case 'FragmentationReceived': return Uint8Array.of(SleeveControlTag.FragmentationReceived);
    case 'PMTUVerified':
      if (!Number.isInteger(msg.mtu) || msg.mtu < 0 || msg.mtu > 0xffff) {
        throw new RangeError(`sleeve control: PMTUVerified MTU ${msg.mtu} is not a u16`);
      }
      return Uint8Array.of(SleeveControlTag.PMTUVerified, msg.mtu >> 8, msg.mtu & 0xff);
  }
}

/** Decodes `subTag | payload`; throws SleeveDecodeError for unknown tags or a short PMTUVerified. */
export function decodeSleeveControl(bytes: Uint8Array): SleeveControlMessage {
  const tag = bytes[0];
  switch (tag) {
    case SleeveControlTag.ConnectionEstablished: return { type: 'ConnectionEstablished' };
    case SleeveControlTag.FragmentationReceived: return { type: 'FragmentationReceived' };
    case SleeveControlTag.PMTUVerified:
      if (bytes.length < 3) {
        throw new SleeveDecodeError('control-too-short', `PMTUVerified needs a u16 MTU, got ${bytes.length - 1} byte(s)`);
      }
      return { type: 'PMTUVerified', mtu: (bytes[1]! << 8) | bytes[2]! };
    case undefined:
      throw new SleeveDecodeError('control-too-short', 'empty sleeve control message');
    default:
      throw new SleeveDecodeError('unknown-control-tag', `unknown sleeve control sub-tag ${tag}`);
  }
}
