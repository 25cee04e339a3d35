// `weave stop` on a relay host (user-surface spec §1.2), as Weave 2.8 users
// met it: with --no-discovery and a line h1 - h2 - h3 (h1 and h3 cannot reach
// each other), h1's containers reach h3's through h2's kernel datapath. Once
// h2's router stops, its kernel datapath relays nothing more (what stays
// serves h2's own containers, which keep reaching each other), and h1 drops
// its route to h3 through h2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bpfPinDir, pinnedCounters, withBpfWeaveBed, withPinnedMaps } from './lib/bpf-bed.js';
import {
  attachContainer, connectionsMatch, mustPing, mustWeave, pollUntil, type Host, type Testbed, type WeaveOptions,
} from './lib/index.js';

/** How soon after `weave stop` relaying must have ended. */
const STOP_MS = 3_000;

function envFor(bed: Testbed, h: Host): WeaveOptions {
  return { env: { WEAVE_BPF_PIN_DIR: bpfPinDir(bed, h) } };
}

test('weave stop on the middle of a line: its datapath stops relaying, the ends drop routes through it', async () => {
  await withBpfWeaveBed(3, envFor, async (bed) => {
    const [h1, h2, h3] = bed.hosts as [Host, Host, Host];
    await bed.cutLink(h1, h3);
    for (const h of [h2, h1, h3]) {
      const others = bed.hosts.filter((o) => o !== h).map((o) => o.address);
      await mustWeave(h, ['launch', '--nickname', h.label, '--no-discovery', ...others], envFor(bed, h));
    }
    for (const h of [h1, h3]) await connectionsMatch(h, /established fastdp \S+\(h2\)/, envFor(bed, h));
    const c1 = await attachContainer(h1, envFor(bed, h1));
    await attachContainer(h3, envFor(bed, h3));
    // Two containers of h2's own: the kernel keeps forwarding between them after the stop (spec §1.2).
    const [local1, local2] = [await h2.addContainer('l1'), await h2.addContainer('l2')];
    await mustWeave(h2, ['attach', '10.32.0.21/12', '--netns', local1.netnsPath], envFor(bed, h2));
    await mustWeave(h2, ['attach', '10.32.0.22/12', '--netns', local2.netnsPath], envFor(bed, h2));
    await mustPing(local1, '10.32.0.22', "h2's containers reach each other");
    await mustPing(c1, '10.32.0.3', 'c1 reaches c3 through h2');
    const relayedBefore = pinnedCounters(bpfPinDir(bed, h2)).fwd_relay;
    assert.ok(relayedBefore > 0, 'h2 relayed in the kernel');
    const viaH2 = (): number => withPinnedMaps(bpfPinDir(bed, h1), (m) => [...m.listPeers().values()].filter((ip) => ip === h2.address).length);
    assert.equal(viaH2(), 2, 'h1 reaches h2 and, through it, h3');

    await mustWeave(h2, ['stop'], envFor(bed, h2));
    const stopped = Date.now();
    assert.ok(await pollUntil(() => viaH2() <= 1, STOP_MS, 50), `within ${STOP_MS} ms h1 has no route to h3 through h2 (entries via h2: ${viaH2()})`);
    assert.ok(await pollUntil(async () => !(await c1.ping('10.32.0.3', { count: 1, waitSeconds: 1 })), STOP_MS, 100), 'c1 stops reaching c3');
    // Still nothing a few seconds on (Weave: no relaying by a stopped router), and h2's kernel relayed nothing since.
    const relayedAtStop = pinnedCounters(bpfPinDir(bed, h2)).fwd_relay;
    assert.equal(await c1.ping('10.32.0.3', { count: 3, waitSeconds: 1 }), false, `c1 does not reach c3 ${Date.now() - stopped} ms after the stop`);
    assert.equal(pinnedCounters(bpfPinDir(bed, h2)).fwd_relay, relayedAtStop, 'the stopped datapath relays nothing');
    assert.doesNotMatch(await mustWeave(h1, ['status', 'peers'], envFor(bed, h1)), /\(h3\)/, 'h1 no longer lists h3');
    assert.ok(await local2.ping('10.32.0.21', { count: 1, waitSeconds: 1 }), "h2's own containers still reach each other with its router stopped");
  });
});
