// Containers on different simulated hosts reach each other through real
// routers started with `weave launch`: the overlay switch picks the sleeve
// (wire spec §5.9), the connection is established by its heartbeats (§2.5),
// and `weave status connections` says which overlay is in use and whether it
// is encrypted (user-surface spec §2.3, §8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attachContainer, connectionsMatch, launchCutLine, mustPing, mustWeave, weave, withWeaveBed, type Host } from './lib/index.js';

test('two hosts: containers ping across the sleeve; status shows sleeve and why not fastdp', async () => {
  await withWeaveBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    // --no-fastdp: this host's kernel offers the eBPF fast datapath, which would take the connection.
    await mustWeave(h1, ['launch', '--no-fastdp', '--nickname', 'h1']);
    await mustWeave(h2, ['launch', '--no-fastdp', '--nickname', 'h2', h1.address]);
    const line = await connectionsMatch(h2, /^-> \S+:6783\s+established sleeve \S+\(h1\) mtu=\d+ \(fastdp: disabled by --no-fastdp\)\s*$/m);
    assert.doesNotMatch(line, /encrypted/);
    await connectionsMatch(h1, /^<- \S+\s+established sleeve \S+\(h2\) mtu=\d+ \(fastdp: disabled by --no-fastdp\)\s*$/m);
    const [c1, c2] = [await attachContainer(h1), await attachContainer(h2)];
    await mustPing(c1, '10.32.0.2', 'h1/c1 -> h2/c1');
    await mustPing(c2, '10.32.0.1', 'h2/c1 -> h1/c1');
    // The sleeve is a userspace path: its capture port is on the bridge.
    assert.equal((await mustWeave(h1, ['report', '-f', '{{.Router.Interface}}'])).trim(), 'vethwe-pcap (via pcap)');
    const diag = await mustWeave(h1, ['report', '-f', '{{json .Router.OverlayDiagnostics}}']);
    assert.match(diag, /"overlay":"sleeve"/);
    assert.match(diag, /"reason":"fastdp: [^"]+"/, 'the report says why fastdp is not in use');
  });
});

test('two hosts with --password: encrypted sleeve, and the containers still reach each other', async () => {
  await withWeaveBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await mustWeave(h1, ['launch', '--password', 'overlay-secret', '--nickname', 'h1']);
    await mustWeave(h2, ['launch', '--password', 'overlay-secret', '--nickname', 'h2', h1.address]);
    await connectionsMatch(h2, /^-> \S+\s+established encrypted\s+sleeve \S+\(h1\) encrypted=truemtu=\d+ \(fastdp: .*ESP.*\)\s*$/m);
    await connectionsMatch(h1, /^<- \S+\s+established encrypted\s+sleeve \S+\(h2\) encrypted=truemtu=\d+ \(fastdp: .*ESP.*\)\s*$/m);
    const [c1, c2] = [await attachContainer(h1), await attachContainer(h2)];
    await mustPing(c1, '10.32.0.2', 'h1/c1 -> h2/c1 (encrypted)');
    await mustPing(c2, '10.32.0.1', 'h2/c1 -> h1/c1 (encrypted)');
  });
});

test('three hosts with h1-h3 cut: h1\'s container reaches h3\'s through h2', async () => {
  await withWeaveBed(3, async (bed) => {
    // Every router is given the same peer list, as Weave's docs ask, so IPAM's
    // consensus (quorum from the initial peer count) agrees on all three; the
    // containers' addresses are claimed inside IPAM's default range.
    const [h1, h2, h3] = await launchCutLine(bed);
    const h1Lines = (await weave(h1, ['status', 'connections'])).stdout;
    assert.doesNotMatch(h1Lines, /established .*\(h3\)/, `h1 has no direct connection to h3:\n${h1Lines}`);
    const [c1, , c3] = [await attachContainer(h1), await attachContainer(h2), await attachContainer(h3)];
    await mustPing(c1, '10.32.0.3', 'h1/c1 -> h3/c1 via h2');
    await mustPing(c3, '10.32.0.1', 'h3/c1 -> h1/c1 via h2');
    assert.equal(await h1.ping(h3.address, { count: 1, waitSeconds: 1 }), false, 'the underlay between h1 and h3 stays cut');
  });
});
