// from-container, from-tunnel and from-underlay run once on crafted frames
// (BPF_PROG_TEST_RUN): verdicts, named counters and rewritten frames for each
// forwarding case, no traffic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createTestbed, pollUntil, type Testbed } from './lib/index.js';
import { BpfFastDatapath } from '../../dataplane/bpf/fastdp.js';
import { LearnedMacAgeing } from '../../dataplane/bpf/mac-ageing.js';
import { macKey, type Counters } from '../../dataplane/bpf/maps.js';
import { TC_ACT, testRunProgram } from '../../dataplane/bpf/test-run.js';
import { parseIPv4 } from '../../dataplane/netlink/inet.js';
import { internetChecksum } from '../../dataplane/sleeve/ethernet.js';

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

function run(program: 'from-container' | 'from-tunnel' | 'from-underlay', f: Buffer): { verdict: number; counted: Partial<Counters>; out: Buffer } {
  const before = dp.readCounters();
  const { verdict, frame: out } = testRunProgram(dp.programFd(program), f);
  return { verdict, counted: delta(before, dp.readCounters()), out };
}

const UNDERLAY_LOCAL = '172.31.0.1';
const UNDERLAY_PEER = '172.31.0.2';
const CONTAINER = '02:77:00:00:00:09'; // local, behind ifindex 4242

interface Encap { vni?: number; saddr?: string; daddr?: string; udpPort?: number; udpCsum?: number; vxlanFlags?: number; fragment?: boolean; badIpCsum?: boolean }

/** An inner frame as the fastdp sends it (spec §6.2): outer Ethernet, IPv4, UDP 6784, VXLAN. */
function encapsulate(inner: Buffer, e: Encap = {}): Buffer {
  const outer = Buffer.alloc(14 + 20 + 8 + 8);
  macKey('02:aa:00:00:00:01').copy(outer, 0, 0, 6);
  macKey('02:aa:00:00:00:02').copy(outer, 6, 0, 6);
  outer.writeUInt16BE(0x0800, 12);
  const ip = outer.subarray(14, 34);
  ip.writeUInt8(0x45, 0);
  ip.writeUInt16BE(20 + 8 + 8 + inner.length, 2);
  ip.writeUInt16BE(e.fragment ? 0x2000 : 0x4000, 6); // MF, or DF
  ip.writeUInt8(64, 8);
  ip.writeUInt8(17, 9);
  parseIPv4(e.saddr ?? UNDERLAY_PEER).copy(ip, 12);
  parseIPv4(e.daddr ?? UNDERLAY_LOCAL).copy(ip, 16);
  ip.writeUInt16BE(internetChecksum(ip, 0, ip.length) ^ (e.badIpCsum ? 1 : 0), 10);
  const udp = outer.subarray(34, 42);
  udp.writeUInt16BE(40000, 0);
  udp.writeUInt16BE(e.udpPort ?? 6784, 2);
  udp.writeUInt16BE(8 + 8 + inner.length, 4);
  udp.writeUInt16BE(e.udpCsum ?? 0, 6);
  outer.writeUInt32BE(e.vxlanFlags ?? 0x0800_0000, 42);
  outer.writeUInt32BE(((e.vni ?? (2 | (1 << 12))) << 8) >>> 0, 46);
  return Buffer.concat([outer, inner]);
}

before(async () => {
  bed = await createTestbed({ hosts: 1, underlay: 'mesh-veths' });
  pinDir = join('/tmp', `${bed.prefix}-bpffs`);
  dp = await BpfFastDatapath.open({ localShortId: 1, pinDir, netns: bed.host(1).namespace });
  await applyBaseState();
});

/** The peers and map entries every test starts from. */
async function applyBaseState(): Promise<void> {
  await dp.apply({ localPorts: [], peers: [{ shortId: 2, underlayIp: '172.31.0.2' }], broadcastTrees: [{ sourceShortId: 1, nextHops: [2] }] });
  // A test run's ingress device is the caller's loopback (ifindex 1): a local MAC
  // behind ifindex 1 is a hairpin, one behind another index a local delivery.
  dp.maps.setLocalMac(LOCAL, 1);
  dp.maps.setLocalMac('02:77:00:00:00:09', 4242);
  // Learned entries are normally written by from-tunnel; write them as it would.
  dp.maps.setRemoteMac(REMOTE, 2);
  dp.maps.setRemoteMac(UNROUTED, 3);
  // No route to the peer in this namespace, so apply() found no underlay interface: list our address by hand.
  dp.maps.setUnderlayAddresses([UNDERLAY_LOCAL], 6784);
}

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

test('a fastdp frame for a local container is decapsulated at the underlay and redirected', () => {
  const inner = frame(CONTAINER, '02:77:00:00:00:55', 0x0800, 98);
  inner.fill(0xab, 14);
  const r = run('from-underlay', encapsulate(inner));
  assert.equal(r.verdict, TC_ACT.REDIRECT);
  assert.deepEqual(r.counted, { fwd_from_underlay: 1, learned: 1 });
  assert.deepEqual(r.out, inner, 'what is delivered is exactly the inner frame');
  const learned = dp.listLearnedMacs().find((m) => m.mac === '02:77:00:00:00:55');
  assert.equal(learned?.peerShortId, 2, 'the source MAC is learned behind the VNI source peer');
});

test('frames the underlay fast path does not take are passed on unchanged', () => {
  const inner = frame(CONTAINER, REMOTE, 0x0800, 98);
  const cases: [string, Buffer][] = [
    ['another host\'s address', encapsulate(inner, { daddr: '172.31.0.9' })],
    ['a sender that is not the peer\'s underlay address', encapsulate(inner, { saddr: '172.31.0.7' })],
    ['another UDP port', encapsulate(inner, { udpPort: 6783 })],
    ['a UDP checksum (the stack verifies it)', encapsulate(inner, { udpCsum: 0x1234 })],
    ['a bad IPv4 header checksum', encapsulate(inner, { badIpCsum: true })],
    ['a fragment', encapsulate(inner, { fragment: true })],
    ['VXLAN flags other than I', encapsulate(inner, { vxlanFlags: 0x0c00_0000 })],
    ['a relay (VNI destination is another peer)', encapsulate(inner, { vni: 2 | (7 << 12) })],
    ['an unknown source peer', encapsulate(inner, { vni: 9 | (1 << 12) })],
    ['a heartbeat (zero MACs)', encapsulate(frame('00:00:00:00:00:00', '00:00:00:00:00:00', 0x0800, 98))],
    ['a broadcast', encapsulate(frame('ff:ff:ff:ff:ff:ff', REMOTE, 0x0806, 60))],
    ['an inner IPv6 frame', encapsulate(frame(CONTAINER, REMOTE, 0x86dd, 98))],
    ['a destination that is not local', encapsulate(frame('02:77:00:00:00:66', REMOTE, 0x0800, 98))],
    ['a truncated frame', encapsulate(inner).subarray(0, 60)],
    ['a plain IPv4 frame', frame(CONTAINER, REMOTE, 0x0800, 98)],
  ];
  for (const [what, f] of cases) {
    const r = run('from-underlay', f);
    assert.equal(r.verdict, TC_ACT.UNSPEC, `${what}: passed on to the stack`);
    assert.deepEqual(r.counted, {}, `${what}: nothing counted`);
    assert.deepEqual(r.out, f, `${what}: left unchanged`);
  }
});

test('random bytes at the underlay hook never crash it and are passed on or decapsulated', () => {
  let state = 0x2545f491;
  const rand = (): number => { state ^= state << 13; state ^= state >>> 17; state ^= state << 5; return (state >>> 0) & 0xff; };
  const template = encapsulate(frame(CONTAINER, REMOTE, 0x0800, 98));
  for (let i = 0; i < 300; i++) {
    const f = Buffer.from(template);
    // Flip a few header bytes (outer Ethernet to inner Ethernet), or cut the frame short
    // (not below Ethernet + IPv4 header: the test-run syscall refuses shorter IPv4 frames).
    for (let n = 0; n < 3; n++) f[rand() % 64] = rand();
    const input = i % 10 === 0 ? f.subarray(0, 34 + (rand() % 60)) : f;
    let r;
    try { r = run('from-underlay', input); } catch (e) { throw new Error(`${(e as Error).message} for ${input.toString('hex')}`); }
    assert.ok(r.verdict === TC_ACT.UNSPEC || r.verdict === TC_ACT.REDIRECT, `verdict ${r.verdict} for ${input.toString('hex')}`);
    if (r.verdict === TC_ACT.UNSPEC) assert.deepEqual(r.out, input, 'a frame passed on is unchanged');
  }
});

test('a peer removed from the datapath takes the MACs learned from it; the others stay', async () => {
  const gone = ['02:77:00:00:01:01', '02:77:00:00:01:02'];
  await dp.apply({ localPorts: [], peers: [{ shortId: 2, underlayIp: UNDERLAY_PEER }, { shortId: 5, underlayIp: '172.31.0.5' }], broadcastTrees: [{ sourceShortId: 1, nextHops: [2] }] });
  for (const m of gone) dp.maps.setRemoteMac(m, 5);
  await dp.apply({ localPorts: [], peers: [{ shortId: 2, underlayIp: UNDERLAY_PEER }], broadcastTrees: [{ sourceShortId: 1, nextHops: [2] }] });
  const left = dp.listLearnedMacs().map((e) => e.mac);
  await applyBaseState(); // apply() also took the local MACs and underlay address the tests set by hand
  for (const m of gone) assert.ok(!left.includes(m), `${m} of the departed peer 5 is still learned: ${left.join(' ')}`);
  assert.ok(left.includes(REMOTE), 'a MAC of peer 2, which stays, is kept');
});

test('learned MACs, remote and local, no frame refreshed for the ageing time are deleted by the sweep; refreshed and control-plane ones stay', async () => {
  // Above the programs' refresh granularity of a second, so a MAC in use never reaches it.
  const ageingSec = 2;
  // Bridge mode, where the programs learn local MACs (behind ifindex 1, a test run's ingress device).
  const cfg = dp.maps.readConfig();
  assert.ok(cfg, 'the datapath is configured');
  dp.maps.setConfig({ ...cfg, bridge: true });
  const ageing = new LearnedMacAgeing(dp.maps, ageingSec).start();
  const idle = '02:77:00:00:02:01';
  const busy = '02:77:00:00:02:02';
  const idleLocal = '02:77:00:00:02:11'; // e.g. a remote container that left, learned behind the sleeve's port
  const busyLocal = '02:77:00:00:02:12';
  const learned = (mac: string): boolean => dp.listLearnedMacs().some((e) => e.mac === mac);
  const learnedLocal = (mac: string): boolean => dp.maps.listLearnedLocalMacs().some((e) => e.mac === mac);
  // The busy MACs send a frame every 100 ms: the kernel learns and refreshes their entries.
  const traffic = setInterval(() => {
    run('from-underlay', encapsulate(frame(CONTAINER, busy, 0x0800, 98)));
    run('from-container', frame(CONTAINER, busyLocal, 0x0800, 98));
    run('from-container', frame(CONTAINER, LOCAL, 0x0800, 98)); // behind its own port, ifindex 1
  }, 100);
  try {
    const started = Date.now();
    dp.maps.setRemoteMac(idle, 2);
    dp.maps.setRemoteMac(busy, 2);
    dp.maps.setLearnedLocalMac(idleLocal, 4243);
    assert.ok(await pollUntil(() => learnedLocal(busyLocal), 5_000, 50), 'the kernel learned the busy local MAC with a timestamp');
    assert.ok(await pollUntil(() => !learned(idle) && !learnedLocal(idleLocal), 15_000, 50),
      `an idle MAC was never aged: remote ${learned(idle)}, local ${learnedLocal(idleLocal)}`);
    const took = Date.now() - started;
    assert.ok(took >= ageingSec * 1000, `aged after ${took} ms, before its ageing time`);
    assert.ok(took <= ageingSec * 1000 + ageing.intervalMs + 2000, `aged after ${took} ms; the sweep runs every ${ageing.intervalMs} ms`);
    // Another ageing time with the busy MACs still sending: refreshed, they stay.
    await new Promise((r) => setTimeout(r, ageingSec * 1000));
    assert.ok(learned(busy), 'a remote MAC still sending is not aged');
    assert.ok(learnedLocal(busyLocal), 'a local MAC still sending is not aged');
    // Entries the control plane wrote carry no timestamp and stay while their port does.
    assert.equal(dp.maps.listLocalMacs().get(CONTAINER), 4242, 'a local MAC the control plane set is never aged');
    assert.equal(dp.maps.listLocalMacs().get(LOCAL), 1, 'a control-plane MAC sending from its port stays');
    assert.ok(!learnedLocal(LOCAL), 'frames from a control-plane MAC do not stamp it as learned');
    assert.ok(ageing.aged >= 2, `the sweeps counted ${ageing.aged} aged entries`);
  } finally {
    clearInterval(traffic);
    ageing.stop();
    dp.maps.setConfig(cfg);
    dp.maps.deleteLocalMac(busyLocal);
  }
});
