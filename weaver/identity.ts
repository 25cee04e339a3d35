// The local peer's identity (wire spec §1.6): the name is chosen once and
// persisted in the state directory, so a restarted router rejoins under the
// same name; the UID and short id are new on every start.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { PeerIdentity, PeerName } from '../controlplane/mesh/types.js';
import type { StatePaths } from '../controlplane/cli/state-paths.js';
import { formatPeerName, parsePeerName, randomPeerName } from './peer-name.js';

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
  const tmp = `${paths.peerNameFile}.tmp`;
  writeFileSync(tmp, formatPeerName(name) + '\n');
  renameSync(tmp, paths.peerNameFile);
}

/** --name wins, else the persisted name, else a new random one; the result is persisted. */
export function resolvePeerName(paths: StatePaths, override: PeerName | undefined): PeerName {
  const name = override ?? readPersistedName(paths) ?? randomPeerName();
  persistName(paths, name);
  return name;
}

/** Random non-zero u64 (0 is reserved for placeholder peers, wire spec §1.6). */
export function randomUid(): bigint {
  for (;;) {
    const v = randomBytes(8).readBigUInt64BE();
    if (v !== 0n) return v;
  }
}

export function createIdentity(name: PeerName, nickName: string): PeerIdentity {
  return { name, nickName, uid: randomUid(), shortId: randomBytes(2).readUInt16BE() & 0xfff };
}
