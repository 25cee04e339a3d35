// The eBPF fast datapath against the real kernel: simulated hosts (namespaces)
// joined by point-to-point underlay veths, each with a container namespace on
// a 1450-byte MTU veth; the maps are filled by the test (no router).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import {
  createTestbed, mustExec, pollUntil, runIperfClient, startIperfServer, waitForPing,
  type Testbed, type Host, type Container,
} from './lib/index.js';
import { BpfFastDatapath, type DesiredState, type BpfFastDatapathOptions } from '../../dataplane/bpf/fastdp.js';
import { DatapathMaps } from '../../dataplane/bpf/maps.js';
import { deliveredFromTunnel } from './lib/bpf-bed.js';

const here = dirname(fileURLToPath(import.meta.url));
const SHORT_IDS = [0, 0x123, 0x456, 0x789]; // host i -> short id (spec §6.2 example values)
const UNDERLAY_MTU = 1500;
const CONTAINER_MTU = UNDERLAY_MTU - 50;

interface Node { host: Host; container: Container; ip: string; mac: string; port: string; pinDir: string; dp?: BpfFastDatapath }

let bed: Testbed;
const nodes: Node[] = [];
const mounts: string[] = [];

function mac(i: number): string {
  return `02:77:00:00:00:0${i}`;
}

async function plugContainer(host: Host, i: number): Promise<Node> {
  const container = await host.addContainer(`c${i}`);
  const port = `vc${i}`;
  await mustExec('ip', ['link', 'add', port, 'netns', host.namespace, 'mtu', String(CONTAINER_MTU), 'type', 'veth',
    'peer', 'name', 'eth0', 'netns', container.namespace, 'mtu', String(CONTAINER_MTU), 'address', mac(i)]);
  await mustExec('ip', ['-n', container.namespace, 'addr', 'add', `10.32.0.${i}/12`, 'dev', 'eth0']);
  await mustExec('ip', ['-n', container.namespace, 'link', 'set', 'eth0', 'up']);
  await mustExec('ip', ['-n', host.namespace, 'link', 'set', port, 'up']);
  const pinDir = join('/tmp', `${bed.prefix}-bpffs`, host.label);
  mounts.push(pinDir);
  return { host, container, ip: `10.32.0.${i}`, mac: mac(i), port, pinDir };
}

function options(n: Node): BpfFastDatapathOptions {
  return { localShortId: SHORT_IDS[n.host.index] as number, pinDir: n.pinDir, netns: n.host.namespace };
}

/** Line topology h1 - h2 - h3 (h1 and h3 have no underlay path): h2 relays. */
function stateOf(n: Node): DesiredState {
  const ip = (i: number): string => (bed.host(i).address);
  const id = (i: number): number => SHORT_IDS[i] as number;
  // h1 and h3 deliver with bpf_redirect_peer, h2 with plain bpf_redirect: both flavours are exercised.
  const local = { localPorts: [{ ifname: n.port, macs: [n.mac], redirectPeer: n.host.index !== 2 }] };
  switch (n.host.index) {
    case 1: return { ...local, peers: [{ shortId: id(2), underlayIp: ip(2) }, { shortId: id(3), underlayIp: ip(2) }],
      broadcastTrees: [{ sourceShortId: id(1), nextHops: [id(2)] }] };
    case 2: return { ...local, peers: [{ shortId: id(1), underlayIp: ip(1) }, { shortId: id(3), underlayIp: ip(3) }],
      broadcastTrees: [{ sourceShortId: id(2), nextHops: [id(1), id(3)] }, { sourceShortId: id(1), nextHops: [id(3)] },
        { sourceShortId: id(3), nextHops: [id(1)] }] };
    default: return { ...local, peers: [{ shortId: id(2), underlayIp: ip(2) }, { shortId: id(1), underlayIp: ip(2) }],
      broadcastTrees: [{ sourceShortId: id(3), nextHops: [id(2)] }] };
  }
}

function node(i: number): Node {
  return nodes[i - 1] as Node;
}

before(async () => {
  bed = await createTestbed({ hosts: 3, underlay: 'mesh-veths' });
  await bed.cutLink(bed.host(1), bed.host(3));
  for (let i = 1; i <= 3; i++) nodes.push(await plugContainer(bed.host(i), i));
  for (const n of nodes) {
    n.dp = await BpfFastDatapath.open(options(n));
    await n.dp.apply(stateOf(n));
  }
});

after(async () => {
  for (const n of nodes) n.dp?.close();
  await bed?.teardown();
  for (const m of mounts) {
    try { execFileSync('umount', [m]); } catch { /* never mounted */ }
  }
  if (bed) rmSync(join('/tmp', `${bed.prefix}-bpffs`), { recursive: true, force: true });
});

test('ARP floods and ping crosses the VXLAN tunnel both ways with the spec VNI on UDP 6784', async () => {
  const h1 = node(1);
  const h2 = node(2);
  // Capture on h1's underlay link to h2: frames h1 sends to UDP 6784 (not h2's, which
  // may come first, e.g. IPv6 multicast from c2), printed from the IP header.
  const dump = h1.host.spawn('tcpdump', ['-i', 'to-h2', '-nn', '-l', '-x', '-c', '4',
    'udp', 'dst', 'port', '6784', 'and', 'src', 'host', h1.host.address]);
  await pollUntil(() => dump.output().includes('listening on'), 5000, 50);
  assert.ok(await waitForPing(h1.container, h2.ip, 10_000), 'c1 cannot ping c2');
  assert.ok(await h2.container.ping(h1.ip, { count: 3 }), 'c2 cannot ping c1');
  await Promise.race([dump.exited, new Promise((r) => setTimeout(r, 5000))]);
  dump.kill('SIGTERM');
  const hex = dump.output().split('\n').filter((l) => /^\s+0x[0-9a-f]+:/.test(l))
    .map((l) => l.replace(/^\s+0x[0-9a-f]+:\s+/, '').replace(/\s+/g, '')).join('');
  // First captured packet: IPv4 header (20 bytes, DF set) + UDP (8) + VXLAN header.
  assert.ok(hex.length >= 72, `no VXLAN frame captured:\n${dump.output()}`);
  assert.equal(parseInt(hex.slice(12, 14), 16) & 0x40, 0x40, 'outer DF bit (spec §6.2)');
  assert.equal(hex.slice(44, 48), '1a80', 'UDP destination port 6784');
  assert.equal(hex.slice(52, 56), '0000', 'outer UDP checksum 0 (spec §6.2)');
  // VNI = src 0x123 | dst 0x456 << 12 -> bytes 45 61 23 (spec §6.2 example).
  assert.equal(hex.slice(56, 72), '0800000045612300', 'VXLAN header with VNI src|dst<<12');
});

test('remote MACs are learned in the kernel from the VNI source short id', async () => {
  assert.ok(await waitForPing(node(1).container, node(2).ip, 10_000));
  const learned = node(2).dp?.listLearnedMacs() ?? [];
  const c1 = learned.find((e) => e.mac === node(1).mac);
  assert.ok(c1, `h2 did not learn c1's MAC: ${JSON.stringify(learned)}`);
  assert.equal(c1.peerShortId, SHORT_IDS[1]);
  assert.ok(c1.ageSec < 60);
});

test('TCP transfer both ways is forwarded in the kernel, nothing goes to userspace', async () => {
  const h1 = node(1);
  const h2 = node(2);
  const before1 = h1.dp?.readCounters();
  const server = await startIperfServer(h2.container, { port: 5201 });
  const fwd = await runIperfClient(h1.container, ['-c', h2.ip, '-p', '5201', '-t', '1']).finally(() => server.stop());
  const rev = await startIperfServer(h1.container, { port: 5202 });
  const back = await runIperfClient(h2.container, ['-c', h1.ip, '-p', '5202', '-t', '1']).finally(() => rev.stop());
  for (const r of [fwd, back]) {
    const bytes = r.receivedBytes;
    assert.ok(bytes > 1_000_000, `only ${bytes} bytes crossed`);
  }
  const after1 = h1.dp?.readCounters();
  assert.ok(before1 && after1);
  assert.ok(after1.fwd_to_tunnel - before1.fwd_to_tunnel > 100, 'h1 encapsulated in the kernel');
  assert.ok(deliveredFromTunnel(after1) - deliveredFromTunnel(before1) > 100, 'h1 delivered from the tunnel in the kernel');
  assert.ok(after1.fwd_from_underlay - before1.fwd_from_underlay > 100, 'h1 decapsulated the stream at its underlay interface (receive fast path)');
  assert.equal(after1.to_userspace, 0, 'no packet went to userspace');
  const drops = Object.entries(after1).filter(([k, v]) => k.startsWith('drop_') && v > 0);
  assert.deepEqual(drops, [], 'no drops');
});

test('broadcast and unicast reach h3 through h2, which relays tunnel to tunnel', async () => {
  const h1 = node(1);
  const h2 = node(2);
  const h3 = node(3);
  assert.equal(await h1.host.ping(h3.host.address, { count: 1 }), false, 'h1 and h3 must have no underlay path');
  const relayBefore = h2.dp?.readCounters();
  assert.ok(await waitForPing(h1.container, h3.ip, 10_000), 'c1 cannot ping c3 via h2');
  assert.ok(await h3.container.ping(h1.ip, { count: 2 }), 'c3 cannot ping c1 via h2');
  const relayAfter = h2.dp?.readCounters();
  assert.ok(relayBefore && relayAfter);
  assert.ok(relayAfter.flood_tunnel_copy > relayBefore.flood_tunnel_copy, 'h2 relayed a broadcast along the tree');
  assert.ok(relayAfter.fwd_relay - relayBefore.fwd_relay >= 4, 'h2 relayed unicast tunnel to tunnel');
  const c1AtH3 = h3.dp?.listLearnedMacs().find((e) => e.mac === h1.mac);
  assert.equal(c1AtH3?.peerShortId, SHORT_IDS[1], 'h3 learned c1 from the original source short id');
});

test('the peer table reads back, in one batch, exactly the peers applied', () => {
  for (const n of [node(1), node(2), node(3)]) {
    const pinned = DatapathMaps.openPinned(n.pinDir);
    try {
      const got = [...pinned.listPeerEntries()].map(([id, p]) => [id, p.underlayIp, p.receiveOnly]).sort();
      const want = stateOf(n).peers.map((p) => [p.shortId, p.underlayIp, false]).sort();
      assert.deepEqual(got, want, `peers of h${n.host.index}`);
    } finally {
      pinned.close();
    }
  }
});

test('a restarted loader process keeps an ongoing ping going (same pinned maps)', async () => {
  const h1 = node(1);
  const h2 = node(2);
  assert.ok(await waitForPing(h1.container, h2.ip, 10_000));
  // iputils ping when installed, else BusyBox's (both take -i and -c).
  const hasPing = (await h1.container.run('command -v ping')).code === 0;
  const [cmd, ...pre] = hasPing ? ['ping'] : ['busybox', 'ping'];
  const ping = h1.container.spawn(cmd as string, [...pre, '-i', '0.01', '-c', '300', h2.ip]);
  await pollUntil(() => /seq=20 /.test(ping.output()), 10_000, 20);
  for (const n of [h1, h2]) {
    const agent = await mustExec(process.execPath, [join(here, 'bpf-agent.js'), JSON.stringify({ options: options(n), state: stateOf(n) })]);
    assert.match(agent.stdout, /"fwd_to_tunnel":\d+/);
  }
  assert.equal(await ping.exited, 0, ping.output().slice(-400));
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(ping.output());
  assert.ok(m, ping.output().slice(-400));
  assert.ok(Number(m[1]) - Number(m[2]) <= 1, `lost ${Number(m[1]) - Number(m[2])} of ${m[1]} pings across the restart`);
  // The maps the new process used are the ones the old one still has open.
  const pinned = DatapathMaps.openPinned(h1.pinDir);
  try {
    assert.ok(pinned.readCounters().fwd_to_tunnel >= (h1.dp?.readCounters().fwd_to_tunnel ?? Infinity));
  } finally {
    pinned.close();
  }
});
