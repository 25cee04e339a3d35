// Runs INSIDE the kernel lab VM (the host kernel has neither openvswitch nor
// ESP): two routers launched with `--password` carry their containers' traffic
// on the fast datapath inside kernel IPsec ESP (wire spec §7). Counters on the
// receiving host's underlay interface (ingress, before XFRM) prove the VXLAN
// traffic crossed the wire as ESP (IP protocol 50) and never as plain UDP 6784,
// not even the broadcasts a container sends while the peers set up their SAs; `weave reset`
// then leaves no XFRM state, policy or IPsec chain behind. A host reached on the
// second of its addresses tunnels from that one, which its SAs cover. A host
// between an encrypted peer and a trusted one relays between the two.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Host } from '../../netns/lib/index.js';
import { assertIPsecInstalled, assertOnlyEsp, assertResetClean, countUnderlay, encryptedFastdpViaSecondAddress, pingAndTcp, relayFromEncryptedToTrusted, startBroadcasting, xfrm } from './ipsec-checks.js';
import { connectionsMatch, loadKernelModules, mustWeave, withBed } from './weave-fastdp-harness.js';

before(() => loadKernelModules());

test('--password: connections run encrypted fastdp over ESP; nothing crosses in clear; reset removes the SAs and rules', { timeout: 700_000 }, async () => {
  await withBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await countUnderlay(h2);
    await mustWeave(h1, ['launch', '--password', 'fastdp-secret', '--nickname', 'h1']);
    const stopBroadcasting = await startBroadcasting(h1);
    await mustWeave(h2, ['launch', '--password', 'fastdp-secret', '--nickname', 'h2', h1.address]);
    const line = await connectionsMatch(h2, /^-> \S+:6783\s+established encrypted\s+fastdp \S+\(h1\) encrypted=true ?mtu=\d+\s*$/m);
    await connectionsMatch(h1, /^<- \S+\s+established encrypted\s+fastdp \S+\(h2\) encrypted=true ?mtu=\d+\s*$/m);
    await stopBroadcasting();
    // Frames of one broadcast flow queued as misses before the flow existed: not errors.
    assert.doesNotMatch(readFileSync(join(h1.dir, 'state', 'weaver.log'), 'utf8'), /handling a miss/, 'h1 handled every miss');
    // Room for ESP (spec §7.4: up to 37 bytes) below the 1450 of plain fastdp on a 1500-byte underlay.
    assert.match(line, /mtu=1413\b/);

    // spec §7.4: each side holds an inbound and an outbound SA, and one marked OUT policy.
    for (const h of [h1, h2]) await assertIPsecInstalled(h);

    await pingAndTcp(h1, h2);
    await assertOnlyEsp(h2);
    await assertResetClean(h1);
  });
});

test('--password, the peer dialling the second of two addresses: encrypted fastdp from that address', { timeout: 700_000 }, async () => {
  await withBed(2, (bed) => encryptedFastdpViaSecondAddress(bed, 'fastdp-secret'));
});

test('--password with --trusted-subnets on both ends: fastdp without IPsec', { timeout: 400_000 }, async () => {
  await withBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await mustWeave(h1, ['launch', '--password', 'fastdp-secret', '--trusted-subnets', bed.subnet, '--nickname', 'h1']);
    await mustWeave(h2, ['launch', '--password', 'fastdp-secret', '--trusted-subnets', bed.subnet, '--nickname', 'h2', h1.address]);
    await connectionsMatch(h2, /^-> \S+:6783\s+established unencrypted\s+fastdp \S+\(h1\)/m);
    assert.equal(await xfrm(h2, 'state'), '', 'trusted peers install no SA');
  });
});

test('--password, h2 between an encrypted peer and a trusted one: it relays between ESP and plain VXLAN both ways', { timeout: 700_000 }, async () => {
  await withBed(3, (bed) => relayFromEncryptedToTrusted(bed, 'fastdp-secret'));
});
