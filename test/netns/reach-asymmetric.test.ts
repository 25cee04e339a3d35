// An underlay that passes large UDP datagrams one way only: h2 drops every
// UDP datagram above 700 bytes on its INPUT, so fastdp heartbeats (padded to
// the full MTU) reach h1 but not h2. Both ends must settle on the same overlay
// (the sleeve, whose PMTU discovery finds the small path), never one end on
// fastdp and the other on the sleeve; containers attached on each side answer
// each other within the bound a user accepts, first ARP included; and once h1's
// sleeve has found the path MTU, a 10000-byte ping crosses both ways (the
// sleeve fragments what does not fit, spec §5.7).
//
// The hosts' underlay ports segment UDP GSO on the way out, as a real NIC
// does: across veths the kernel would otherwise carry the sleeve's runs of
// small datagrams as one large packet, and the size rule would judge that.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bpfPinDir, withBpfWeaveBed } from './lib/bpf-bed.js';
import { firstReply } from './lib/convergence.js';
import { connectionsMatch, mustWeave, type Host, type Testbed, type WeaveOptions } from './lib/index.js';

/** From the later attach to the first reply, either direction. */
const FIRST_REPLY_BOUND_MS = 2000;
/** From launch until both ends show the connection on the sleeve (the fastdp forwarders keep trying). */
const SETTLE_BOUND_MS = 10_000;
const BIG_UDP_BYTES = 700;
/** h1's sleeve finds the path MTU by probing (spec §5.6): a few rounds of MTU tests. */
const PMTU_DISCOVERY_BOUND_MS = 30_000;
const BIG_PING_BYTES = 10_000;

function envFor(bed: Testbed, h: Host): WeaveOptions {
  return { env: { WEAVE_BPF_PIN_DIR: bpfPinDir(bed, h) } };
}

/** Drops UDP datagrams larger than `bytes` arriving at `h` (INPUT only: what `h` sends is untouched). */
async function dropBigUdpIn(h: Host, bytes: number): Promise<void> {
  const r = await h.run(`nft add table inet wtbigudp && nft add chain inet wtbigudp input '{ type filter hook input priority 0; }' && nft add rule inet wtbigudp input meta l4proto udp meta length gt ${bytes} drop`);
  assert.equal(r.code, 0, `nft on ${h.label}: ${r.stderr}`);
}

test(`UDP above ${BIG_UDP_BYTES} bytes dropped into one host: both ends on the sleeve, first replies within ${FIRST_REPLY_BOUND_MS} ms`, async () => {
  await withBpfWeaveBed(2, envFor, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await dropBigUdpIn(h2, BIG_UDP_BYTES);
    for (const h of [h1, h2]) {
      const r = await h.run('ethtool -K eth0 tx-udp-segmentation off');
      assert.equal(r.code, 0, `ethtool on ${h.label}: ${r.stderr}`);
    }
    for (const h of [h1, h2]) {
      await mustWeave(h, ['launch', '--nickname', h.label, ...bed.hosts.filter((o) => o !== h).map((o) => o.address)], envFor(bed, h));
    }
    const launched = Date.now();
    // h1 hears h2's heartbeats and acknowledges them; h2 never hears h1's. Each end says which way fails.
    const at1 = await connectionsMatch(h1, /established sleeve \S+\(h2\) mtu=\d+ \(fastdp: peer's heartbeats reach us but it has not acknowledged ours/, { timeoutMs: SETTLE_BOUND_MS });
    const at2 = await connectionsMatch(h2, /established sleeve \S+\(h1\) mtu=\d+ \(fastdp: peer acknowledges our heartbeats but none of its heartbeats reached us/, { timeoutMs: SETTLE_BOUND_MS });
    const settledMs = Date.now() - launched;
    assert.doesNotMatch(at1 + at2, /established fastdp/);

    const containers = [];
    for (const h of [h1, h2]) {
      const c = await h.addContainer('c1');
      await mustWeave(h, ['attach', `10.2.1.${h.index}/24`, '--netns', c.netnsPath], envFor(bed, h));
      containers.push(c);
    }
    const attached = Date.now();
    const [c1, c2] = containers as [typeof containers[0], typeof containers[0]];
    const replies = await Promise.all([firstReply(c1, '10.2.1.2'), firstReply(c2, '10.2.1.1')]);
    const ms = replies.map((r) => (r === undefined ? undefined : r.at - attached));
    for (const [i, m] of ms.entries()) {
      assert.ok(m !== undefined && m <= FIRST_REPLY_BOUND_MS, `${i === 0 ? 'h1/c1 -> h2/c1' : 'h2/c1 -> h1/c1'}: first reply ${m ?? 'never'} ms after attach (bound ${FIRST_REPLY_BOUND_MS} ms)`);
    }
    // Still on the sleeve at both ends: the fastdp forwarders keep sending heartbeats, and never establish.
    assert.match(await mustWeave(h1, ['status', 'connections'], envFor(bed, h1)), /established sleeve \S+\(h2\)/);
    assert.match(await mustWeave(h2, ['status', 'connections'], envFor(bed, h2)), /established sleeve \S+\(h1\)/);

    // h1 -> h2 carries datagrams up to 700 bytes: h1's sleeve MTU ends below that; h2 -> h1 keeps the full one.
    const discoveryStart = Date.now();
    const pmtu = await connectionsMatch(h1, /established sleeve \S+\(h2\) mtu=[1-6]\d\d\b/, { timeoutMs: PMTU_DISCOVERY_BOUND_MS });
    const discoveredMs = Date.now() - discoveryStart;
    for (const [from, to] of [[c1, '10.2.1.2'], [c2, '10.2.1.1']] as const) {
      const r = await from.exec('ping', ['-n', '-c', '3', '-i', '0.3', '-W', '2', '-s', String(BIG_PING_BYTES), to]);
      assert.match(r.stdout, / 3 received/, `${BIG_PING_BYTES}-byte pings to ${to} all answered:\n${r.stdout}\n${pmtu}`);
    }
    process.stdout.write(`# reach-asymmetric: both ends on the sleeve ${settledMs} ms after the launches; first replies ${ms.join(' / ')} ms after attach (echo requests #${replies.map((r) => r?.seq).join(' / #')}); h1's sleeve MTU ${/mtu=(\d+)/.exec(pmtu)?.[1]} ${discoveredMs} ms later; ${BIG_PING_BYTES}-byte pings answered both ways\n`);
  });
});
