// The eBPF fast datapath mixed with the sleeve on real routers: a line
// h1 (eBPF) - h2 (eBPF) - h3 (--no-fastdp), with no underlay path between h1
// and h3. h2 relays in both directions between its fastdp neighbour and its
// sleeve neighbour: broadcasts (ARP, IP broadcast) and unicast. And the host
// itself (`weave expose`) reaches a container on a fastdp peer and back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Counters, DatapathMaps } from '../../dataplane/bpf/maps.js';
import { bpfPinDir, pinnedCounters, withBpfWeaveBed, withPinnedMaps } from './lib/bpf-bed.js';
import {
  attachContainer, connectionsMatch, mustPing, mustWeave, pollUntil,
  type Container, type Host, type Testbed, type WeaveOptions,
} from './lib/index.js';

const CONVERGE_MS = 60_000;
const HEARTBEAT_ENV = { WEAVE_FASTDP_HEARTBEAT_INTERVAL_MS: '500', WEAVE_FASTDP_HEARTBEAT_TIMEOUT_MS: '3000' };
/** The broadcast address of the default allocation range 10.32.0.0/12. */
const RANGE_BROADCAST = '10.47.255.255';

function envFor(bed: Testbed, h: Host): WeaveOptions {
  return { env: { ...HEARTBEAT_ENV, WEAVE_BPF_PIN_DIR: bpfPinDir(bed, h) } };
}

function withMaps<T>(bed: Testbed, h: Host, read: (maps: DatapathMaps) => T): T {
  return withPinnedMaps(bpfPinDir(bed, h), read);
}

function counters(bed: Testbed, h: Host): Counters {
  return pinnedCounters(bpfPinDir(bed, h));
}

async function macOf(c: Container): Promise<string> {
  const r = await c.exec('cat', ['/sys/class/net/ethwe/address']);
  assert.equal(r.code, 0, `read the MAC of ethwe: ${r.stderr}`);
  return r.stdout.trim();
}

/** Pings the range's broadcast address from `from` until `responder` answers (IP broadcast relayed, not only ARP). */
async function mustAnswerBroadcast(from: Container, responder: string, what: string): Promise<void> {
  let out = '';
  const ok = await pollUntil(async () => {
    const r = await from.exec('ping', ['-b', '-c', '2', '-i', '0.3', '-W', '1', RANGE_BROADCAST], { timeoutMs: 10_000 });
    out = r.stdout + r.stderr;
    return out.includes(`from ${responder}`);
  }, 30_000, 300);
  assert.ok(ok, `${what}: ${responder} answers a ping to ${RANGE_BROADCAST}:\n${out}`);
}

/** h1 - h2 - h3 (h3 sleeve only); h1 and h3 cannot reach each other on the underlay. */
async function withLineBed(body: (bed: Testbed, hosts: [Host, Host, Host]) => Promise<void>): Promise<void> {
  await withBpfWeaveBed(3, envFor, async (bed) => {
    const hosts = bed.hosts as [Host, Host, Host];
    await bed.cutLink(hosts[0], hosts[2]);
    // The same peer list everywhere (IPAM consensus); h1 <-> h3 never connect.
    for (const h of hosts) {
      const others = hosts.filter((o) => o !== h).map((o) => o.address);
      const extra = h === hosts[2] ? ['--no-fastdp'] : [];
      await mustWeave(h, ['launch', '--nickname', h.label, ...extra, ...others], envFor(bed, h));
    }
    await body(bed, hosts);
  });
}

test('fastdp <-> sleeve relay: broadcasts and unicast cross h2 between an eBPF peer and a sleeve-only peer', async () => {
  await withLineBed(async (bed, [h1, h2, h3]) => {
    await connectionsMatch(h1, /established fastdp \S+\(h2\)/, { timeoutMs: CONVERGE_MS });
    await connectionsMatch(h2, /established fastdp \S+\(h1\)/, { timeoutMs: CONVERGE_MS });
    await connectionsMatch(h2, /established sleeve \S+\(h3\)/, { timeoutMs: CONVERGE_MS });
    await connectionsMatch(h3, /established sleeve \S+\(h2\)/, { timeoutMs: CONVERGE_MS });
    const [c1, , c3] = [await attachContainer(h1), await attachContainer(h2), await attachContainer(h3)];
    for (const c of [c1, c3]) {
      const r = await c.exec('sysctl', ['-w', 'net.ipv4.icmp_echo_ignore_broadcasts=0']);
      assert.equal(r.code, 0, `answer broadcast pings: ${r.stderr}`);
    }
    const [mac1, mac3] = [await macOf(c1), await macOf(c3)];

    // h1 -> h3: c1's ARP request (a broadcast) crosses h2 from the tunnel to the sleeve.
    await mustPing(c1, '10.32.0.3', 'h1/c1 -> h3/c1 via h2');
    const neigh = await c3.exec('ip', ['neigh', 'show', '10.32.0.1']);
    assert.match(neigh.stdout, new RegExp(mac1), 'c3 learned c1 from its ARP request, a broadcast relayed by h2');
    await mustPing(c3, '10.32.0.1', 'h3/c1 -> h1/c1 via h2');

    // IP broadcast both ways.
    await mustAnswerBroadcast(c1, '10.32.0.3', 'broadcast from h1 (fastdp) reaches h3 (sleeve)');
    await mustAnswerBroadcast(c3, '10.32.0.1', 'broadcast from h3 (sleeve) reaches h1 (fastdp)');

    // h2's kernel knows c3 is behind the sleeve's port, and h1 sent c3's frames to h2 through the tunnel.
    const h2sleeve = withMaps(bed, h2, (m) => ({ ports: m.readBridgePorts(), local: m.listLocalMacs() }));
    assert.ok(h2sleeve.ports.sleeveIfindex > 0 && h2sleeve.ports.hostIfindex > 0, `h2 knows its sleeve and host ports: ${JSON.stringify(h2sleeve.ports)}`);
    assert.equal(h2sleeve.local.get(mac3), h2sleeve.ports.sleeveIfindex, `h2 learned c3 (${mac3}) behind the sleeve's port`);
    const before = counters(bed, h1).fwd_to_tunnel;
    assert.ok(await c1.ping('10.32.0.3', { count: 3, waitSeconds: 2 }), 'h1 -> h3 again');
    assert.ok(counters(bed, h1).fwd_to_tunnel >= before + 3, 'h1 sent the pings to h3 into the tunnel (kernel)');
    const learned = withMaps(bed, h1, (m) => m.listLearnedMacs()).find((e) => e.mac === mac3);
    assert.ok(learned, `h1 learned c3's MAC from the tunnel (h2 relays it)`);
  });
});

test('weave expose: the host reaches a container on a fastdp peer and back', async () => {
  await withLineBed(async (bed, [h1, h2, h3]) => {
    await connectionsMatch(h1, /established fastdp \S+\(h2\)/, { timeoutMs: CONVERGE_MS });
    await connectionsMatch(h3, /established sleeve \S+\(h2\)/, { timeoutMs: CONVERGE_MS });
    const [, c2, c3] = [await attachContainer(h1), await attachContainer(h2), await attachContainer(h3)];
    const hostIp = '10.32.0.101';
    assert.equal((await mustWeave(h1, ['expose', `${hostIp}/12`], envFor(bed, h1))).trim(), hostIp);
    const before = counters(bed, h1);
    const ok = await pollUntil(() => h1.ping('10.32.0.2', { count: 1, waitSeconds: 1 }), 30_000, 200);
    assert.ok(ok, 'host h1 (exposed) -> h2/c1 answers');
    await mustPing(c2, hostIp, 'h2/c1 -> host h1');
    const after = counters(bed, h1);
    assert.ok(after.fwd_to_tunnel > before.fwd_to_tunnel, `the host's frames went into the tunnel in the kernel (${before.fwd_to_tunnel} -> ${after.fwd_to_tunnel})`);
    assert.ok(after.fwd_from_tunnel > before.fwd_from_tunnel, 'the replies were delivered to the host from the tunnel');
    const hostPort = withMaps(bed, h1, (m) => ({ ports: m.readBridgePorts(), local: m.listLocalMacs() }));
    assert.ok([...hostPort.local.values()].includes(hostPort.ports.hostIfindex), 'h1 learned the bridge MAC behind the host port');
    // And across h2 to the sleeve-only peer.
    await mustPing(c3, hostIp, 'h3/c1 (sleeve, via h2) -> host h1');
  });
});
