// Real routers (`weave launch`) on a kernel without Open vSwitch use the eBPF
// fast datapath: connections are `established fastdp` (wire spec §5.9, §6.4),
// data never reaches userspace, a blocked UDP 6784 moves the connection to the
// sleeve and back, a --no-fastdp router still joins over the sleeve, and a
// router killed with -9 and relaunched does not interrupt forwarding (the
// kernel keeps its pinned maps). Relaunched with Weave 2.8's default MTU
// (1376, its heartbeats 1390 bytes), that peer makes the other host lower its
// overlay MTU, running containers included, so 1400-byte UDP datagrams cross
// both ways (a mixed mesh during a migration).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Counters } from '../../dataplane/bpf/maps.js';
import { scrapeFamilies } from '../support/metrics-text.js';
import { bpfPinDir, deliveredFromTunnel, pinnedCounters, withBpfWeaveBed, withPinnedMaps } from './lib/bpf-bed.js';
import {
  attachContainer, connectionsMatch, mustPing, mustWeave, pollUntil, runIperfClient, startIperfServer, weave, weaveStateDir, weaverPid,
  type Container, type Host, type Testbed, type WeaveOptions,
} from './lib/index.js';

const CONVERGE_MS = 30_000;
/** Short heartbeat timings, so losing fastdp is noticed in seconds (spec §6.4 says 10 s / 60 s). */
const HEARTBEAT_ENV = { WEAVE_FASTDP_HEARTBEAT_INTERVAL_MS: '500', WEAVE_FASTDP_HEARTBEAT_TIMEOUT_MS: '3000' };

/** Park the sleeve's packet worker after 2 s with no connection on the sleeve (60 s by default). */
const PARK_ENV = { WEAVE_SLEEVE_PARK_SEC: '2' };
/** How soon after fastdp is up, and after the sleeve is needed again, the worker must be parked / back. */
const PARK_BOUND_MS = 5000;

function envFor(bed: Testbed, h: Host): WeaveOptions {
  return { env: { ...HEARTBEAT_ENV, ...PARK_ENV, WEAVE_BPF_PIN_DIR: bpfPinDir(bed, h) } };
}

function routerLog(h: Host): string {
  return readFileSync(join(weaveStateDir(h), 'weaver.log'), 'utf8');
}

function count(text: string, re: RegExp): number {
  return text.match(new RegExp(re.source, 'g'))?.length ?? 0;
}

function rssMiB(h: Host): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${weaverPid(h)}/status`, 'utf8'))![1]) / 1024;
}

const PARKED = /packet worker parked/;
const UNPARKED = /packet worker started again/;

/** Whether the router's sleeve worker is parked now: it said so last (it opens parked beside fastdp). */
function parked(h: Host): boolean {
  const log = routerLog(h);
  const last = (re: RegExp): number => Math.max(-1, ...[...log.matchAll(new RegExp(re.source, 'g'))].map((m) => m.index));
  return last(PARKED) > last(UNPARKED);
}

function withBpfBed(hosts: number, body: (bed: Testbed) => Promise<void>): Promise<void> {
  return withBpfWeaveBed(hosts, envFor, body);
}

async function launch(bed: Testbed, h: Host, extra: string[] = []): Promise<void> {
  const others = bed.hosts.filter((o) => o !== h).map((o) => o.address);
  await mustWeave(h, ['launch', '--nickname', h.label, ...extra, ...others], envFor(bed, h));
}

/** Router.Datapath of `weave report` (JSON numbers: exact enough for these deltas). */
interface ReportedDatapath {
  Kind: string;
  KernelForwarded: number;
  Userspace: number;
  Drops: Record<string, number>;
}

async function reportedDatapath(h: Host): Promise<ReportedDatapath> {
  const text = await mustWeave(h, ['report']);
  const report = JSON.parse(text) as { Router?: { Datapath?: ReportedDatapath } };
  const d = report.Router?.Datapath;
  assert.ok(d, `weave report on ${h.label} has Router.Datapath: ${text.slice(0, 200)}`);
  return d;
}

function counters(bed: Testbed, h: Host): Counters {
  return pinnedCounters(bpfPinDir(bed, h));
}

/** Weave 2.8's default fastdp MTU (wire spec §6.1). */
const WEAVE_MTU = 1376;
/** How soon after a lower-MTU peer's connection is up this host's containers must follow. */
const MTU_FOLLOW_BOUND_MS = 5000;

async function mtuOf(c: Container): Promise<number> {
  const r = await c.exec('cat', ['/sys/class/net/ethwe/mtu']);
  assert.equal(r.code, 0, `read the MTU of ethwe: ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** Receives UDP datagrams of `size` bytes on port 7000 until `want` arrived or 4 s passed; prints the count. */
const UDP_RECEIVER = `
const s = require('node:dgram').createSocket('udp4');
let n = 0;
const done = () => { process.stdout.write(String(n)); process.exit(0); };
s.on('message', (m) => { if (m.length === Number(process.argv[1]) && ++n >= Number(process.argv[2])) done(); });
s.bind(7000);
setTimeout(done, 4000);`;
/** Sends a UDP datagram of `size` bytes to `ip`:7000 every 40 ms, 50 times. */
const UDP_SENDER = `
const s = require('node:dgram').createSocket('udp4');
const buf = Buffer.alloc(Number(process.argv[2]), 0x5a);
let i = 0;
const t = setInterval(() => { s.send(buf, 7000, process.argv[1]); if (++i >= 50) { clearInterval(t); s.close(); } }, 40);`;

/**
 * At least `want` UDP datagrams of `size` bytes sent by `from` reach `to`, and
 * no IP packet larger than `mtu` reaches `to` meanwhile: a Weave 2.8 peer's
 * Open vSwitch drops frames over its MTU before its containers see them, our
 * eBPF receive path does not, so the count of larger packets (before
 * reassembly) is what shows they would have been lost.
 */
async function mustReceiveUdp(from: Container, to: Container, toIp: string, size: number, want: number, mtu: number, what: string): Promise<void> {
  const table = 'weave_test_mtu';
  const nft = async (args: string): Promise<string> => {
    const r = await to.run(`nft ${args}`);
    assert.equal(r.code, 0, `nft ${args}: ${r.stderr}`);
    return r.stdout;
  };
  // Before defragmentation (priority -400): each packet as it arrived.
  await nft(`add table ip ${table}`);
  await nft(`'add chain ip ${table} pre { type filter hook prerouting priority -450; }'`);
  await nft(`add rule ip ${table} pre meta length gt ${mtu} counter`);
  const receiver = to.exec(process.execPath, ['-e', UDP_RECEIVER, String(size), String(want)], { timeoutMs: 10_000 });
  // The receiver binds within the sender's first datagrams; the sender keeps sending for 2 s.
  const sender = await from.exec(process.execPath, ['-e', UDP_SENDER, toIp, String(size)], { timeoutMs: 10_000 });
  assert.equal(sender.code, 0, `${what}: sender: ${sender.stderr}`);
  const r = await receiver;
  const got = Number(r.stdout.trim());
  assert.ok(got >= want, `${what}: ${got} of at least ${want} ${size}-byte UDP datagrams arrived (${r.stderr})`);
  const oversized = Number(/counter packets (\d+)/.exec(await nft(`list chain ip ${table} pre`))?.[1]);
  await nft(`delete table ip ${table}`);
  assert.equal(oversized, 0, `${what}: IP packets larger than ${mtu} bytes arrived (a Weave peer would have dropped them)`);
}

test('two hosts: fastdp over eBPF, data stays in the kernel, UDP 6784 blocked -> sleeve and back, kill -9 keeps forwarding', async () => {
  await withBpfBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    try {
      await twoHosts(bed, h1, h2);
    } catch (e) {
      for (const h of [h1, h2]) process.stderr.write(`${h.label} log:\n${routerLog(h).split('\n').slice(-60).join('\n')}\n`);
      throw e;
    }
  });
});

async function twoHosts(bed: Testbed, h1: Host, h2: Host): Promise<void> {
  {
    await launch(bed, h1);
    await launch(bed, h2);
    await connectionsMatch(h1, /^(<-|->) \S+\s+established fastdp \S+\(h2\) mtu=\d+/m, { timeoutMs: CONVERGE_MS });
    await connectionsMatch(h2, /established fastdp \S+\(h1\) mtu=\d+/, { timeoutMs: CONVERGE_MS });
    // Every connection on fastdp: the sleeve's worker is parked, its heartbeats kept on the main thread.
    const fastdpAt = Date.now();
    const rssBefore = [rssMiB(h1), rssMiB(h2)];
    for (const h of [h1, h2]) {
      assert.ok(await pollUntil(() => parked(h), PARK_BOUND_MS, 100), `${h.label} parks its sleeve worker:\n${routerLog(h).slice(-2000)}`);
    }
    process.stdout.write(`# bpf-weave: sleeve workers parked ${Date.now() - fastdpAt} ms after fastdp was up (after 2 s unused, or from the start); started meanwhile: h1 ${count(routerLog(h1), UNPARKED)}, h2 ${count(routerLog(h2), UNPARKED)} times; RSS h1 ${rssBefore[0]!.toFixed(1)} -> ${rssMiB(h1).toFixed(1)} MiB, h2 ${rssBefore[1]!.toFixed(1)} -> ${rssMiB(h2).toFixed(1)} MiB\n`);
    // Parking changes nothing the connection shows (a bound for the CLI's answer on a loaded host).
    await connectionsMatch(h1, /established fastdp \S+\(h2\)/, { timeoutMs: 10_000 });

    const [c1, c2] = [await attachContainer(h1), await attachContainer(h2)];
    await mustPing(c1, '10.32.0.2', 'h1/c1 -> h2/c1');
    await mustPing(c2, '10.32.0.1', 'h2/c1 -> h1/c1');

    // 10 s of TCP: every data frame is forwarded by the programs; only heartbeats go up.
    const windowStart = Date.now();
    const before = [counters(bed, h1), counters(bed, h2)] as const;
    const reportedBefore = [await reportedDatapath(h1), await reportedDatapath(h2)] as const;
    const server = await startIperfServer(c2);
    let bytes = 0;
    try {
      const run = await runIperfClient(c1, ['-c', '10.32.0.2', '-t', '10'], { timeoutMs: 60_000 });
      const bps = run.receivedBitsPerSecond;
      bytes = run.receivedBytes;
      assert.ok(bps > 1e6, `iperf3 moved data (${bps} bit/s)`);
    } finally {
      await server.stop();
    }
    const after = [counters(bed, h1), counters(bed, h2)] as const;
    // Each side's one forwarder sends at most one heartbeat per interval (spec §6.4): that, and
    // nothing of the stream, is what the tunnel program may hand to the stack in this window
    // (plus one sent just before the window and still on its way).
    const maxHeartbeats = Math.floor((Date.now() - windowStart) / Number(HEARTBEAT_ENV.WEAVE_FASTDP_HEARTBEAT_INTERVAL_MS)) + 2;
    // Every frame carries at most one 64 KiB GSO segment's worth of the stream.
    const minFrames = Math.max(5000, Math.floor(bytes / 65_536));
    const sent = after[0].fwd_to_tunnel - before[0].fwd_to_tunnel;
    const received = deliveredFromTunnel(after[1]) - deliveredFromTunnel(before[1]);
    const decapsulated = after[1].fwd_from_underlay - before[1].fwd_from_underlay;
    assert.ok(sent >= minFrames && received >= minFrames, `the kernel forwarded the stream, ${bytes} bytes (h1 to tunnel ${sent}, h2 from tunnel ${received} frames; at least ${minFrames})`);
    assert.ok(decapsulated >= minFrames, `h2 decapsulated the stream at its underlay interface (receive fast path): ${decapsulated} of ${received} frames`);
    for (const i of [0, 1] as const) {
      const up = after[i].to_userspace - before[i].to_userspace;
      assert.ok(up <= maxHeartbeats, `h${i + 1}: frames handed to userspace during the run: ${up}, at most the ${maxHeartbeats} heartbeats the peer could send`);
    }
    // The same measurement through `weave report` (Router.Datapath).
    const reportedAfter = [await reportedDatapath(h1), await reportedDatapath(h2)] as const;
    const maxReportedHeartbeats = Math.floor((Date.now() - windowStart) / Number(HEARTBEAT_ENV.WEAVE_FASTDP_HEARTBEAT_INTERVAL_MS)) + 2;
    for (const i of [0, 1] as const) {
      const [b, a] = [reportedBefore[i], reportedAfter[i]];
      assert.equal(a.Kind, 'bpf');
      assert.ok(a.KernelForwarded - b.KernelForwarded >= minFrames, `h${i + 1}: weave report counts the stream as kernel-forwarded (${a.KernelForwarded - b.KernelForwarded})`);
      assert.ok(a.Userspace - b.Userspace <= maxReportedHeartbeats, `h${i + 1}: weave report: handed to userspace during the run: ${a.Userspace - b.Userspace}, at most ${maxReportedHeartbeats} heartbeats`);
      assert.equal(typeof a.Drops.runt, 'number', 'drops are reported by reason');
    }
    process.stdout.write(`# bpf-weave: 10 s iperf3 ${(bytes * 8 / 10 / 1e9).toFixed(2)} Gbit/s; kernel frames h1->tunnel ${sent}, tunnel->h2 ${received}; to userspace h1 ${after[0].to_userspace - before[0].to_userspace}, h2 ${after[1].to_userspace - before[1].to_userspace} (heartbeat bound ${maxHeartbeats})\n`);
    // Container veths (the only ports here) deliver with bpf_redirect_peer.
    for (const h of [h1, h2]) {
      const flags = withPinnedMaps(bpfPinDir(bed, h), (m) => [...m.listPortFlags().values()]);
      assert.ok(flags.length >= 1 && flags.every((f) => f), `${h.label}: every container port is marked for redirect_peer: ${JSON.stringify(flags)}`);
    }

    // Block the fastdp port: heartbeats stop, the connection falls back to the sleeve with a reason.
    const unparkedBefore = [count(routerLog(h1), UNPARKED), count(routerLog(h2), UNPARKED)];
    await bed.blockUdpPort(h2, 6784);
    const blockedAt = Date.now();
    const fallen = await connectionsMatch(h1, /established sleeve \S+\(h2\) mtu=\d+ \(fastdp: [^)]*heartbeat[^)]*\)/, { timeoutMs: CONVERGE_MS });
    assert.match(fallen, /fastdp: /);
    // Established on the sleeve while parked: the keeper's heartbeats kept it so. Taking it starts the worker.
    const fellAt = Date.now();
    for (const [i, h] of [h1, h2].entries()) {
      assert.ok(await pollUntil(() => count(routerLog(h), UNPARKED) > unparkedBefore[i]!, PARK_BOUND_MS, 50), `${h.label} starts its sleeve worker again`);
    }
    process.stdout.write(`# bpf-weave: on the sleeve ${fellAt - blockedAt} ms after UDP 6784 was blocked; both workers back ${Date.now() - fellAt} ms later\n`);
    await mustPing(c1, '10.32.0.2', 'h1/c1 -> h2/c1 over the sleeve');
    await mustPing(c2, '10.32.0.1', 'h2/c1 -> h1/c1 over the sleeve');
    await bed.unblockUdpPort(h2, 6784);
    await connectionsMatch(h1, /established fastdp \S+\(h2\)/, { timeoutMs: CONVERGE_MS });
    await connectionsMatch(h2, /established fastdp \S+\(h1\)/, { timeoutMs: CONVERGE_MS });
    await mustPing(c1, '10.32.0.2', 'h1/c1 -> h2/c1 back on fastdp');

    // kill -9 the router on h2 and relaunch it while c1 pings every 100 ms; relaunched with
    // Weave 2.8's MTU, h2 stands in for a Weave peer in a mixed mesh.
    assert.ok(await mtuOf(c1) > WEAVE_MTU && await mtuOf(c2) > WEAVE_MTU, 'both containers start above Weave\'s MTU');
    const pinger = c1.exec('ping', ['-i', '0.1', '-c', '100', '-W', '1', '10.32.0.2'], { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1000));
    process.kill(weaverPid(h2), 'SIGKILL');
    await launch(bed, h2, ['--mtu', String(WEAVE_MTU)]);
    await connectionsMatch(h1, /established fastdp \S+\(h2\)/, { timeoutMs: CONVERGE_MS });
    const upAt = Date.now();
    // h1 follows the 1390-byte heartbeats: its running container, its status and its metric.
    const followed = await pollUntil(async () => (await mtuOf(c1)) === WEAVE_MTU, MTU_FOLLOW_BOUND_MS);
    assert.ok(followed, `h1's running container follows h2's MTU ${WEAVE_MTU} within ${MTU_FOLLOW_BOUND_MS} ms of fastdp being up (ethwe mtu ${await mtuOf(c1)})`);
    process.stdout.write(`# bpf-weave: h1's container at MTU ${WEAVE_MTU} ${Date.now() - upAt} ms after fastdp to the lower-MTU peer was up\n`);
    assert.equal(await mtuOf(c2), WEAVE_MTU, 'the relaunch with --mtu lowered h2\'s running container too');
    await connectionsMatch(h1, new RegExp(`established fastdp \\S+\\(h2\\) mtu=${WEAVE_MTU}`), { timeoutMs: 2000 });
    const scrape = `fetch('http://127.0.0.1:6782/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`;
    const families = scrapeFamilies((await h1.exec(process.execPath, ['-e', scrape])).stdout);
    assert.equal(families.get('weave_overlay_mtu')?.series[0]?.value, WEAVE_MTU, 'h1 /metrics shows the effective overlay MTU');
    const ping = await pinger;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(ping.stdout);
    assert.ok(m, `ping summary: ${ping.stdout}`);
    const lost = Number(m[1]) - Number(m[2]);
    if (lost > 1) {
      const diag = await h2.run('ip -br link; tc filter show dev vxlan-6784 ingress; for d in $(ls /sys/class/net | grep vethwepl); do tc filter show dev $d ingress; done; bridge fdb show br weave | grep -v permanent');
      process.stderr.write(`h2 after restart:\n${diag.stdout}${diag.stderr}\nh1 counters ${JSON.stringify(counters(bed, h1))}\nh2 counters ${JSON.stringify(counters(bed, h2))}\n`);
      withPinnedMaps(bpfPinDir(bed, h2), (m) => process.stderr.write(`h2 peers ${JSON.stringify([...m.listPeers()])} local ${JSON.stringify([...m.listLocalMacs()])} cfg ${JSON.stringify(m.readConfig())}\n`));
    }
    assert.ok(lost <= 1, `at most one echo lost across the router restart (lost ${lost}):\n${ping.stdout.split('\n').slice(-4).join('\n')}`);

    // Larger than Weave's MTU, smaller than ours: fragmented by the sender, never dropped by the receiving veth.
    await mustReceiveUdp(c1, c2, '10.32.0.2', 1400, 5, WEAVE_MTU, 'h1/c1 -> h2/c1');
    await mustReceiveUdp(c2, c1, '10.32.0.1', 1400, 5, WEAVE_MTU, 'h2/c1 -> h1/c1');
    for (const reverse of [false, true]) {
      const tcpServer = await startIperfServer(c2);
      try {
        // Timed rather than `-n 1M`: with -n, iperf3 ends the test once the sender has written 1 MiB into its
        // socket and reports what had arrived by then, so the receiver's total can fall short with nothing lost.
        const run = await runIperfClient(c1, ['-c', '10.32.0.2', '-t', '2', ...(reverse ? ['-R'] : [])], { timeoutMs: 30_000 });
        assert.ok(run.receivedBytes >= 1 << 20, `TCP ${reverse ? 'h2 -> h1' : 'h1 -> h2'}: ${run.receivedBytes} bytes of 1 MiB arrived`);
      } finally {
        await tcpServer.stop();
      }
    }
  }
}

test('three hosts: a --no-fastdp router joins over the sleeve while h1<->h2 stay on fastdp', async () => {
  await withBpfBed(3, async (bed) => {
    const [h1, h2, h3] = bed.hosts as [Host, Host, Host];
    await launch(bed, h1);
    await launch(bed, h2);
    await launch(bed, h3, ['--no-fastdp']);
    await connectionsMatch(h1, /established fastdp \S+\(h2\)/, { timeoutMs: CONVERGE_MS });
    const h1view = await connectionsMatch(h1, /established sleeve \S+\(h3\) mtu=\d+ \(fastdp: [^)]+\)/, { timeoutMs: CONVERGE_MS });
    assert.match(h1view, /established fastdp \S+\(h2\)/);
    await connectionsMatch(h3, /established sleeve \S+\(h1\)[\s\S]*established sleeve \S+\(h2\)|established sleeve \S+\(h2\)[\s\S]*established sleeve \S+\(h1\)/, { timeoutMs: CONVERGE_MS });
    const [c1, c2, c3] = [await attachContainer(h1), await attachContainer(h2), await attachContainer(h3)];
    await mustPing(c1, '10.32.0.2', 'h1 -> h2 (fastdp)');
    await mustPing(c1, '10.32.0.3', 'h1 -> h3 (sleeve)');
    await mustPing(c3, '10.32.0.2', 'h3 -> h2 (sleeve)');
    await mustPing(c2, '10.32.0.1', 'h2 -> h1 (fastdp)');
    await mustPing(c2, '10.32.0.3', 'h2 -> h3 (sleeve)');
    const before = counters(bed, h1).fwd_to_tunnel;
    assert.ok((await c1.ping('10.32.0.2', { count: 3, waitSeconds: 1 })), 'h1 -> h2 again');
    assert.ok(counters(bed, h1).fwd_to_tunnel >= before + 3, 'h1 -> h2 went through the kernel tunnel');
    const r = await weave(h3, ['status', 'connections']);
    assert.doesNotMatch(r.stdout, /fastdp \S+\(h/, 'h3 uses no fastdp');
  });
});
