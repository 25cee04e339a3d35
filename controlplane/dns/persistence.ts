// The names this router owns, kept in the state dir so they survive a router
// restart (Weave 2.8 kept them in its database for the same reason): without
// them a restarted router tombstones every copy of its names that other peers
// still gossip (wire spec §9.3 step 3), and names given with `weave attach -h`
// or `weave dns-add` are gone on every host. The only nameserver module that
// touches the filesystem.
//
// Two files: a snapshot of every entry we own (`dns-entries.json`, replaced
// whole by a temp file renamed over it) and a journal of the entries changed
// since (`dns-entries.journal`, one JSON line appended per change). A change
// costs one append, not a rewrite of a table that holds an hour of tombstones
// under churn; once the journal is longer than the snapshot, both are
// rewritten. Both name the snapshot's generation, and a journal of another
// generation (a crash between the two rewrites) is already in the snapshot.
// Replaying a line merges it by the gossip rules (higher version wins, every
// change to our entries raises it), so the result does not depend on order.
import { appendFileSync, readFileSync, renameSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import type { PeerName } from '../mesh/types.js';
import { formatPeerName } from '../mesh/wire/peer-name.js';
import { formatIPv4, parseIPv4 } from './address.js';
import { mergeEntryLists, type Entry } from './entries.js';

const FORMAT = 'weave-dns-entries/1';
const JOURNAL_FORMAT = 'weave-dns-journal/1';
export const DNS_ENTRIES_FILE = 'dns-entries.json';
export const DNS_JOURNAL_FILE = 'dns-entries.journal';
/** The journal is compacted once it has more lines than this or than the snapshot has entries. */
export const JOURNAL_MIN_LINES = 1024;

/** Where the nameserver keeps its own entries. */
export interface DnsEntryStore {
  /**
   * Our entries in `changed` have these new versions. `owned` gives every
   * entry we own, for when the store rewrites its whole copy.
   */
  record(changed: readonly Entry[], owned: () => readonly Entry[]): void;
  /** Every entry we own is `entries` (after a restore, or a purge that removed some). */
  save(entries: readonly Entry[]): void;
}

/** The file is damaged: names the file and what the router did about it. */
export class DnsEntriesFileError extends Error {
  constructor(readonly path: string, problem: string,
    consequence = 'DNS names registered on this host before the restart are not restored', movedAside = true) {
    super(`${path}: ${problem} (${consequence}${movedAside ? `; the file is kept as ${path}.damaged` : ''})`);
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

function parseObject(raw: unknown, what: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${what} is not a JSON object`);
  return raw as Record<string, unknown>;
}

function parseEntry(raw: unknown, what: string, ourName: PeerName): Entry {
  const e = parseObject(raw, what);
  const addr = parseIPv4(field(e, 'addr', isString, 'an IPv4 address'));
  if (addr === undefined) throw new Error(`${what}.addr is not an IPv4 address`);
  return {
    hostname: field(e, 'hostname', isString, 'a string'),
    containerId: field(e, 'containerId', isString, 'a string'),
    origin: ourName,
    addr,
    version: field(e, 'version', isCount, 'a count'),
    tombstone: field(e, 'tombstone', isCount, 'a unix time or 0'),
  };
}

function entryJson(e: Entry): string {
  return JSON.stringify({ hostname: e.hostname, containerId: e.containerId, addr: formatIPv4(e.addr), version: e.version, tombstone: e.tombstone });
}

/** A snapshot file: our entries, and the generation a journal must name to apply on top. */
export interface DnsSnapshot {
  entries: Entry[];
  /** '' in files written before there was a journal. */
  generation: string;
}

/** Parses the snapshot's text; throws plain Errors describing the problem. */
export function parseDnsSnapshot(text: string, ourName: PeerName): DnsSnapshot {
  const o = parseObject(JSON.parse(text) as unknown, 'the file');
  if (o.format !== FORMAT) throw new Error(`unknown format ${JSON.stringify(o.format)} (expected ${FORMAT})`);
  const generation = o.generation === undefined ? '' : field(o, 'generation', isString, 'a string');
  // Entries saved under another peer name belong to an identity this router no longer has.
  if (o.peerName !== formatPeerName(ourName)) return { entries: [], generation };
  if (!Array.isArray(o.entries)) throw new Error('entries is not a list');
  return { entries: o.entries.map((raw: unknown, i) => parseEntry(raw, `entries[${i}]`, ourName)), generation };
}

/** Parses the snapshot's text into our entries; throws plain Errors describing the problem. */
export function parseDnsEntries(text: string, ourName: PeerName): Entry[] {
  return parseDnsSnapshot(text, ourName).entries;
}

export function serialiseDnsEntries(ourName: PeerName, entries: readonly Entry[], generation = ''): string {
  return `{"format":${JSON.stringify(FORMAT)},"peerName":${JSON.stringify(formatPeerName(ourName))},`
    + `${generation === '' ? '' : `"generation":${JSON.stringify(generation)},`}"entries":[${entries.map(entryJson).join(',')}]}\n`;
}

/** A journal: the generation it belongs to and its entries in the order written. */
export interface DnsJournal {
  generation: string;
  entries: Entry[];
  /** The line that could not be read, if any (1-based); the entries are those before it. */
  damagedLine?: number;
  /** The text ends in a line without its newline (dropped): appending after it would damage the next line. */
  torn: boolean;
  problem?: string;
}

/**
 * Parses a journal's text. A last line without its newline is an append cut
 * short (a power loss): dropped. Any other bad line stops the replay there.
 */
export function parseDnsJournal(text: string, ourName: PeerName): DnsJournal {
  const lines = text.split('\n');
  const torn = lines.pop() !== ''; // '' after the final newline, or an append cut short
  if (lines.length === 0) throw new Error('the journal has no header line');
  const head = parseObject(JSON.parse(lines[0]!) as unknown, 'the header');
  if (head.format !== JOURNAL_FORMAT) throw new Error(`unknown format ${JSON.stringify(head.format)} (expected ${JOURNAL_FORMAT})`);
  const generation = field(head, 'generation', isString, 'a string');
  if (head.peerName !== formatPeerName(ourName)) return { generation, entries: [], torn };
  const entries: Entry[] = [];
  for (let i = 1; i < lines.length; i++) {
    try {
      entries.push(parseEntry(JSON.parse(lines[i]!) as unknown, `line ${i + 1}`, ourName));
    } catch (err) {
      return { generation, entries, damagedLine: i + 1, problem: (err as Error).message, torn };
    }
  }
  return { generation, entries, torn };
}

function journalHeader(ourName: PeerName, generation: string): string {
  return `{"format":${JSON.stringify(JOURNAL_FORMAT)},"peerName":${JSON.stringify(formatPeerName(ourName))},"generation":${JSON.stringify(generation)}}\n`;
}

export class FileDnsEntryStore implements DnsEntryStore {
  readonly path: string;
  readonly journalPath: string;
  /** Lines in the journal of the snapshot's generation; undefined while there is none (the next change writes both). */
  private journalLines: number | undefined;
  /** Entries in the last snapshot written or read. */
  private snapshotSize = 0;

  constructor(stateDir: string, private readonly ourName: PeerName) {
    this.path = join(stateDir, DNS_ENTRIES_FILE);
    this.journalPath = join(stateDir, DNS_JOURNAL_FILE);
  }

  /** A file that would not parse is kept as `<path>.damaged` for its owner to look at; the error says why. */
  private moveAside(path: string, parseError: unknown): DnsEntriesFileError {
    renameSync(path, `${path}.damaged`);
    const problem = parseError instanceof SyntaxError ? `not valid JSON (${parseError.message})` : (parseError as Error).message;
    return new DnsEntriesFileError(path, problem);
  }

  /**
   * Our saved entries, the journal's changes merged in; none when there is no
   * file. A damaged snapshot is moved aside and reported with a
   * DnsEntriesFileError (the router carries on without the saved names). A
   * damaged journal line is passed to `report`: the lines before it count,
   * the journal is kept as `.damaged`.
   */
  load(report: (problem: DnsEntriesFileError) => void = () => {}): Entry[] {
    const text = this.read(this.path);
    if (text === undefined) return [];
    let snapshot: DnsSnapshot;
    try {
      snapshot = parseDnsSnapshot(text, this.ourName);
    } catch (err) {
      throw this.moveAside(this.path, err);
    }
    this.snapshotSize = snapshot.entries.length;
    const journal = this.loadJournal(report);
    if (!journal || journal.generation !== snapshot.generation || snapshot.generation === '') return snapshot.entries;
    // Appends continue only after a clean last line; otherwise the next change rewrites both files.
    if (journal.damagedLine === undefined && !journal.torn) this.journalLines = journal.entries.length;
    return mergeEntryLists(snapshot.entries, journal.entries);
  }

  record(changed: readonly Entry[], owned: () => readonly Entry[]): void {
    if (changed.length === 0) return;
    if (this.journalLines === undefined || this.journalLines + changed.length > Math.max(JOURNAL_MIN_LINES, this.snapshotSize)) {
      this.save(owned());
      return;
    }
    // Not durable, as the snapshot: no fsync per change (it would slow
    // registration under churn), and a power loss takes the named containers with it.
    appendFileSync(this.journalPath, changed.map((e) => `${entryJson(e)}\n`).join(''));
    this.journalLines += changed.length;
  }

  save(entries: readonly Entry[]): void {
    const generation = randomBytes(8).toString('hex');
    // Snapshot first: until the new journal replaces the old one, the old one names the old generation and is skipped.
    writeFileAtomic(this.path, serialiseDnsEntries(this.ourName, entries, generation), { durable: false });
    writeFileAtomic(this.journalPath, journalHeader(this.ourName, generation), { durable: false });
    this.journalLines = 0;
    this.snapshotSize = entries.length;
  }

  private read(path: string): string | undefined {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new DnsEntriesFileError(path, `cannot be read: ${(err as Error).message}`, undefined, false);
    }
  }

  private loadJournal(report: (problem: DnsEntriesFileError) => void): DnsJournal | undefined {
    let text: string | undefined;
    try {
      text = this.read(this.journalPath);
    } catch (err) {
      report(err as DnsEntriesFileError);
      return undefined;
    }
    if (text === undefined) return undefined;
    let journal: DnsJournal;
    try {
      journal = parseDnsJournal(text, this.ourName);
    } catch (err) {
      report(this.moveAside(this.journalPath, err));
      return undefined;
    }
    if (journal.damagedLine !== undefined) {
      renameSync(this.journalPath, `${this.journalPath}.damaged`);
      report(new DnsEntriesFileError(this.journalPath, `line ${journal.damagedLine}: ${journal.problem}`, 'only the changes before it are restored'));
    }
    return journal;
  }
}
