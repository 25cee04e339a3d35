// Bulk TCP between two containers on two simulated hosts, three ways, inside
// the kernel lab VM (it has openvswitch; the guest is emulated, so only the
// ratios mean anything):
//   veth   : the two container namespaces joined by one veth pair (no overlay)
//   vxbr   : kernel VXLAN (UDP 6784) + a Linux bridge per host
//   fastdp : OvsFastDatapath (dataplane/ovs/fastdp) with Weave's VNI layout
//
//   test/vm/kernel-lab.sh -t 1200 -- node dist/bench/ovs-fastdp-bench.js [seconds=5]
import { execFileSync } from 'node:child_process';
import { mustRun, pollUntil, runCommand, uniqueSuffix } from '../test/support/exec.js';
import { iperfNodeIn, runIperfClient, startIperfServer } from '../test/netns/lib/iperf.js';
import { OvsFastDatapath } from '../dataplane/ovs/fastdp/index.js';
import { ovsDatapath } from '../dataplane/ovs/descriptor.js';
import type { ForwarderEvents, ForwardingState, OverlayForwarder } from '../controlplane/router/datapath.js';

const seconds = Number(process.argv[2] ?? 5);
const run = uniqueSuffix(4);
const MTU = 1376;
const namespaces: string[] = [];
const datapaths: OvsFastDatapath[] = [];

async function ipBatch(ns: string | undefined, lines: string[]): Promise<void> {
  await mustRun('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], { input: lines.join('\n') + '\n' });
}

async function addNamespaces(names: string[]): Promise<void> {
  namespaces.push(...names);
  await ipBatch(undefined, names.map((n) => `netns add ${n}`));
  for (const n of names) await ipBatch(n, ['link set lo up']);
}

async function iperf(serverNs: string, clientNs: string, serverIp: string): Promise<number> {
  const server = await startIperfServer(iperfNodeIn(serverNs));
  try {
    const r = await runIperfClient(iperfNodeIn(clientNs), ['-c', serverIp, '-t', String(seconds)], { timeoutMs: (seconds + 30) * 1000 });
    return r.receivedBitsPerSecond;
  } finally {
    await server.stop();
  }
}

/** Two hosts on an underlay veth, each with a container on a `weave` bridge. */
async function twoHosts(tag: string): Promise<{ h: [string, string]; c: [string, string] }> {
  const h: [string, string] = [`wbo-${run}-${tag}h1`, `wbo-${run}-${tag}h2`];
  const c: [string, string] = [`wbo-${run}-${tag}c1`, `wbo-${run}-${tag}c2`];
  await addNamespaces([...h, ...c]);
  await ipBatch(h[0], [`link add ul type veth peer name ul netns ${h[1]}`]);
  for (const i of [0, 1]) {
    await ipBatch(h[i], [
      `addr add 172.31.9.${i + 1}/24 dev ul`,
      'link set ul up',
      'link add weave type bridge',
      `link set weave mtu ${MTU} up`,
      `link add vc type veth peer name eth0 netns ${c[i]}`,
      `link set vc mtu ${MTU} master weave up`,
    ]);
    await ipBatch(c[i], [`link set eth0 address 02:00:0a:2a:00:0${i + 1} mtu ${MTU}`, `addr add 10.42.0.${i + 1}/24 dev eth0`, 'link set eth0 up']);
  }
  return { h, c };
}

async function plainVeth(): Promise<number> {
  const c = [`wbo-${run}-vc1`, `wbo-${run}-vc2`];
  await addNamespaces(c);
  await ipBatch(c[0], [`link add eth0 mtu ${MTU} type veth peer name eth0 netns ${c[1]}`, 'addr add 10.42.0.1/24 dev eth0', 'link set eth0 up']);
  await ipBatch(c[1], ['addr add 10.42.0.2/24 dev eth0', 'link set eth0 up']);
  return iperf(c[1], c[0], '10.42.0.2');
}

async function kernelVxlanBridge(): Promise<number> {
  const { h, c } = await twoHosts('x');
  for (const i of [0, 1]) {
    await ipBatch(h[i], [`link add vx type vxlan id 42 local 172.31.9.${i + 1} remote 172.31.9.${2 - i} dstport 6784`, `link set vx mtu ${MTU} master weave up`]);
  }
  return iperf(c[1], c[0], '10.42.0.2');
}

async function ovsFastdp(): Promise<number> {
  const { h, c } = await twoHosts('o');
  const peers = [1n, 2n];
  const ds = await Promise.all(h.map((ns) => OvsFastDatapath.open({ netns: ns, mtu: MTU, log: () => {} })));
  datapaths.push(...ds);
  const fwd: OverlayForwarder[] = [];
  const up = [false, false];
  for (const i of [0, 1]) {
    const j = 1 - i;
    const state: ForwardingState = {
      ourName: peers[i],
      ourShortId: i + 1,
      peers: [{ name: peers[j], shortId: j + 1, nextHop: peers[j] }],
      neighbours: [{ name: peers[j], overlay: 'fastdp', remoteIp: `172.31.9.${j + 1}` }],
      broadcast: [
        { source: peers[i], nextHops: [peers[j]] },
        { source: peers[j], nextHops: [] },
      ],
    };
    ds[i].applyForwardingState(state);
  }
  for (const i of [0, 1]) {
    const j = 1 - i;
    const events: ForwarderEvents = {
      sendControlMessage: (t, p) => fwd[j]?.handleControlMessage(t, p),
      established: () => (up[i] = true),
      healthChanged: () => {},
      failed: (e) => console.error(e.message),
    };
    fwd[i] = ds[i].createForwarder(
      { remoteName: peers[j], remoteShortId: j + 1, remoteIp: `172.31.9.${j + 1}`, remotePort: 6784, localIp: `172.31.9.${i + 1}`, outbound: i === 0, connUID: 7n, encrypt: false },
      events,
    );
  }
  await pollUntil('fastdp established', 30_000, async () => (up[0] && up[1] ? true : undefined));
  await mustRun('ip', ['netns', 'exec', c[0], 'ping', '-c', '2', '-i', '0.2', '10.42.0.2']);
  const bps = await iperf(c[1], c[0], '10.42.0.2');
  const stats = await ds[0].readStats();
  console.log(`fastdp datapath 1: ${stats.hit} packets in the kernel, ${stats.missed} misses, ${stats.flows} flows`);
  return bps;
}

async function main(): Promise<void> {
  try {
    execFileSync('modprobe', ['openvswitch'], { stdio: 'ignore' });
  } catch {
    // built in or already loaded
  }
  const veth = await plainVeth();
  const vxbr = await kernelVxlanBridge();
  const fastdp = await ovsFastdp();
  const g = (bps: number) => `${(bps / 1e9).toFixed(2)} Gbit/s`;
  console.log(`veth   ${g(veth)}`);
  console.log(`vxbr   ${g(vxbr)}   ${(vxbr / veth).toFixed(2)} x veth`);
  console.log(`fastdp ${g(fastdp)}   ${(fastdp / veth).toFixed(2)} x veth, ${(fastdp / vxbr).toFixed(2)} x kernel VXLAN+bridge`);
}

main()
  .catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const d of datapaths) await d.close().catch(() => undefined);
    for (const ns of namespaces) await ovsDatapath.teardown({ netns: ns }).catch(() => undefined);
    await runCommand('ip', ['-force', '-batch', '-'], { input: namespaces.map((n) => `netns del ${n}\n`).join('') });
  });
