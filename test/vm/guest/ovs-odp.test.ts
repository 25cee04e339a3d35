// Runs INSIDE the kernel lab VM (its kernel has the openvswitch module): the
// ODP client in dataplane/ovs drives real datapaths. Each test builds its own
// "host" namespace(s) with two "container" namespaces on veths, and removes
// them afterwards. Spec §6.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mustRun, runCommand, uniqueSuffix } from '../../support/exec.js';
import {
  OdpConnection,
  UpcallReceiver,
  createDatapath,
  createFlow,
  createVport,
  deleteDatapath,
  deleteFlow,
  deleteVport,
  exactMask,
  executePacket,
  getDatapath,
  getFlow,
  getVport,
  isOdpExists,
  listDatapaths,
  listFlows,
  listVports,
  output,
  setTunnel,
  setVportUpcallPid,
  weaveTunnelId,
  type FlowKey,
  type FlowSpec,
  type Upcall,
} from '../../../dataplane/ovs/index.js';
import { isNetlinkError } from '../../../dataplane/netlink/index.js';
import { DEFAULT_FASTDP_PORT } from '../../../controlplane/well-known.js';

const run = uniqueSuffix(4);
const DP = 'wtdp';
const MAC1 = '02:00:00:00:01:01';
const MAC2 = '02:00:00:00:02:02';

before(() => {
  // The ODP families appear once the module is loaded; loading twice is harmless.
  try {
    execFileSync('modprobe', ['openvswitch'], { stdio: 'ignore' });
  } catch {
    // built in or already loaded: OdpConnection.open tells
  }
});

/** `ip -n NS -batch -`: one process for many commands (the VM is slow to spawn). */
async function ipBatch(ns: string | undefined, lines: string[]): Promise<void> {
  await mustRun('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], { input: lines.join('\n') + '\n' });
}

interface Container {
  ns: string;
  /** The veth end in the host namespace (to attach as a netdev vport). */
  hostIf: string;
  mac: string;
  ip: string;
}

/** A host namespace with two containers (veths vc1/vc2 in the host, eth0 inside). */
interface Host {
  ns: string;
  c1: Container;
  c2: Container;
}

const created: string[] = [];

async function makeNamespaces(names: string[]): Promise<void> {
  created.push(...names);
  await ipBatch(undefined, names.map((n) => `netns add ${n}`));
}

async function removeNamespaces(): Promise<void> {
  const names = created.splice(0);
  if (names.length > 0) await runCommand('ip', ['-force', '-batch', '-'], { input: names.map((n) => `netns del ${n}\n`).join('') });
}

/** Creates container namespace `c.ns` on a veth into `hostNs`, with a static neighbour for `peer`. */
async function plugContainer(hostNs: string, c: Container, peer: { ip: string; mac: string }): Promise<void> {
  await ipBatch(hostNs, [`link add ${c.hostIf} type veth peer name eth0 netns ${c.ns}`, `link set ${c.hostIf} up`]);
  // Static neighbours: ARP broadcasts would need flood flows, which these tests do not install.
  await ipBatch(c.ns, [
    'link set lo up',
    `link set eth0 address ${c.mac}`,
    `addr add ${c.ip}/24 dev eth0`,
    'link set eth0 up',
    `neigh replace ${peer.ip} lladdr ${peer.mac} dev eth0 nud permanent`,
  ]);
}

async function makeHost(tag: string): Promise<Host> {
  const host: Host = {
    ns: `wto-${run}-${tag}h`,
    c1: { ns: `wto-${run}-${tag}c1`, hostIf: 'vc1', mac: MAC1, ip: '10.9.0.1' },
    c2: { ns: `wto-${run}-${tag}c2`, hostIf: 'vc2', mac: MAC2, ip: '10.9.0.2' },
  };
  await makeNamespaces([host.ns, host.c1.ns, host.c2.ns]);
  await plugContainer(host.ns, host.c1, host.c2);
  await plugContainer(host.ns, host.c2, host.c1);
  return host;
}

function ping(from: Container, to: string, count: number): Promise<{ code: number; stdout: string }> {
  return runCommand('ip', ['netns', 'exec', from.ns, 'ping', '-n', '-c', String(count), '-i', '0.2', '-W', '2', to], { timeoutMs: 60_000 });
}

async function mustPing(from: Container, to: string, count: number): Promise<void> {
  const r = await ping(from, to, count);
  assert.equal(r.code, 0, `ping ${from.ip} -> ${to} failed:\n${r.stdout}`);
  assert.match(r.stdout, new RegExp(`${count} packets transmitted, ${count} received`));
}

function unicast(inPort: number, src: string, dst: string, outPort: number): FlowSpec {
  const key: FlowKey = { inPort, ethernet: { src, dst } };
  return { key, mask: exactMask(key), actions: [output(outPort)] };
}

/** Waits for the first upcall accepted by `match`, within `timeoutMs`. */
async function waitUpcall(rx: UpcallReceiver, timeoutMs: number, match: (u: Upcall) => boolean): Promise<Upcall> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const found = (await rx.receive(deadline - Date.now())).find(match);
    if (found) return found;
  }
  throw new Error(`no matching upcall within ${timeoutMs} ms`);
}

const isIcmpBetween = (inPort: number, src: string, dst: string) => (u: Upcall) =>
  u.kind === 'miss' && u.key.inPort === inPort && u.key.ethernet?.src === src && u.key.ethernet?.dst === dst && u.key.ethertype === 0x0800;

test('exact-match flows forward a ping between two containers, and their counters grow', async () => {
  const host = await makeHost('a');
  const odp = await OdpConnection.open({ netns: host.ns });
  try {
    const dp = await createDatapath(odp, DP);
    assert.equal(dp.name, DP);
    assert.ok(dp.ifindex > 0);
    await assert.rejects(createDatapath(odp, DP), (e: unknown) => isNetlinkError(e, 'EEXIST') && /datapath "wtdp" exists/.test((e as Error).message));
    assert.deepEqual((await listDatapaths(odp)).map((d) => d.name), [DP]);

    const internal = await createVport(odp, dp.ifindex, { type: 'internal', name: 'wtint' });
    const p1 = await createVport(odp, dp.ifindex, { type: 'netdev', name: host.c1.hostIf });
    const p2 = await createVport(odp, dp.ifindex, { type: 'netdev', name: host.c2.hostIf });
    const vx = await createVport(odp, dp.ifindex, { type: 'vxlan', name: 'vxlan-6784', dstPort: DEFAULT_FASTDP_PORT });
    assert.equal(internal.type, 'internal');
    assert.equal(p1.type, 'netdev');
    assert.equal(vx.type, 'vxlan');
    assert.equal(vx.dstPort, DEFAULT_FASTDP_PORT);
    const ports = await listVports(odp, dp.ifindex);
    assert.deepEqual(
      ports.map((v) => `${v.portNo}:${v.name}:${v.type}`).sort(),
      [`0:${DP}:internal`, `${internal.portNo}:wtint:internal`, `${p1.portNo}:vc1:netdev`, `${p2.portNo}:vc2:netdev`, `${vx.portNo}:vxlan-6784:vxlan`].sort(),
    );

    const f12 = unicast(p1.portNo, MAC1, MAC2, p2.portNo);
    const f21 = unicast(p2.portNo, MAC2, MAC1, p1.portNo);
    await createFlow(odp, dp.ifindex, f12);
    await createFlow(odp, dp.ifindex, f21);
    await mustPing(host.c1, host.c2.ip, 3);

    const flows = await listFlows(odp, dp.ifindex);
    assert.equal(flows.length, 2);
    const there = flows.find((f) => f.key.inPort === p1.portNo);
    assert.ok(there, 'flow from vc1 is listed');
    assert.deepEqual(there.key.ethernet, { src: MAC1, dst: MAC2 });
    assert.deepEqual(there.actions, [output(p2.portNo)]);
    assert.ok(there.stats.packets >= 3n, `flow packets ${there.stats.packets}`);
    assert.ok(there.used > 0n);

    await mustPing(host.c1, host.c2.ip, 2);
    const again = await getFlow(odp, dp.ifindex, f12.key);
    assert.ok(again.stats.packets >= there.stats.packets + 2n, `packets ${there.stats.packets} -> ${again.stats.packets}`);
    assert.ok(again.stats.bytes > there.stats.bytes);
    const p1Stats = (await getVport(odp, dp.ifindex, p1.portNo)).stats;
    assert.ok(p1Stats && p1Stats.rxPackets >= 5n, `vc1 vport rx ${p1Stats?.rxPackets}`);
    assert.equal((await getDatapath(odp, DP)).stats?.flows, 2n);
  } finally {
    odp.close();
    await removeNamespaces();
  }
});

test('without flows a ping becomes miss upcalls; packet execute delivers the frame', async () => {
  const host = await makeHost('m');
  const odp = await OdpConnection.open({ netns: host.ns });
  const rx = UpcallReceiver.open(odp);
  try {
    const dp = await createDatapath(odp, DP);
    const p1 = await createVport(odp, dp.ifindex, { type: 'netdev', name: host.c1.hostIf }, { upcallPid: rx.portId });
    // One vport gets its upcall socket at creation, the other afterwards (as for vports announced later).
    const p2 = await createVport(odp, dp.ifindex, { type: 'netdev', name: host.c2.hostIf });
    assert.deepEqual(p2.upcallPids, [0]);
    await setVportUpcallPid(odp, dp.ifindex, p2.portNo, rx.portId);
    assert.deepEqual(p1.upcallPids, [rx.portId]);
    assert.deepEqual((await getVport(odp, dp.ifindex, host.c2.hostIf)).upcallPids, [rx.portId]);

    const pinging = ping(host.c1, host.c2.ip, 1);
    const miss = await waitUpcall(rx, 20_000, isIcmpBetween(p1.portNo, MAC1, MAC2));
    assert.equal(miss.datapath, dp.ifindex);
    // The frame itself: dst MAC, src MAC, EtherType IPv4, then an IPv4 header to 10.9.0.2 carrying ICMP.
    assert.equal(miss.packet.subarray(0, 6).toString('hex'), MAC2.replaceAll(':', ''));
    assert.equal(miss.packet.subarray(6, 12).toString('hex'), MAC1.replaceAll(':', ''));
    assert.equal(miss.packet.readUInt16BE(12), 0x0800);
    assert.equal(miss.packet[14 + 9], 1, 'IP protocol ICMP');
    assert.equal([...miss.packet.subarray(14 + 16, 14 + 20)].join('.'), host.c2.ip);
    assert.equal(miss.packet[14 + 20], 8, 'ICMP echo request');
    assert.equal((await pinging).code, 1, 'with no flows the ping is not answered');

    // Inject the missed request towards container 2: its reply comes back as a miss on vc2.
    const before = (await getVport(odp, dp.ifindex, p2.portNo)).stats?.txPackets ?? 0n;
    await executePacket(odp, dp.ifindex, { packet: miss.packet, actions: [output(p2.portNo)] });
    const reply = await waitUpcall(rx, 20_000, isIcmpBetween(p2.portNo, MAC2, MAC1));
    assert.equal(reply.packet[14 + 20], 0, 'ICMP echo reply');
    const after = (await getVport(odp, dp.ifindex, p2.portNo)).stats?.txPackets ?? 0n;
    assert.ok(after > before, `vc2 vport tx ${before} -> ${after}`);
  } finally {
    rx.close();
    odp.close();
    await removeNamespaces();
  }
});

test('a flow is never replaced in place (EEXIST); deleted flows, vports and datapaths are gone (ENOENT / ENODEV)', async () => {
  const host = await makeHost('d');
  const odp = await OdpConnection.open({ netns: host.ns });
  try {
    const dp = await createDatapath(odp, DP);
    const p1 = await createVport(odp, dp.ifindex, { type: 'netdev', name: host.c1.hostIf });
    const flow = unicast(p1.portNo, MAC1, MAC2, p1.portNo);
    await createFlow(odp, dp.ifindex, flow);
    assert.deepEqual((await getFlow(odp, dp.ifindex, flow.key)).key.ethernet, flow.key.ethernet);
    // The kernel never replaces a flow in place (NLM_F_CREATE is exclusive for ODP).
    await assert.rejects(createFlow(odp, dp.ifindex, { ...flow, actions: [] }), (e: unknown) => isOdpExists(e) && /flow \{in_port=\d+,eth=.*\} in datapath \d+ exists/.test((e as Error).message));

    await deleteFlow(odp, dp.ifindex, flow.key);
    await assert.rejects(getFlow(odp, dp.ifindex, flow.key), (e: unknown) => isNetlinkError(e, 'ENOENT') && /flow \{in_port=\d+,eth=.*\} in datapath \d+ does not exist/.test((e as Error).message));
    assert.equal((await listFlows(odp, dp.ifindex)).length, 0);

    await deleteVport(odp, dp.ifindex, p1.portNo);
    await assert.rejects(getVport(odp, dp.ifindex, 'vc1'), (e: unknown) => isNetlinkError(e, 'ENODEV') && /vport "vc1" in datapath \d+ does not exist/.test((e as Error).message));

    await deleteDatapath(odp, DP);
    await assert.rejects(getDatapath(odp, DP), (e: unknown) => isNetlinkError(e, 'ENODEV') && /datapath "wtdp" does not exist/.test((e as Error).message));
    assert.deepEqual(await listDatapaths(odp), []);
  } finally {
    odp.close();
    await removeNamespaces();
  }
});

test('two hosts: containers ping across a VXLAN underlay through set(tunnel) flows', async () => {
  // Host A holds container 1, host B container 2; underlay veth 192.168.77.1 <-> .2.
  const tag = 'x';
  const hostA = `wto-${run}-${tag}ha`;
  const hostB = `wto-${run}-${tag}hb`;
  const c1: Container = { ns: `wto-${run}-${tag}c1`, hostIf: 'vc1', mac: MAC1, ip: '10.9.0.1' };
  const c2: Container = { ns: `wto-${run}-${tag}c2`, hostIf: 'vc2', mac: MAC2, ip: '10.9.0.2' };
  const ipA = '192.168.77.1';
  const ipB = '192.168.77.2';
  await makeNamespaces([hostA, hostB, c1.ns, c2.ns]);
  const odpA = await OdpConnection.open({ netns: hostA });
  const odpB = await OdpConnection.open({ netns: hostB });
  try {
    await ipBatch(hostA, [`link add ul type veth peer name ul netns ${hostB}`, `addr add ${ipA}/24 dev ul`, 'link set ul up']);
    await ipBatch(hostB, [`addr add ${ipB}/24 dev ul`, 'link set ul up']);
    await plugContainer(hostA, c1, c2);
    await plugContainer(hostB, c2, c1);

    // Short peer ids 1 (host A) and 2 (host B): VNI = src | dst << 12 (spec §6.2).
    const setUp = async (odp: OdpConnection, local: Container, localIp: string, remoteIp: string, localId: number, remoteId: number) => {
      const dp = await createDatapath(odp, DP);
      const port = await createVport(odp, dp.ifindex, { type: 'netdev', name: local.hostIf });
      const vx = await createVport(odp, dp.ifindex, { type: 'vxlan', name: 'vxlan-6784', dstPort: DEFAULT_FASTDP_PORT });
      const remoteMac = local.mac === MAC1 ? MAC2 : MAC1;
      const outKey: FlowKey = { inPort: port.portNo, ethernet: { src: local.mac, dst: remoteMac } };
      await createFlow(odp, dp.ifindex, {
        key: outKey,
        mask: exactMask(outKey),
        actions: [
          setTunnel({ id: weaveTunnelId(localId, remoteId), ipv4Src: localIp, ipv4Dst: remoteIp, tos: 0, ttl: 64, dontFragment: true }),
          output(vx.portNo),
        ],
      });
      const inKey: FlowKey = {
        inPort: vx.portNo,
        tunnel: { id: weaveTunnelId(remoteId, localId), ipv4Src: remoteIp, ipv4Dst: localIp },
        ethernet: { src: remoteMac, dst: local.mac },
      };
      await createFlow(odp, dp.ifindex, { key: inKey, mask: exactMask(inKey), actions: [output(port.portNo)] });
      return { dp, port, vx };
    };
    const a = await setUp(odpA, c1, ipA, ipB, 1, 2);
    const b = await setUp(odpB, c2, ipB, ipA, 2, 1);

    await mustPing(c1, c2.ip, 3);

    const inflowB = (await listFlows(odpB, b.dp.ifindex)).find((f) => f.key.inPort === b.vx.portNo);
    assert.ok(inflowB, 'host B lists its tunnel ingress flow');
    assert.equal(inflowB.key.tunnel?.id, weaveTunnelId(1, 2));
    assert.equal(inflowB.key.tunnel?.ipv4Src, ipA);
    assert.ok(inflowB.stats.packets >= 3n, `host B ingress flow packets ${inflowB.stats.packets}`);
    const outflowA = (await listFlows(odpA, a.dp.ifindex)).find((f) => f.key.inPort === a.port.portNo);
    assert.ok(outflowA, 'host A lists its tunnel egress flow');
    // The kernel leaves a zero TOS out of its dump.
    assert.deepEqual(outflowA.actions, [setTunnel({ id: weaveTunnelId(1, 2), ipv4Src: ipA, ipv4Dst: ipB, ttl: 64, dontFragment: true }), output(a.vx.portNo)]);
    assert.ok(outflowA.stats.packets >= 3n, `host A egress flow packets ${outflowA.stats.packets}`);
    const vxStatsB = (await getVport(odpB, b.dp.ifindex, b.vx.portNo)).stats;
    assert.ok(vxStatsB && vxStatsB.rxPackets >= 3n, `host B vxlan vport rx ${vxStatsB?.rxPackets}`);
  } finally {
    odpA.close();
    odpB.close();
    await removeNamespaces();
  }
});
