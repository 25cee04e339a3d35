// Peer names as `--name` and the state file give them, `mac` flavour (wire spec
// §1.6): parsing accepts IPv6-like `::` abbreviations of zero runs and refuses
// the all-zero name; formatting is controlplane/mesh/wire/peer-name.ts's.
import { randomBytes } from 'node:crypto';
import type { PeerName } from '../controlplane/mesh/types.js';

/** Parse a peer name; throws naming the bad input and the expected form. */
export function parsePeerName(text: string): PeerName {
  const bad = (): Error =>
    new Error(`invalid peer name "${text}": expected six hex bytes like 0a:1b:2c:3d:4e:5f (or a :: abbreviation like ::1)`);
  const halves = text.split('::');
  if (halves.length > 2) throw bad();
  const part = (s: string): string[] => (s === '' ? [] : s.split(':'));
  let elems: string[];
  if (halves.length === 2) {
    const left = part(halves[0]);
    const right = part(halves[1]);
    const missing = 6 - left.length - right.length;
    if (missing < 1) throw bad();
    elems = [...left, ...Array<string>(missing).fill('0'), ...right];
  } else {
    elems = part(text);
  }
  if (elems.length !== 6 || !elems.every((e) => /^[0-9a-fA-F]{1,2}$/.test(e))) throw bad();
  const value = elems.reduce((acc, e) => (acc << 8n) | BigInt(parseInt(e, 16)), 0n);
  if (value === 0n) throw new Error(`invalid peer name "${text}": the all-zero name is reserved (wire spec §1.6)`);
  return value;
}

/** A random locally administered unicast MAC-style name. */
export function randomPeerName(): PeerName {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfe) | 0x02;
  return BigInt('0x' + b.toString('hex'));
}
