// from-container and from-tunnel run once on crafted frames (BPF_PROG_TEST_RUN):
// verdicts and named drop counters for each forwarding case, no traffic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createTestbed, type Testbed } from './lib/index.js';
import { BpfFastDatapath } from '../../dataplane/bpf/fastdp.js';
import { macKey, type Counters } from '../../dataplane/bpf/maps.js';
import { TC_ACT, testRunProgram } from '../../dataplane/bpf/test-run.js';

let bed: Testbed;
let dp: BpfFastDatapath;
let pinDir: string;
const LOCAL = '02:77:00:00:00:01';
const REMOTE = '02:77:00:00:00:02';
const UNROUTED = '02:77:00:00:00:03';

function frame(dst: string, src: string, ethertype = 0x0800, len = 64): Buffer {
  const f = Buffer.alloc(len);
  macKey(dst).copy(f, 0, 0, 6);
  macKey(src).copy(f, 6, 0, 6);
  f.writeUInt16BE(ethertype, 12);
  return f;
}

function delta(before: Counters, after: Counters): Partial<Counters> {
  const out: Partial<Counters> = {};
  for (const k of Object.keys(after) as (keyof Counters)[]) if (after[k] !== before[k]) out[k] = after[k] - before[k];
  return out;
}

function run(program: 'from-container' | 'from-tunnel', f: Buffer): { verdict: number; counted: Partial<Counters> } {
  const before = dp.readCounters();
  const { verdict } = testRunProgram(dp.programFd(program), f);
  return { verdict, counted: delta(before, dp.readCounters()) };
}

before(async () => {
  bed = await createTestbed({ hosts: 1, underlay: 'mesh-veths' });
  pinDir = join('/tmp', `${bed.prefix}-bpffs`);
  dp = await BpfFastDatapath.open({ localShortId: 1, pinDir, netns: bed.host(1).namespace });
  await dp.apply({ localPorts: [], peers: [{ shortId: 2, underlayIp: '172.31.0.2' }], broadcastTrees: [{ sourceShortId: 1, nextHops: [2] }] });
  // A test run's ingress device is the caller's loopback (ifindex 1): a local MAC
  // behind ifindex 1 is a hairpin, one behind another index a local delivery.
  dp.maps.setLocalMac(LOCAL, 1);
  dp.maps.setLocalMac('02:77:00:00:00:09', 4242);
  // Learned entries are normally written by from-tunnel; write them as it would.
  dp.maps.setRemoteMac(REMOTE, 2);
  dp.maps.setRemoteMac(UNROUTED, 3);
});

after(async () => {
  dp?.close();
  await bed?.teardown();
  if (pinDir) {
    try { execFileSync('umount', [pinDir]); } catch { /* not mounted */ }
    rmSync(pinDir, { recursive: true, force: true });
  }
});

test('unicast to a local MAC is redirected in the kernel', () => {
  const r = run('from-container', frame('02:77:00:00:00:09', '02:77:00:00:00:0a'));
  assert.equal(r.verdict, TC_ACT.REDIRECT);
  assert.deepEqual(r.counted, { fwd_local: 1 });
});

test('unicast back out of its own port is dropped as a hairpin', () => {
  const r = run('from-container', frame(LOCAL, '02:77:00:00:00:0a'));
  assert.equal(r.verdict, TC_ACT.SHOT);
  assert.deepEqual(r.counted, { drop_hairpin: 1 });
});

test('unicast to a learned remote MAC is encapsulated towards its peer', () => {
  const r = run('from-container', frame(REMOTE, LOCAL));
  assert.equal(r.verdict, TC_ACT.REDIRECT);
  assert.deepEqual(r.counted, { fwd_to_tunnel: 1 });
});

test('a MAC learned from a peer without an underlay address is dropped as no_route', () => {
  const r = run('from-container', frame(UNROUTED, LOCAL));
  assert.equal(r.verdict, TC_ACT.SHOT);
  assert.deepEqual(r.counted, { drop_no_route: 1 });
});

test('broadcast and unknown unicast are flooded', () => {
  for (const dst of ['ff:ff:ff:ff:ff:ff', '02:77:00:00:00:77']) {
    const r = run('from-container', frame(dst, LOCAL, 0x0806));
    assert.equal(r.verdict, TC_ACT.SHOT, 'the original is consumed after cloning');
    assert.equal(r.counted.flood, 1);
  }
});

test('a frame on the tunnel hook without tunnel metadata is dropped with its reason', () => {
  const r = run('from-tunnel', frame(LOCAL, REMOTE));
  assert.equal(r.verdict, TC_ACT.SHOT);
  assert.deepEqual(r.counted, { drop_no_tunnel_key: 1 });
});
