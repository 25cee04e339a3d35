// Runs INSIDE the kernel lab VM: the router's OVS fast datapath (spec §6)
// between two simulated hosts. Each host is a namespace with a `weave` bridge,
// one container namespace on it, and an OvsFastDatapath; the hosts share a
// veth underlay (172.31.0.x). The two forwarders' control messages are wired
// to each other in-process, as two routers' control connections would carry them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mustRun, pollUntil, runCommand, uniqueSuffix } from '../../support/exec.js';
import { OdpConnection, getVport, listDatapaths, listFlows, output, setTunnel, weaveTunnelId, type Flow } from '../../../dataplane/ovs/index.js';
import { DATAPATH_SIDE_VETH, OvsFastDatapath, vxlanVportName } from '../../../dataplane/ovs/fastdp/index.js';
import { ovsDatapath } from '../../../dataplane/ovs/descriptor.js';
import { encodeHeartbeat, parseHeartbeat } from '../../../dataplane/fastdp/heartbeat.js';
import type { ForwarderParams, ForwardingState, OverlayForwarder } from '../../../controlplane/router/datapath.js';
import { addBridgedContainer, addNamespaces, addWeaveBridge, deleteNamespaces, ipBatch, loadOpenvswitch, pairForwarders } from './ovs-fastdp-setup.js';

const run = uniqueSuffix(4);
const DP = 'datapath';
const MTU = 1376;
const PEER_A = 0xaa0000000001n;
const PEER_B = 0xbb0000000002n;
const ID_A = 1;
const ID_B = 2;
const UL_A = '172.31.0.1';
const UL_B = '172.31.0.2';

interface Host {
  name: string;
  ns: string;
  cns: string;
  mac: string;
  ip: string;
  underlay: string;
  peer: bigint;
  shortId: number;
}

const hostA: Host = { name: 'A', ns: `wtf-${run}-ha`, cns: `wtf-${run}-ca`, mac: '02:00:0a:20:00:01', ip: '10.32.0.1', underlay: UL_A, peer: PEER_A, shortId: ID_A };
const hostB: Host = { name: 'B', ns: `wtf-${run}-hb`, cns: `wtf-${run}-cb`, mac: '02:00:0a:20:00:02', ip: '10.32.0.2', underlay: UL_B, peer: PEER_B, shortId: ID_B };
const namespaces = [hostA.ns, hostB.ns, hostA.cns, hostB.cns];
const logs: string[] = [];
const opened: OvsFastDatapath[] = [];

before(async () => {
  loadOpenvswitch();
  await addNamespaces(namespaces);
  await ipBatch(hostA.ns, [`link add ul type veth peer name ul netns ${hostB.ns}`]);
  for (const h of [hostA, hostB]) {
    await ipBatch(h.ns, [`addr add ${h.underlay}/24 dev ul`, 'link set ul up']);
    await addWeaveBridge(h.ns, MTU);
    await addBridgedContainer(h.ns, h, MTU);
  }
});

after(async () => {
  await Promise.allSettled(opened.map((d) => d.close()));
  await deleteNamespaces(namespaces);
});

function openDatapath(h: Host): Promise<OvsFastDatapath> {
  return OvsFastDatapath.open({
    netns: h.ns,
    datapathName: DP,
    bridgeName: 'weave',
    mtu: MTU,
    port: 6783,
    // Heartbeats after the acknowledgement would be misses of their own; keep them out of the miss counts.
    forwarderTimings: { slowIntervalMs: 600_000, timeoutMs: 600_000 },
    log: (m) => logs.push(`${h.name}: ${m}`),
  }).then((d) => {
    opened.push(d);
    return d;
  });
}

function stateFor(us: Host, them: Host): ForwardingState {
  return {
    ourName: us.peer,
    ourShortId: us.shortId,
    peers: [
      { name: us.peer, shortId: us.shortId, nextHop: us.peer },
      { name: them.peer, shortId: them.shortId, nextHop: them.peer },
    ],
    neighbours: [{ name: them.peer, overlay: 'fastdp', remoteIp: them.underlay }],
    broadcast: [
      { source: us.peer, nextHops: [them.peer] },
      { source: them.peer, nextHops: [] },
    ],
  };
}

/** Two forwarders whose control messages go straight to each other; resolves when both are established. */
async function connect(a: OvsFastDatapath, b: OvsFastDatapath, connUID: bigint): Promise<{ fa: OverlayForwarder; fb: OverlayForwarder; acksSent: number[] }> {
  const acksSent = [0, 0];
  const params = (us: Host, them: Host, outbound: boolean): ForwarderParams => ({
    remoteName: them.peer,
    remoteShortId: them.shortId,
    remoteIp: them.underlay,
    remotePort: 6784,
    localIp: us.underlay,
    outbound,
    connUID,
    encrypt: false,
  });
  const [fa, fb] = await pairForwarders('both fastdp forwarders established', { datapath: a, params: params(hostA, hostB, true) }, { datapath: b, params: params(hostB, hostA, false) }, {
    log: (line) => logs.push(line),
    onSend: (i, subTag) => {
      if (subTag === 0) acksSent[i]++;
    },
  });
  return { fa, fb, acksSent };
}

async function ping(from: Host, to: Host, count: number, interval = '0.2'): Promise<string> {
  const r = await runCommand('ip', ['netns', 'exec', from.cns, 'ping', '-n', '-c', String(count), '-i', interval, '-W', '3', to.ip], { timeoutMs: 90_000 });
  assert.equal(r.code, 0, `ping ${from.ip} -> ${to.ip} failed:\n${r.stdout}\n${logs.join('\n')}`);
  assert.match(r.stdout, new RegExp(`${count} packets transmitted, ${count} received`));
  return r.stdout;
}

const isEthFlow = (src: string, dst: string) => (f: Flow) => f.key.ethernet?.src === src && f.key.ethernet?.dst === dst;

async function flowPackets(odp: OdpConnection, dp: number, src: string, dst: string): Promise<bigint> {
  const f = (await listFlows(odp, dp)).find(isEthFlow(src, dst));
  assert.ok(f, `a flow ${src} -> ${dst} is installed`);
  return f.stats.packets;
}

test('two hosts: fastdp heartbeats establish, ping runs through kernel flows, survives a router restart, teardown removes all', async () => {
  let a = await openDatapath(hostA);
  const b = await openDatapath(hostB);
  assert.equal(a.overlay, 'fastdp');
  assert.equal(a.kind, 'ovs');
  a.applyForwardingState(stateFor(hostA, hostB));
  b.applyForwardingState(stateFor(hostB, hostA));

  // spec §6.4: VXLAN heartbeats, each side acknowledges over the control connection once.
  const { fa, fb, acksSent } = await connect(a, b, 0x1122334455667788n);
  assert.equal(fa.status().state, 'established');
  assert.equal(fb.status().state, 'established');
  assert.equal(fa.status().mtu, MTU);
  assert.deepEqual(acksSent, [1, 1]);

  // ARP goes the broadcast path, then unicast flows carry the ping.
  await ping(hostA, hostB, 3);
  await ping(hostB, hostA, 2);

  const odpA = await OdpConnection.open({ netns: hostA.ns });
  const odpB = await OdpConnection.open({ netns: hostB.ns });
  try {
    const bridgePortA = (await getVport(odpA, a.dp, DATAPATH_SIDE_VETH)).portNo;
    const bridgePortB = (await getVport(odpB, b.dp, DATAPATH_SIDE_VETH)).portNo;
    const vxA = (await getVport(odpA, a.dp, vxlanVportName(6784))).portNo;
    const vxB = (await getVport(odpB, b.dp, vxlanVportName(6784))).portNo;

    // spec §6.6: egress on A is set(tunnel id 1 | 2 << 12, A -> B) + output(vxlan).
    const flowsA = await listFlows(odpA, a.dp);
    const egress = flowsA.find(isEthFlow(hostA.mac, hostB.mac));
    assert.ok(egress, `A has a flow for ${hostA.mac} -> ${hostB.mac}:\n${JSON.stringify(flowsA, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
    assert.equal(egress.key.inPort, bridgePortA);
    assert.deepEqual(egress.actions, [setTunnel({ id: weaveTunnelId(ID_A, ID_B), ipv4Src: UL_A, ipv4Dst: UL_B, ttl: 64, dontFragment: true }), output(vxA)]);
    // The broadcast (ARP request) got a flow too: flood locally and tunnel to B.
    const arp = flowsA.find(isEthFlow(hostA.mac, 'ff:ff:ff:ff:ff:ff'));
    assert.ok(arp, 'A has a broadcast flow from its container');
    assert.ok(arp.actions.some((x) => x.type === 'set-tunnel' && x.tunnel.id === weaveTunnelId(ID_A, ID_B)));
    // Ingress on B matches the tunnel and outputs to the bridge port.
    const ingress = (await listFlows(odpB, b.dp)).find(isEthFlow(hostA.mac, hostB.mac));
    assert.ok(ingress, 'B has an ingress flow');
    assert.equal(ingress.key.inPort, vxB);
    assert.equal(ingress.key.tunnel?.id, weaveTunnelId(ID_A, ID_B));
    assert.equal(ingress.key.tunnel?.ipv4Src, UL_A);
    assert.deepEqual(ingress.actions, [output(bridgePortB)]);
    // No flow is ever made for heartbeats (zero MACs).
    assert.ok(!flowsA.some(isEthFlow('00:00:00:00:00:00', '00:00:00:00:00:00')), 'no heartbeat flow');

    // With flows in place the misses stop while the flows count the packets.
    const missesA = (await a.readStats()).missed;
    const missesB = (await b.readStats()).missed;
    const packetsA = await flowPackets(odpA, a.dp, hostA.mac, hostB.mac);
    const packetsB = await flowPackets(odpB, b.dp, hostA.mac, hostB.mac);
    await ping(hostA, hostB, 10, '0.1');
    const statsA = await a.readStats();
    assert.equal(statsA.missed, missesA, 'no new misses on A');
    assert.equal((await b.readStats()).missed, missesB, 'no new misses on B');
    assert.ok((await flowPackets(odpA, a.dp, hostA.mac, hostB.mac)) >= packetsA + 10n);
    assert.ok((await flowPackets(odpB, b.dp, hostA.mac, hostB.mac)) >= packetsB + 10n);
    assert.ok(statsA.hit > 0n && statsA.flows >= 2n, `A stats hit=${statsA.hit} flows=${statsA.flows}`);
    assert.equal(a.stats().userspace, statsA.missed);
    assert.equal(a.stats().kernelForwarded, statsA.hit);

    // A router restart: close A's datapath mid-ping, open a new one; kernel flows keep forwarding.
    const pinger = spawn('ip', ['netns', 'exec', hostA.cns, 'ping', '-n', '-c', '25', '-i', '0.2', '-W', '3', hostB.ip], { stdio: ['ignore', 'pipe', 'ignore'] });
    let pingOut = '';
    pinger.stdout.on('data', (d: Buffer) => (pingOut += d.toString()));
    const pingDone = new Promise<number | null>((resolve) => pinger.on('exit', resolve));
    await pollUntil('the ongoing ping to get a reply', 10_000, async () => (/icmp_seq=/.test(pingOut) ? true : undefined));
    fa.stop();
    await a.close();
    assert.ok((await listFlows(odpA, a.dp)).some(isEthFlow(hostA.mac, hostB.mac)), 'close() keeps the flows');
    a = await openDatapath(hostA);
    a.applyForwardingState(stateFor(hostA, hostB));
    fb.stop();
    await connect(a, b, 0x99887766n);
    assert.equal(await pingDone, 0, `the ping across the restart was answered:\n${pingOut}`);
    assert.match(pingOut, /25 packets transmitted, 25 received/);

    // The descriptor's teardown after close: nothing of ours is left.
    await a.close();
    await b.close();
    for (const h of [hostA, hostB]) await ovsDatapath.teardown({ netns: h.ns });
    assert.deepEqual(await listDatapaths(odpA), []);
    assert.deepEqual(await listDatapaths(odpB), []);
    for (const h of [hostA, hostB]) {
      const links = await mustRun('ip', ['-n', h.ns, '-o', 'link', 'show']);
      assert.doesNotMatch(links, /vethwe-|vxlan_sys|: datapath[:@]/, `links left in ${h.name}:\n${links}`);
    }
  } finally {
    odpA.close();
    odpB.close();
  }
});

test('heartbeat frames: 14 zero bytes, connUID, total length, padded to 14 + MTU (spec §6.4)', () => {
  const frame = encodeHeartbeat(0x0102030405060708n, 1376);
  assert.equal(frame.length, 1390);
  assert.equal(frame.subarray(0, 24).toString('hex'), '0000000000000000000000000000' + '0102030405060708' + '056e');
  assert.ok(frame.subarray(24).every((b) => b === 0));
  assert.equal(parseHeartbeat(frame), 0x0102030405060708n);
  // A frame cut short by the underlay, or any non-zero MAC, is not a heartbeat.
  assert.equal(parseHeartbeat(frame.subarray(0, 1000)), undefined);
  const withMac = Buffer.from(frame);
  withMac[11] = 1;
  assert.equal(parseHeartbeat(withMac), undefined);
  assert.throws(() => encodeHeartbeat(1n, 5), /MTU 5 is out of range/);
});
