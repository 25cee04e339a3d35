// IPAM state file: round trip, restart, corrupt file, range mismatch, and an
// acknowledged allocation surviving kill -9.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  Allocator, FileIpamStore, IpamDataFileError, gobStreamCodec, parseCIDR, formatCIDR, type PeerName, type AllocatorConfig,
} from '../../controlplane/ipam/index.js';

const A: PeerName = 0x0a0000000001n;

function withDir(fn: (dir: string) => Promise<void> | void): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipam-persist-'));
    try { await fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
}

function allocator(dir: string, over: Partial<AllocatorConfig> = {}): Allocator {
  return new Allocator({
    name: A, uid: 1n, nickname: 'host1', universe: parseCIDR('10.32.0.0/12'), init: { mode: 'seed', seeds: [A] },
    isKnownPeer: () => true, codec: gobStreamCodec, store: new FileIpamStore(dir), ...over,
  });
}

test('allocations and the ring survive a restart', withDir(async (dir) => {
  const first = allocator(dir);
  const a = await first.allocate('c1');
  const b = await first.allocate('c2', parseCIDR('10.32.5.0/24'));
  await first.claim('weave:expose', parseCIDR('10.32.9.9/12'));
  first.stop();
  const again = allocator(dir);
  assert.deepEqual(again.lookup('c1'), [a]);
  assert.deepEqual(again.lookup('c2'), [b]);
  assert.equal(formatCIDR(again.lookup('weave:expose')[0]!), '10.32.9.9/12');
  assert.equal(again.hasRing(), true);
  const c = await again.allocate('c3');
  assert.notEqual(c.addr, a.addr, 'a restored address is not handed out again');
}));

test('state written for another peer name is discarded', withDir(async (dir) => {
  const first = allocator(dir);
  await first.allocate('c1');
  const other = allocator(dir, { name: 0x0a0000000002n, init: { mode: 'consensus' } });
  assert.deepEqual(other.lookup('c1'), []);
  assert.equal(other.hasRing(), false);
}));

test('a corrupt data file gives an error naming the file and the fix', withDir((dir) => {
  const path = join(dir, 'ipam.json');
  writeFileSync(path, '{"format":"weave-ipam-data/1","peerName":');
  assert.throws(() => allocator(dir), (err: Error) => {
    assert.ok(err instanceof IpamDataFileError);
    assert.ok(err.message.includes(path), err.message);
    assert.match(err.message, /corrupt data/);
    assert.match(err.message, /weave reset/);
    return true;
  });
  writeFileSync(path, JSON.stringify({ format: 'weave-ipam-data/1', peerName: '0a:00:00:00:00:01', range: { start: 1, end: 2 }, allocations: 'x' }));
  assert.throws(() => allocator(dir), /allocations is not a list/);
}));

test('a data file for a different range is refused with the fix, or discarded when asked', withDir(async (dir) => {
  const first = allocator(dir);
  await first.allocate('c1');
  assert.throws(() => allocator(dir, { universe: parseCIDR('10.40.0.0/16') }), (err: Error) => {
    assert.ok(err.message.includes(join(dir, 'ipam.json')), err.message);
    assert.match(err.message, /is for range 10\.32\.0\.0-10\.47\.255\.255 but --ipalloc-range is 10\.40\.0\.0\/16/);
    assert.match(err.message, /weave reset/);
    return true;
  });
  const logged: string[] = [];
  const fresh = allocator(dir, { universe: parseCIDR('10.40.0.0/16'), onRangeMismatch: 'discard', log: (m) => logged.push(m) });
  assert.ok(logged.some((m) => /Deleting persisted data for IPAM range 10\.32\.0\.0-10\.47\.255\.255; our range is 10\.40\.0\.0\/16/.test(m)), logged.join('\n'));
  assert.equal((JSON.parse(readFileSync(join(dir, 'ipam.json'), 'utf8')) as { allocations: unknown[] }).allocations.length, 0,
    'the old range\'s data is gone from the file at once');
  assert.deepEqual(fresh.lookup('c1'), []);
  assert.equal(formatCIDR(await fresh.allocate('c9')), '10.40.0.1/16');
  fresh.stop();
  // A router stopped before allocating anything comes back on the new range too.
  assert.doesNotThrow(() => allocator(dir, { universe: parseCIDR('10.40.0.0/16') }).stop());
}));

test('at start, addresses of containers that went away while the router was down are released at once', withDir(async (dir) => {
  const first = allocator(dir);
  const gone = await first.allocate('/run/netns/gone');
  const alive = await first.allocate('/run/netns/alive');
  await first.claim('weave:expose', parseCIDR('10.32.9.9/12'));
  first.stop();
  const again = allocator(dir, { isContainerAlive: (ident) => ident !== '/run/netns/gone' && ident !== 'weave:expose' });
  assert.deepEqual(again.lookup('/run/netns/gone'), [gone], 'nothing is pruned before start');
  again.start();
  try {
    assert.deepEqual(again.lookup('/run/netns/gone'), [], 'released without the grace period');
    assert.deepEqual(again.lookup('/run/netns/alive'), [alive]);
    assert.equal(again.lookup('weave:expose').length, 1, 'weave:expose never dies');
    await again.claim('/run/netns/new', gone);
    assert.deepEqual(again.lookup('/run/netns/new'), [gone], 'the address can be claimed again at once');
  } finally {
    again.stop();
  }
}));

test('no temp file is left behind after a save', withDir(async (dir) => {
  const a = allocator(dir);
  await a.allocate('c1');
  assert.equal(existsSync(join(dir, 'ipam.json')), true);
  assert.equal(existsSync(join(dir, 'ipam.json.tmp')), false);
  assert.match(readFileSync(join(dir, 'ipam.json'), 'utf8'), /"ident":"c1"/);
}));

test('an acknowledged allocation survives kill -9', withDir(async (dir) => {
  const ipam = join(dirname(fileURLToPath(import.meta.url)), '../../controlplane/ipam/index.js');
  // The child allocates, prints the acknowledged address, then spins until killed.
  const script = `
    const m = await import(${JSON.stringify(ipam)});
    const a = new m.Allocator({ name: 0x0a0000000001n, uid: 1n, nickname: 'h', universe: m.parseCIDR('10.32.0.0/12'),
      init: { mode: 'seed', seeds: [0x0a0000000001n] }, isKnownPeer: () => true, codec: m.gobStreamCodec,
      store: new m.FileIpamStore(${JSON.stringify(dir)}) });
    for (let i = 0; i < 5; i++) { const c = await a.allocate('c' + i); process.stdout.write(m.formatCIDR(c) + '\\n'); }
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const acked: string[] = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('child did not acknowledge 5 allocations in 10 s')); }, 10_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n').filter(Boolean);
      if (lines.length >= 5) { child.kill('SIGKILL'); clearTimeout(timer); resolve(lines); }
    });
    child.on('exit', (code, signal) => { if (signal !== 'SIGKILL') { clearTimeout(timer); reject(new Error(`child exited ${code}`)); } });
  });
  await new Promise((r) => child.once('close', r));
  const restored = allocator(dir);
  for (let i = 0; i < 5; i++) assert.deepEqual(restored.lookup(`c${i}`).map(formatCIDR), [acked[i]]);
}));

test('group commit: allocations and claims made together share one durable write, and are answered only after it', withDir(async (dir) => {
  const disk = new FileIpamStore(dir);
  const saved: number[] = [];
  let failNext = false;
  const store = {
    location: disk.location,
    load: () => disk.load(),
    save: (state: Parameters<FileIpamStore['save']>[0]): void => {
      if (failNext) { failNext = false; throw new Error('disk full'); }
      disk.save(state);
      saved.push(state.allocations.length);
    },
  };
  const alloc = allocator(dir, { store });
  await alloc.prime();
  const before = saved.length;
  const answered: string[] = [];
  const ops = [
    ...Array.from({ length: 8 }, (_, i) => alloc.allocate(`c${i}`).then((c) => { answered.push(`c${i}`); return c; })),
    alloc.claim('c9', parseCIDR('10.32.9.9/12')).then(() => { answered.push('c9'); return parseCIDR('10.32.9.9/12'); }),
  ];
  assert.equal(answered.length, 0);
  const got = await Promise.all(ops);
  assert.equal(saved.length - before, 1, 'one write for the nine operations');
  assert.equal(saved.at(-1), 9, 'the write holds all nine');
  assert.equal(new Set(got.map(formatCIDR)).size, 9);
  const onDisk = new Map(disk.load()!.allocations.map((a) => [a.ident, a.addrs.length]));
  for (const id of ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c9']) assert.equal(onDisk.get(id), 1, `${id} is on disk`);

  // A failed write fails every operation waiting on it, with the reason; the allocator carries on.
  failNext = true;
  const failed = await Promise.allSettled([alloc.allocate('d1'), alloc.allocate('d2')]);
  for (const r of failed) {
    assert.equal(r.status, 'rejected');
    assert.match(String((r as PromiseRejectedResult).reason), /disk full/);
  }
  assert.ok(await alloc.allocate('d3'));
  assert.equal(disk.load()!.allocations.some((a) => a.ident === 'd3'), true);
  alloc.stop();
}));
