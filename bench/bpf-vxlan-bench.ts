// Bulk TCP through three data paths between two simulated hosts, measured in
// ONE run, interleaved, median of several rounds:
//   (a) base : container veths and the underlay veth in a Linux bridge per host (no overlay)
//   (b) vxbr : the kernel's VXLAN (UDP 6784) + Linux bridge, head-end replication
//   (c) ebpf : the eBPF fast datapath (dataplane/bpf) with Weave's VNI layout
// plus experiment variants (BENCH_MODES=comma list, see `modes` below).
// Prints Gbit/s per round, medians, and the ratios to (a) and (b).
//
//   node dist/bench/bpf-vxlan-bench.js [seconds=5] [rounds=3]
// Root needed; everything lives in namespaces the bench creates and removes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createTestbed, execCommand, mustExec, pollUntil, waitForPing, type Testbed, type Container } from '../test/netns/lib/index.js';
import { BpfFastDatapath } from '../dataplane/bpf/fastdp.js';

const UNDERLAY_MTU = 1500;
const OVERLAY_MTU = UNDERLAY_MTU - 50;
const IDS = [0, 0x123, 0x456];

interface Bed { name: string; bed: Testbed; client: Container; serverIp: string; cleanup: () => void }

async function addContainerPort(bed: Testbed, i: number, mtu: number): Promise<Container> {
  const host = bed.host(i);
  const c = await host.addContainer(`c${i}`);
  await mustExec('ip', ['link', 'add', 'vc', 'netns', host.namespace, 'mtu', String(mtu), 'type', 'veth',
    'peer', 'name', 'eth0', 'netns', c.namespace, 'mtu', String(mtu), 'address', `02:77:00:00:00:0${i}`]);
  await mustExec('ip', ['-n', c.namespace, 'addr', 'add', `10.32.0.${i}/12`, 'dev', 'eth0']);
  await mustExec('ip', ['-n', c.namespace, 'link', 'set', 'eth0', 'up']);
  await mustExec('ip', ['-n', host.namespace, 'link', 'set', 'vc', 'up']);
  return c;
}

const peerOf = (i: number): number => 3 - i;

async function bridge(bed: Testbed, i: number, ports: string[]): Promise<void> {
  const ns = bed.host(i).namespace;
  await mustExec('ip', ['-n', ns, 'link', 'add', 'br0', 'type', 'bridge']);
  for (const p of ports) await mustExec('ip', ['-n', ns, 'link', 'set', p, 'master', 'br0']);
  await mustExec('ip', ['-n', ns, 'link', 'set', 'br0', 'up']);
}

type Setup = (bed: Testbed) => Promise<() => void>;

const setupBase: Setup = async (bed) => {
  for (const i of [1, 2]) {
    await addContainerPort(bed, i, UNDERLAY_MTU);
    await bridge(bed, i, ['vc', `to-h${peerOf(i)}`]);
  }
  return () => undefined;
};

const setupVxbr: Setup = async (bed) => {
  for (const i of [1, 2]) {
    const ns = bed.host(i).namespace;
    await addContainerPort(bed, i, OVERLAY_MTU);
    await mustExec('ip', ['-n', ns, 'link', 'add', 'vx', 'type', 'vxlan', 'id', '1', 'dstport', '6784',
      'local', bed.host(i).address, 'noudpcsum']);
    await mustExec('ip', ['netns', 'exec', ns, 'bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx', 'dst', bed.host(peerOf(i)).address]);
    await mustExec('ip', ['-n', ns, 'link', 'set', 'vx', 'up']);
    await bridge(bed, i, ['vc', 'vx']);
  }
  return () => undefined;
};

/** Builds the datapath objects with extra -D flags into a scratch dir (experiments only). */
function buildVariant(defines: string[]): string {
  const dir = join('/tmp', `weave-bpf-bench-${defines.join('_').replace(/[^A-Za-z0-9_]/g, '')}`);
  mkdirSync(dir, { recursive: true });
  for (const prog of ['from-container', 'from-tunnel']) {
    execFileSync('clang', ['-O2', '-g', '-target', 'bpf', '-D__TARGET_ARCH_x86', '-Wall', '-Werror', '-I', 'dataplane/bpf/include',
      ...defines.map((d) => `-D${d}`), '-c', `dataplane/bpf/${prog}.bpf.c`, '-o', join(dir, `${prog}.bpf.o`)]);
  }
  return dir;
}

type Tune = (bed: Testbed, i: number, dp: BpfFastDatapath) => Promise<void>;

function ebpfSetup(tune: Tune = async () => undefined, defines: string[] | ((i: number) => string[]) = [], redirectPeer = false): Setup {
  return async (bed) => {
    const dps: BpfFastDatapath[] = [];
    const objectDirs: string[] = [];
    const pinRoot = join('/tmp', `${bed.prefix}-bpffs`);
    for (const i of [1, 2]) {
      const d = typeof defines === 'function' ? defines(i) : defines;
      const objectDir = d.length > 0 ? buildVariant(d) : undefined;
      if (objectDir) objectDirs.push(objectDir);
      await addContainerPort(bed, i, OVERLAY_MTU);
      const dp = await BpfFastDatapath.open({ localShortId: IDS[i] as number, pinDir: join(pinRoot, `h${i}`), netns: bed.host(i).namespace, objectDir });
      await dp.apply({
        localPorts: [{ ifname: 'vc', macs: [`02:77:00:00:00:0${i}`], redirectPeer }],
        peers: [{ shortId: IDS[peerOf(i)] as number, underlayIp: bed.host(peerOf(i)).address }],
        broadcastTrees: [{ sourceShortId: IDS[i] as number, nextHops: [IDS[peerOf(i)] as number] }],
      });
      dps.push(dp);
      await tune(bed, i, dp);
    }
    let done = false;
    const cleanup = (): void => {
      if (done) return;
      done = true;
      for (const dp of dps) dp.close();
      for (const i of [1, 2]) { try { execFileSync('umount', [join(pinRoot, `h${i}`)]); } catch { /* not mounted */ } }
      rmSync(pinRoot, { recursive: true, force: true });
      for (const dir of objectDirs) rmSync(dir, { recursive: true, force: true });
    };
    // The testbed's signal handler exits the process: unmount the pin dirs then too.
    process.on('exit', cleanup);
    return cleanup;
  };
}

const ethtool = (dev: string, ...args: string[]): Tune => async (bed, i) => {
  await mustExec('ip', ['netns', 'exec', bed.host(i).namespace, 'ethtool', '-K', dev, ...args]);
};

/**
 * Experiment: one classic VXLAN device for the peer instead of the external one
 * (they cannot share UDP 6784, so the external device goes down). RX VNI =
 * peer | local << 12 is the device id; TX VNI local | peer << 12 comes from its
 * default fdb entry. No tunnel metadata on either side.
 */
const classicDevice: Tune = async (bed, i, dp) => {
  const ns = bed.host(i).namespace;
  const local = IDS[i] as number;
  const peer = IDS[peerOf(i)] as number;
  await mustExec('ip', ['-n', ns, 'link', 'set', 'vxlan-6784', 'down']);
  await mustExec('ip', ['-n', ns, 'link', 'add', 'vxp', 'type', 'vxlan', 'id', String(peer | (local << 12)), 'dstport', '6784',
    'local', bed.host(i).address, 'noudpcsum', 'nolearning']);
  await mustExec('ip', ['netns', 'exec', ns, 'bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vxp',
    'dst', bed.host(peerOf(i)).address, 'vni', String(local | (peer << 12))]);
  await mustExec('ip', ['-n', ns, 'link', 'set', 'vxp', 'up']);
  const ifindex = await dp.attachTunnelDevice('vxp');
  dp.maps.setConfig({ localShortId: local, tunnelIfindex: ifindex, learn: true, macTtlSec: 600 });
};

const modes: Record<string, Setup> = {
  base: setupBase,
  vxbr: setupVxbr,
  ebpf: ebpfSetup(),
  // experiments
  'ebpf-peer': ebpfSetup(undefined, [], true),
  'ebpf-classic': ebpfSetup(classicDevice, (i) => [`WEAVE_EXPERIMENT_CLASSIC_DEVICE=${(IDS[peerOf(i)] as number) | ((IDS[i] as number) << 12)}`]),
  'ebpf-csum-nodf': ebpfSetup(undefined, ['WEAVE_TUNNEL_FLAGS=0']),
  'ebpf-vxgro-off': ebpfSetup(ethtool('vxlan-6784', 'gro', 'off')),
  'ebpf-ulgrofwd': ebpfSetup(async (bed, i, dp) => ethtool(`to-h${peerOf(i)}`, 'rx-udp-gro-forwarding', 'on')(bed, i, dp)),
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** RCU softirqs and context switches so far (whole machine): the collect_md RX path frees a metadata dst per packet through call_rcu. */
function kernelEventCounts(): { rcuSoftirqs: number; contextSwitches: number } {
  const softirqs = readFileSync('/proc/softirqs', 'utf8').split('\n').find((l) => l.trim().startsWith('RCU:')) ?? '';
  const rcuSoftirqs = softirqs.trim().split(/\s+/).slice(1).reduce((a, x) => a + Number(x), 0);
  const ctxt = /^ctxt (\d+)/m.exec(readFileSync('/proc/stat', 'utf8'));
  return { rcuSoftirqs, contextSwitches: Number(ctxt?.[1] ?? 0) };
}

/** BENCH_PERF=dir: a system-wide `perf record` during each mode's first round, to compare kernel profiles. */
function startPerf(mode: string, seconds: number): Promise<unknown> | undefined {
  const dir = process.env.BENCH_PERF;
  if (!dir) return undefined;
  return execCommand('perf', ['record', '-a', '-g', '-o', join(dir, `perf-${mode}.data`), '--', 'sleep', String(Math.max(1, seconds - 1))],
    { timeoutMs: (seconds + 30) * 1000 });
}

async function iperf(b: Bed, seconds: number): Promise<number> {
  const server = b.bed.host(2).containers[0] as Container;
  const srv = server.spawn('iperf3', ['-s', '-1', '-p', '5201']);
  await pollUntil(async () => (await server.run('ss -ltn | grep -q :5201')).code === 0, 5000, 50);
  const r = await b.client.exec('iperf3', ['-c', b.serverIp, '-p', '5201', '-t', String(seconds), '-J'], { timeoutMs: (seconds + 20) * 1000 });
  await srv.exited;
  if (r.code !== 0) throw new Error(`iperf3 in ${b.name} failed: ${r.stdout.slice(-300)} ${r.stderr}`);
  return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const rounds = Number(process.argv[3] ?? 3);
  const names = (process.env.BENCH_MODES ?? 'base,vxbr,ebpf').split(',');
  const beds: Bed[] = [];
  try {
    for (const name of names) {
      const setup = modes[name];
      if (!setup) throw new Error(`unknown mode ${name} (have ${Object.keys(modes).join(', ')})`);
      const bed = await createTestbed({ hosts: 2, underlay: 'mesh-veths' });
      const cleanup = await setup(bed);
      const client = bed.host(1).containers[0] as Container;
      beds.push({ name, bed, client, serverIp: '10.32.0.2', cleanup });
      if (!(await waitForPing(client, '10.32.0.2', 10_000))) throw new Error(`${name}: c1 cannot ping c2`);
    }
    const results = new Map<string, number[]>(names.map((n) => [n, []]));
    // Alternate the order every round so no mode always runs right after the same neighbour.
    const ratiosToVxbr = new Map<string, number[]>(names.map((n) => [n, []]));
    const events = new Map<string, { rcu: number; ctxt: number }[]>(names.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      const round = new Map<string, number>();
      for (const b of r % 2 === 0 ? beds : [...beds].reverse()) {
        const perf = r === 0 ? startPerf(b.name, seconds) : undefined;
        const k0 = kernelEventCounts();
        const g = await iperf(b, seconds);
        const k1 = kernelEventCounts();
        await perf;
        const gbytes = (g * seconds) / 8;
        events.get(b.name)?.push({ rcu: (k1.rcuSoftirqs - k0.rcuSoftirqs) / gbytes, ctxt: (k1.contextSwitches - k0.contextSwitches) / gbytes });
        results.get(b.name)?.push(g);
        round.set(b.name, g);
        process.stdout.write(`round ${r + 1} ${b.name.padEnd(16)} ${g.toFixed(2)} Gbit/s\n`);
      }
      const v = round.get('vxbr');
      if (v) for (const [n, g] of round) ratiosToVxbr.get(n)?.push(g / v);
    }
    const med = new Map([...results].map(([n, xs]) => [n, median(xs)]));
    const base = med.get('base');
    const vxbr = med.get('vxbr');
    // The per-round ratio to vxbr compares runs seconds apart, which cancels most of the
    // background load of a shared machine; its median is the number to trust.
    process.stdout.write('\nmode              median Gbit/s  /base  /vxbr  median of per-round /vxbr\n');
    for (const [n, xs] of results) {
      const m = med.get(n) as number;
      const rr = ratiosToVxbr.get(n) ?? [];
      process.stdout.write(`${n.padEnd(18)}${m.toFixed(2).padStart(8)}       ` +
        `${base ? (m / base).toFixed(2) : '   -'}   ${vxbr ? (m / vxbr).toFixed(2) : '   -'}   ` +
        `${rr.length ? median(rr).toFixed(2) : '-'}  (${xs.map((x) => x.toFixed(2)).join(' ')})\n`);
    }
    process.stdout.write('\nmode              RCU softirqs/GB  context switches/GB  (medians, whole machine)\n');
    for (const [n, es] of events) {
      process.stdout.write(`${n.padEnd(18)}${median(es.map((e) => e.rcu)).toFixed(0).padStart(10)}  ${median(es.map((e) => e.ctxt)).toFixed(0).padStart(16)}\n`);
    }
  } finally {
    for (const b of beds) { b.cleanup(); await b.bed.teardown(); }
  }
}

await main();
