// kill -9 at random points while IPAM writes its data file: every allocation
// the child acknowledged (printed after allocate() resolved, i.e. after the
// file was synced) must be in the file the next start reads, and the file must
// never be corrupt. Used by test/unit/ipam-crash.test.ts (a few iterations)
// and bench/ipam-crash-bench.ts (a thousand).
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Allocator, FileIpamStore, formatCIDR, gobStreamCodec, parseCIDR, type PeerName,
} from '../../controlplane/ipam/index.js';

const PEER: PeerName = 0x0a0000000001n;
const ipamModule = join(dirname(fileURLToPath(import.meta.url)), '../../controlplane/ipam/index.js');

export function crashTestAllocator(dir: string): Allocator {
  return new Allocator({
    name: PEER, uid: 1n, nickname: 'h', universe: parseCIDR('10.32.0.0/12'), init: { mode: 'seed', seeds: [PEER] },
    isKnownPeer: () => true, codec: gobStreamCodec, store: new FileIpamStore(dir),
  });
}

/** A child that restores the state in `dir`, then allocates `<prefix><n>` without pause, printing each acknowledged address. */
function childScript(dir: string, prefix: string): string {
  return `
    const m = await import(${JSON.stringify(ipamModule)});
    const a = new m.Allocator({ name: ${PEER}n, uid: 1n, nickname: 'h', universe: m.parseCIDR('10.32.0.0/12'),
      init: { mode: 'seed', seeds: [${PEER}n] }, isKnownPeer: () => true, codec: m.gobStreamCodec,
      store: new m.FileIpamStore(${JSON.stringify(dir)}) });
    process.stdout.write('ready\\n');
    for (let i = 0; ; i++) { const c = await a.allocate(${JSON.stringify(prefix)} + i); process.stdout.write(${JSON.stringify(prefix)} + i + ' ' + m.formatCIDR(c) + '\\n'); }`;
}

/**
 * One iteration: start the child, kill -9 it `killAfterMs` after its
 * `afterAcks`-th acknowledgement (it is writing the file all the time by
 * then), and return its acknowledged allocations (ident -> address).
 */
export async function allocateUntilKilled(dir: string, prefix: string, afterAcks: number, killAfterMs: number): Promise<Map<string, string>> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', childScript(dir, prefix)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let armed = false;
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!armed && out.split('\n').length - 2 >= afterAcks) {
        armed = true;
        setTimeout(() => { child.kill('SIGKILL'); resolve(); }, killAfterMs);
      }
    });
    child.on('exit', (code, signal) => { if (signal !== 'SIGKILL') reject(new Error(`child exited ${code} before the kill: ${err}`)); });
  });
  await new Promise((r) => child.once('close', r));
  const acked = new Map<string, string>();
  // A line cut by the kill was never acknowledged.
  for (const line of out.split('\n').slice(1, -1)) {
    const [ident, addr] = line.split(' ');
    acked.set(ident!, addr!);
  }
  return acked;
}

/** Checks every acknowledged allocation against a fresh start from `dir`; returns the violations. */
export function missingAfterRestart(dir: string, acked: ReadonlyMap<string, string>): string[] {
  const restored = crashTestAllocator(dir);
  try {
    const missing: string[] = [];
    for (const [ident, addr] of acked) {
      const got = restored.lookup(ident).map(formatCIDR);
      if (got.length !== 1 || got[0] !== addr) missing.push(`${ident}: acknowledged ${addr}, restored [${got.join(' ')}]`);
    }
    return missing;
  } finally {
    restored.stop();
  }
}
