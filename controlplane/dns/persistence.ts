// The names this router owns, kept in the state dir so they survive a router
// restart (Weave 2.8 kept them in its database for the same reason): without
// them a restarted router tombstones every copy of its names that other peers
// still gossip (wire spec §9.3 step 3), and names given with `weave attach -h`
// or `weave dns-add` are gone on every host. The only nameserver module that
// touches the filesystem. Writes go to a temp file renamed over the old one,
// so a crash leaves either the old or the new list.
import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import type { PeerName } from '../mesh/types.js';
import { formatPeerName } from '../mesh/wire/peer-name.js';
import { formatIPv4, parseIPv4 } from './address.js';
import type { Entry } from './entries.js';

const FORMAT = 'weave-dns-entries/1';
export const DNS_ENTRIES_FILE = 'dns-entries.json';

/** Where the nameserver saves its own entries after every change. */
export interface DnsEntryStore {
  save(entries: readonly Entry[]): void;
}

/** The file is damaged: names the file and what the router did about it. */
export class DnsEntriesFileError extends Error {
  constructor(readonly path: string, problem: string) {
    super(`${path}: ${problem} (DNS names registered on this host before the restart are not restored; the file is kept as ${path}.damaged)`);
    this.name = 'DnsEntriesFileError';
  }
}

function field<T>(o: Record<string, unknown>, key: string, ok: (v: unknown) => v is T, what: string): T {
  const v = o[key];
  if (!ok(v)) throw new Error(`${key} is not ${what}`);
  return v;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses the file's text into our entries; throws plain Errors describing the problem. */
export function parseDnsEntries(text: string, ourName: PeerName): Entry[] {
  const top = JSON.parse(text) as unknown;
  if (typeof top !== 'object' || top === null || Array.isArray(top)) throw new Error('the file is not a JSON object');
  const o = top as Record<string, unknown>;
  if (o.format !== FORMAT) throw new Error(`unknown format ${JSON.stringify(o.format)} (expected ${FORMAT})`);
  // Entries saved under another peer name belong to an identity this router no longer has.
  if (o.peerName !== formatPeerName(ourName)) return [];
  if (!Array.isArray(o.entries)) throw new Error('entries is not a list');
  return o.entries.map((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null) throw new Error(`entries[${i}] is not an object`);
    const e = raw as Record<string, unknown>;
    const addr = parseIPv4(field(e, 'addr', isString, 'an IPv4 address'));
    if (addr === undefined) throw new Error(`entries[${i}].addr is not an IPv4 address`);
    return {
      hostname: field(e, 'hostname', isString, 'a string'),
      containerId: field(e, 'containerId', isString, 'a string'),
      origin: ourName,
      addr,
      version: field(e, 'version', isCount, 'a count'),
      tombstone: field(e, 'tombstone', isCount, 'a unix time or 0'),
    };
  });
}

export function serialiseDnsEntries(ourName: PeerName, entries: readonly Entry[]): string {
  return JSON.stringify({
    format: FORMAT,
    peerName: formatPeerName(ourName),
    entries: entries.map((e) => ({ hostname: e.hostname, containerId: e.containerId, addr: formatIPv4(e.addr), version: e.version, tombstone: e.tombstone })),
  }) + '\n';
}

export class FileDnsEntryStore implements DnsEntryStore {
  readonly path: string;

  constructor(stateDir: string, private readonly ourName: PeerName) {
    this.path = join(stateDir, DNS_ENTRIES_FILE);
  }

  /**
   * Our saved entries; none when there is no file. A damaged file is moved
   * aside and reported with a DnsEntriesFileError (the router carries on).
   */
  load(): Entry[] {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new DnsEntriesFileError(this.path, `cannot be read: ${(err as Error).message}`);
    }
    try {
      return parseDnsEntries(text, this.ourName);
    } catch (err) {
      renameSync(this.path, `${this.path}.damaged`);
      throw new DnsEntriesFileError(this.path, err instanceof SyntaxError ? `not valid JSON (${err.message})` : (err as Error).message);
    }
  }

  save(entries: readonly Entry[]): void {
    // Not durable: saved on every name change (fsync would slow registration
    // under churn), and a power loss takes the named containers with it.
    writeFileAtomic(this.path, serialiseDnsEntries(this.ourName, entries), { durable: false });
  }
}
