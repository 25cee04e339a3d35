// The IPAM data file in the state dir (spec §8.8; architecture: kill -9 loses
// nothing acknowledged). The only IPAM module that touches the filesystem.
// Writes go to a temp file, are fsynced, renamed over the old file, and the
// directory is fsynced, so a crash leaves either the old or the new state.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import type { IpamStore, PersistedIpam } from './store.js';
import type { RingEntry } from './ring.js';
import { formatPeerName } from '../mesh/wire/peer-name.js';

const FORMAT = 'weave-ipam-data/1';
export const IPAM_DATA_FILE = 'ipam.json';

export class IpamDataFileError extends Error {
  constructor(readonly path: string, problem: string) {
    super(`${path}: ${problem} (the IPAM data file is unreadable; remove it or run 'weave reset' to start with fresh IPAM state)`);
    this.name = 'IpamDataFileError';
  }
}

function parsePeerName(text: unknown, what: string): bigint {
  if (typeof text !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(text)) throw new Error(`${what} is not a peer name`);
  return BigInt('0x' + text.replaceAll(':', ''));
}

function num(v: unknown, what: string, max = 2 ** 32): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new Error(`${what} is not a valid number`);
  return v;
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`${what} is not a list`);
  return v;
}

export function serialiseIpam(state: PersistedIpam): string {
  return JSON.stringify({
    format: FORMAT,
    peerName: formatPeerName(state.peerName),
    range: state.range,
    ring: state.ring && {
      start: state.ring.start,
      end: state.ring.end,
      entries: state.ring.entries.map((e) => ({ token: e.token, peer: formatPeerName(e.peer), version: e.version, free: e.free })),
      seeds: state.ring.seeds.map(formatPeerName),
    },
    allocations: state.allocations,
  }) + '\n';
}

/** Parse the data file's text; throws plain Errors describing the problem. */
export function parseIpam(text: string): PersistedIpam {
  const top = obj(JSON.parse(text) as unknown, 'the file');
  if (top.format !== FORMAT) throw new Error(`unknown format ${JSON.stringify(top.format)} (expected ${FORMAT})`);
  const peerName = parsePeerName(top.peerName, 'peerName');
  const r = obj(top.range, 'range');
  const state: PersistedIpam = {
    peerName,
    range: { start: num(r.start, 'range.start'), end: num(r.end, 'range.end') },
    allocations: list(top.allocations, 'allocations').map((a, i) => {
      const o = obj(a, `allocations[${i}]`);
      if (typeof o.ident !== 'string') throw new Error(`allocations[${i}].ident is not a string`);
      return {
        ident: o.ident,
        addrs: list(o.addrs, `allocations[${i}].addrs`).map((c, k) => {
          const co = obj(c, `allocations[${i}].addrs[${k}]`);
          return { addr: num(co.addr, 'addr', 2 ** 32 - 1), prefixLen: num(co.prefixLen, 'prefixLen', 32) };
        }),
      };
    }),
  };
  if (top.ring !== undefined) {
    const ring = obj(top.ring, 'ring');
    state.ring = {
      start: num(ring.start, 'ring.start'),
      end: num(ring.end, 'ring.end'),
      peer: peerName,
      entries: list(ring.entries, 'ring.entries').map((e, i): RingEntry => {
        const eo = obj(e, `ring.entries[${i}]`);
        return {
          token: num(eo.token, 'token'), peer: parsePeerName(eo.peer, 'entry peer'),
          version: num(eo.version, 'version'), free: num(eo.free, 'free'),
        };
      }),
      seeds: list(ring.seeds, 'ring.seeds').map((s) => parsePeerName(s, 'seed')),
    };
  }
  return state;
}

/** IPAM state in `<stateDir>/ipam.json`. */
export class FileIpamStore implements IpamStore {
  readonly location: string;

  constructor(stateDir: string, fileName = IPAM_DATA_FILE) {
    this.location = join(stateDir, fileName);
  }

  load(): PersistedIpam | undefined {
    if (!existsSync(this.location)) return undefined;
    let text: string;
    try {
      text = readFileSync(this.location, 'utf8');
    } catch (err) {
      throw new IpamDataFileError(this.location, `cannot read: ${(err as Error).message}`);
    }
    try {
      return parseIpam(text);
    } catch (err) {
      throw new IpamDataFileError(this.location, `corrupt data: ${(err as Error).message}`);
    }
  }

  save(state: PersistedIpam): void {
    // Durable: an address is acknowledged only once this returns (the
    // allocator's group commit), so it must survive a power loss too.
    writeFileAtomic(this.location, serialiseIpam(state), { durable: true, mode: 0o600 });
  }
}
