// Bulk TCP and ping RTT between containers on two simulated hosts, measured in
// ONE run, interleaved, median of several rounds:
//   (a) base         : container veths and the underlay veth in a Linux bridge per host (no overlay)
//   (b) vxbr         : the kernel's VXLAN (UDP 6784) + Linux bridge, head-end replication
//   (c) weave-fastdp : real routers (`weave launch`, the eBPF fast datapath), containers
//                      attached with `weave attach`, connection `established fastdp`
//   (d) weave-sleeve : the same with `weave launch --no-fastdp` (`established sleeve`)
// plus experiment modes that drive the eBPF datapath (dataplane/bpf) directly,
// without a router: `ebpf` (no bpf_redirect_peer), `ebpf-peer` (with it),
// `ebpf-peer-devrx` (with it, but receiving through the VXLAN device instead of
// the underlay fast path) and the variants in `modes` below; choose with
// BENCH_MODES=comma list.
// Prints Gbit/s and RTT per round, medians, the ratios of the medians to (a)
// and (b), and the median of the per-round ratios to (b): modes run seconds
// apart within a round, so the paired ratio cancels most background load.
//
//   node dist/bench/bpf-vxlan-bench.js [seconds=5] [rounds=3]
//   BENCH_MODES=base,vxbr,ebpf,ebpf-peer node dist/bench/bpf-vxlan-bench.js
// Root needed; everything lives in namespaces (and bpffs mounts under /tmp)
// the bench creates and removes, also when it fails.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  attachContainer, connectionsMatch, createTestbed, execCommand, mustExec, mustWeave, runIperfClient, startIperfServer, stopRouters, waitForPing, weave,
  type Container, type Host, type Testbed, type WeaveOptions,
} from '../test/netns/lib/index.js';
import { BpfFastDatapath } from '../dataplane/bpf/fastdp.js';
import { ensurePinDir } from '../dataplane/bpf/bpffs.js';

const UNDERLAY_MTU = 1500;
const OVERLAY_MTU = UNDERLAY_MTU - 50;
const IDS = [0, 0x123, 0x456];

/** A mode's data path, set up on a fresh testbed whose h1 and h2 each hold one container. */
interface Prepared {
  /** Releases what the namespaces do not take with them (routers, bpffs mounts); idempotent. */
  cleanup: () => Promise<void> | void;
  /** After the rounds: why the data path may have changed under load, or undefined if it did not. */
  checkPath?: () => Promise<string | undefined>;
}

interface Bed { name: string; bed: Testbed; client: Container; serverIp: string; prepared: Prepared }

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

type Setup = (bed: Testbed) => Promise<Prepared>;

const setupBase: Setup = async (bed) => {
  for (const i of [1, 2]) {
    await addContainerPort(bed, i, UNDERLAY_MTU);
    await bridge(bed, i, ['vc', `to-h${peerOf(i)}`]);
  }
  return { cleanup: () => undefined };
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
  return { cleanup: () => undefined };
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

function ebpfSetup(tune: Tune = async () => undefined, defines: string[] | ((i: number) => string[]) = [], redirectPeer = false, receiveFastPath = true): Setup {
  return async (bed) => {
    const dps: BpfFastDatapath[] = [];
    const objectDirs: string[] = [];
    const pinRoot = join('/tmp', `${bed.prefix}-bpffs`);
    let done = false;
    const cleanup = (): void => {
      if (done) return;
      done = true;
      for (const dp of dps) dp.close();
      for (const i of [1, 2]) { try { execFileSync('umount', [join(pinRoot, `h${i}`)], { stdio: 'ignore' }); } catch { /* not mounted */ } }
      rmSync(pinRoot, { recursive: true, force: true });
      for (const dir of objectDirs) rmSync(dir, { recursive: true, force: true });
    };
    // The testbed's signal handler exits the process: unmount the pin dirs then too.
    process.on('exit', cleanup);
    try {
      for (const i of [1, 2]) {
        const d = typeof defines === 'function' ? defines(i) : defines;
        const objectDir = d.length > 0 ? buildVariant(d) : undefined;
        if (objectDir) objectDirs.push(objectDir);
        await addContainerPort(bed, i, OVERLAY_MTU);
        const dp = await BpfFastDatapath.open({ localShortId: IDS[i] as number, pinDir: join(pinRoot, `h${i}`), netns: bed.host(i).namespace, objectDir, receiveFastPath });
        dps.push(dp);
        await dp.apply({
          localPorts: [{ ifname: 'vc', macs: [`02:77:00:00:00:0${i}`], redirectPeer }],
          peers: [{ shortId: IDS[peerOf(i)] as number, underlayIp: bed.host(peerOf(i)).address }],
          broadcastTrees: [{ sourceShortId: IDS[i] as number, nextHops: [IDS[peerOf(i)] as number] }],
        });
        await tune(bed, i, dp);
      }
    } catch (err) {
      cleanup();
      throw err;
    }
    return { cleanup };
  };
}

/** Where a router's eBPF datapath pins its maps: one bpffs mount per testbed, a directory per host. */
const weavePinRoot = (bed: Testbed): string => join('/tmp', `${bed.prefix}-bpffs`);

/**
 * Real routers, as the product runs them: `weave launch` on h1 and h2 (each
 * given the other), wait until the connection shows `established <overlay>`
 * on both sides, then `weave attach` a container per host (10.32.0.<i>/12).
 * fastdp forces the eBPF datapath (WEAVE_FASTDP_DATAPATH=bpf), so a host
 * without it fails loudly instead of measuring something else.
 */
function weaveSetup(overlay: 'fastdp' | 'sleeve'): Setup {
  return async (bed) => {
    const pinRoot = weavePinRoot(bed);
    const options = (h: Host): WeaveOptions => ({
      env: overlay === 'fastdp' ? { WEAVE_FASTDP_DATAPATH: 'bpf', WEAVE_BPF_PIN_DIR: join(pinRoot, h.label) } : {},
      timeoutMs: 120_000,
    });
    let mounted = false;
    const unmount = (): void => {
      if (!mounted) return;
      mounted = false;
      try { execFileSync('umount', [pinRoot], { stdio: 'ignore' }); } catch { /* not mounted */ }
      rmSync(pinRoot, { recursive: true, force: true });
    };
    // The testbed's signal handler exits the process (and kills the routers with their namespaces): unmount then too.
    process.on('exit', unmount);
    let done = false;
    const cleanup = async (): Promise<void> => {
      if (done) return;
      done = true;
      for (const h of bed.hosts) await stopRouters([h], 'stop', options(h));
      unmount();
      process.off('exit', unmount);
    };
    const established = new RegExp(`established ${overlay} \\S+\\(h\\d\\)`);
    try {
      if (overlay === 'fastdp') {
        mounted = true;
        // The mount is made here, in this process's mount namespace, so the routers
        // (started through `ip netns exec`, which remounts /sys) see it.
        for (const dir of [pinRoot, ...bed.hosts.map((h) => join(pinRoot, h.label))]) ensurePinDir(dir);
      }
      for (const h of bed.hosts) {
        const others = bed.hosts.filter((o) => o !== h).map((o) => o.address);
        await mustWeave(h, ['launch', '--nickname', h.label, ...(overlay === 'sleeve' ? ['--no-fastdp'] : []), ...others], options(h));
      }
      for (const h of bed.hosts) await connectionsMatch(h, established, { timeoutMs: 90_000 });
      for (const h of bed.hosts) await attachContainer(h, options(h));
    } catch (err) {
      await cleanup();
      throw err;
    }
    const checkPath = async (): Promise<string | undefined> => {
      for (const h of bed.hosts) {
        const out = (await weave(h, ['status', 'connections'], options(h))).stdout;
        if (!established.test(out)) return `${h.label} no longer shows \`established ${overlay}\`:\n${out.trim()}`;
      }
      return undefined;
    };
    return { cleanup, checkPath };
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
  'weave-fastdp': weaveSetup('fastdp'),
  'weave-sleeve': weaveSetup('sleeve'),
  // experiments: the eBPF datapath driven directly, without a router
  ebpf: ebpfSetup(),
  'ebpf-peer': ebpfSetup(undefined, [], true),
  // without the receive fast path at the underlay: every received frame passes the external VXLAN device
  'ebpf-peer-devrx': ebpfSetup(undefined, [], true, false),
  'ebpf-classic': ebpfSetup(classicDevice, (i) => [`WEAVE_EXPERIMENT_CLASSIC_DEVICE=${(IDS[peerOf(i)] as number) | ((IDS[i] as number) << 12)}`]),
  'ebpf-csum-nodf': ebpfSetup(undefined, ['WEAVE_TUNNEL_FLAGS=0']),
  'ebpf-vxgro-off': ebpfSetup(ethtool('vxlan-6784', 'gro', 'off')),
  'ebpf-ulgrofwd': ebpfSetup(async (bed, i, dp) => ethtool(`to-h${peerOf(i)}`, 'rx-udp-gro-forwarding', 'on')(bed, i, dp)),
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
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
  const srv = await startIperfServer(server, { port: 5201 });
  try {
    const r = await runIperfClient(b.client, ['-c', b.serverIp, '-p', '5201', '-t', String(seconds)], { timeoutMs: (seconds + 20) * 1000 })
      .catch((err: Error) => { throw new Error(`${b.name}: ${err.message}`); });
    return r.receivedBitsPerSecond / 1e9;
  } finally {
    await srv.stop();
  }
}

interface Rtt { medianMs: number; avgMs: number; lost: number }

const PING_COUNT = 20;

/** 20 echoes 50 ms apart on the idle path: the median echo (robust to a loaded machine) and ping's own average. */
async function pingRtt(b: Bed): Promise<Rtt> {
  const r = await b.client.exec('ping', ['-n', '-c', String(PING_COUNT), '-i', '0.05', '-W', '1', b.serverIp], { timeoutMs: 30_000 });
  const times = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const avg = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  if (times.length === 0 || !avg) throw new Error(`ping in ${b.name} got no replies: ${r.stdout.slice(-300)} ${r.stderr}`);
  return { medianMs: median(times), avgMs: Number(avg[1]), lost: PING_COUNT - times.length };
}

/** One table: per mode the median over rounds, its ratios to base and vxbr, the median of per-round ratios to vxbr, and the rounds. */
function printTable(title: string, unit: string, digits: number, results: Map<string, number[]>): void {
  const med = new Map([...results].map(([n, xs]) => [n, median(xs)]));
  const base = med.get('base');
  const vxbr = med.get('vxbr');
  const vxbrRounds = results.get('vxbr');
  const ratio = (x: number, to: number | undefined): string => (to ? (x / to).toFixed(2) : '-').padStart(6);
  process.stdout.write(`\n${title.padEnd(16)}${`median ${unit}`.padStart(14)}  /base  /vxbr  per-round /vxbr (median)  rounds\n`);
  for (const [n, xs] of results) {
    const m = med.get(n) as number;
    // Rounds are interleaved, so round r of every mode ran within seconds of round r of vxbr.
    const paired = vxbrRounds ? xs.map((x, r) => x / (vxbrRounds[r] as number)) : [];
    process.stdout.write(`${n.padEnd(16)}${m.toFixed(digits).padStart(14)} ${ratio(m, base)} ${ratio(m, vxbr)}` +
      `  ${(paired.length ? median(paired).toFixed(2) : '-').padStart(24)}  ${xs.map((x) => x.toFixed(digits)).join(' ')}\n`);
  }
}

/** The MTU of the container interface that routes to `ip` (it bounds the TCP segment size the mode carries). */
async function containerMtu(c: Container, ip: string): Promise<string> {
  const r = await c.run(`d=$(ip -o route get ${ip} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'); cat /sys/class/net/$d/mtu`);
  return r.code === 0 ? r.stdout.trim() : '?';
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const rounds = Number(process.argv[3] ?? 3);
  if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`seconds must be a positive integer, got "${process.argv[2]}"`);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be a positive integer, got "${process.argv[3]}"`);
  const names = (process.env.BENCH_MODES ?? 'base,vxbr,weave-fastdp,weave-sleeve').split(',').map((n) => n.trim()).filter((n) => n !== '');
  for (const name of names) {
    if (!modes[name]) throw new Error(`unknown mode "${name}" in BENCH_MODES (have ${Object.keys(modes).join(', ')})`);
  }
  const beds: Bed[] = [];
  try {
    for (const name of names) {
      const setup = modes[name] as Setup;
      const bed = await createTestbed({ hosts: 2, underlay: 'mesh-veths' });
      let prepared: Prepared;
      try {
        prepared = await setup(bed);
      } catch (err) {
        await bed.teardown();
        throw err;
      }
      const client = bed.host(1).containers[0] as Container;
      beds.push({ name, bed, client, serverIp: '10.32.0.2', prepared });
      if (!(await waitForPing(client, '10.32.0.2', 30_000))) throw new Error(`${name}: c1 cannot ping c2 (10.32.0.2) within 30 s`);
      process.stdout.write(`${name.padEnd(16)} ready, container MTU ${await containerMtu(client, '10.32.0.2')}\n`);
    }
    const gbps = new Map<string, number[]>(names.map((n) => [n, []]));
    const rttMedian = new Map<string, number[]>(names.map((n) => [n, []]));
    const rttAvg = new Map<string, number[]>(names.map((n) => [n, []]));
    const events = new Map<string, { rcu: number; ctxt: number }[]>(names.map((n) => [n, []]));
    for (let r = 0; r < rounds; r++) {
      // Alternate the order every round so no mode always runs right after the same neighbour.
      for (const b of r % 2 === 0 ? beds : [...beds].reverse()) {
        const rtt = await pingRtt(b);
        const perf = r === 0 ? startPerf(b.name, seconds) : undefined;
        const k0 = kernelEventCounts();
        const g = await iperf(b, seconds);
        const k1 = kernelEventCounts();
        await perf;
        const gbytes = (g * seconds) / 8;
        events.get(b.name)?.push({ rcu: (k1.rcuSoftirqs - k0.rcuSoftirqs) / gbytes, ctxt: (k1.contextSwitches - k0.contextSwitches) / gbytes });
        gbps.get(b.name)?.push(g);
        rttMedian.get(b.name)?.push(rtt.medianMs);
        rttAvg.get(b.name)?.push(rtt.avgMs);
        process.stdout.write(`round ${r + 1} ${b.name.padEnd(16)} ${g.toFixed(2).padStart(6)} Gbit/s  RTT median ${rtt.medianMs.toFixed(3)} ms` +
          ` avg ${rtt.avgMs.toFixed(3)} ms${rtt.lost ? ` (${rtt.lost}/${PING_COUNT} lost)` : ''}\n`);
      }
    }
    printTable('TCP', 'Gbit/s', 2, gbps);
    printTable('RTT (median)', 'ms', 3, rttMedian);
    printTable('RTT (avg)', 'ms', 3, rttAvg);
    process.stdout.write('\nmode              RCU softirqs/GB  context switches/GB  (medians, whole machine)\n');
    for (const [n, es] of events) {
      process.stdout.write(`${n.padEnd(18)}${median(es.map((e) => e.rcu)).toFixed(0).padStart(10)}  ${median(es.map((e) => e.ctxt)).toFixed(0).padStart(16)}\n`);
    }
    for (const b of beds) {
      const changed = await b.prepared.checkPath?.();
      process.stdout.write(changed ? `\nWARNING ${b.name}: ${changed}\n` : '');
      if (b.prepared.checkPath && !changed) process.stdout.write(`${b.name}: connections still on the same overlay after the rounds\n`);
    }
  } finally {
    for (const b of beds) {
      try {
        await b.prepared.cleanup();
      } catch (err) {
        process.stderr.write(`${b.name}: cleanup failed (the namespaces are removed anyway): ${(err as Error).message}\n`);
      }
      await b.bed.teardown();
    }
  }
}

await main();
