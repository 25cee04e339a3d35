// The local peer's identity (wire spec §1.6): the name is chosen once and
// persisted in the state directory, so a restarted router rejoins under the
// same name; the UID is new on every start. The short id (spec §4.8) is kept
// across restarts when the state directory has one saved for this name, so
// fastdp peers' kernel state (VNIs carry short ids, spec §6.2) stays valid. A
// kept id is only a claim like a random one: if another peer holds it with a
// lower name, the collision rule reassigns ours as usual.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../controlplane/atomic-file.js';
import type { PeerIdentity, PeerName } from '../controlplane/mesh/types.js';
import { statePaths, type StatePaths } from '../controlplane/cli/state-paths.js';
import { formatPeerName } from '../controlplane/mesh/wire/peer-name.js';
import { parsePeerName, randomPeerName } from './peer-name.js';

function readPersistedName(paths: StatePaths): PeerName | undefined {
  let text: string;
  try {
    text = readFileSync(paths.peerNameFile, 'utf8').trim();
  } catch {
    return undefined;
  }
  try {
    return parsePeerName(text);
  } catch (err) {
    throw new Error(`${paths.peerNameFile}: ${(err as Error).message} (delete the file to pick a new name)`);
  }
}

function persistName(paths: StatePaths, name: PeerName): void {
  mkdirSync(paths.dir, { recursive: true });
  // Durable: IPAM's ranges are owned by this name, so it must outlive a reboot; written once.
  writeFileAtomic(paths.peerNameFile, formatPeerName(name) + '\n', { durable: true });
}

/** --name wins, else the persisted name, else a new random one; the result is persisted. */
export function resolvePeerName(paths: StatePaths, override: PeerName | undefined): PeerName {
  const persisted = readPersistedName(paths);
  const name = override ?? persisted ?? randomPeerName();
  // A restart with the same name writes nothing: the durable write is an fsync on the startup path.
  if (name !== persisted) persistName(paths, name);
  return name;
}

/** Random non-zero u64 (0 is reserved for placeholder peers, wire spec §1.6). */
export function randomUid(): bigint {
  for (;;) {
    const v = randomBytes(8).readBigUInt64BE();
    if (v !== 0n) return v;
  }
}

/** A random 12-bit short id (spec §4.8). */
export function randomShortId(): number {
  return randomBytes(2).readUInt16BE() & 0xfff;
}

/** Where the short id is kept: `<state dir>/short-id`, holding `<peer name> <short id>`. */
export function shortIdFile(paths: Pick<StatePaths, 'dir'>): string {
  return statePaths(paths.dir).shortIdFile;
}

/**
 * The short id saved for `name`, or undefined when there is none, it was saved
 * under another name (a new identity starts afresh) or the file is not ours.
 */
export function readPersistedShortId(paths: Pick<StatePaths, 'dir'>, name: PeerName): number | undefined {
  let text: string;
  try {
    text = readFileSync(shortIdFile(paths), 'utf8').trim();
  } catch {
    return undefined;
  }
  const m = /^(\S+) (\d{1,4})$/.exec(text);
  if (!m) return undefined;
  let saved: PeerName;
  try {
    saved = parsePeerName(m[1] as string);
  } catch {
    return undefined;
  }
  const id = Number(m[2]);
  return saved === name && id <= 0xfff ? id : undefined;
}

/** Saves our short id (at start, and whenever the collision rule reassigns it, spec §4.8). */
export function persistShortId(paths: Pick<StatePaths, 'dir'>, name: PeerName, shortId: number): void {
  if (!Number.isInteger(shortId) || shortId < 0 || shortId > 0xfff) throw new RangeError(`short id ${shortId} is not a 12-bit value (spec §4.8)`);
  mkdirSync(paths.dir, { recursive: true });
  const file = shortIdFile(paths);
  // Durable: rarely rewritten, and peers keep the short id in their forwarding state.
  writeFileAtomic(file, `${formatPeerName(name)} ${shortId}\n`, { durable: true });
}

/**
 * Our identity for this run. With `paths`, the short id saved there for this
 * name is reused (else a random one) and the result is saved.
 */
export function createIdentity(name: PeerName, nickName: string, paths?: Pick<StatePaths, 'dir'>): PeerIdentity {
  const shortId = (paths ? readPersistedShortId(paths, name) : undefined) ?? randomShortId();
  if (paths) persistShortId(paths, name, shortId);
  return { name, nickName, uid: randomUid(), shortId };
}
