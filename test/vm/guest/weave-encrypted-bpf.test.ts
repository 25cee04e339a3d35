// Runs INSIDE the kernel lab VM (the host kernel has no ESP): routers on the
// eBPF fast datapath (WEAVE_FASTDP_DATAPATH=bpf) launched with `--password`
// carry their containers' traffic inside kernel IPsec ESP, with the same SA
// exchange as the OVS datapath (wire spec §7), so an eBPF host and an OVS
// host also meet on encrypted fastdp. Counters on the receiving host's
// underlay interface (ingress, before XFRM) prove the VXLAN traffic crossed
// the wire as ESP (IP protocol 50) and never as plain UDP 6784, not even the
// broadcasts a container sends while the peers set up their SAs; `weave reset`
// leaves no XFRM state, policy or IPsec chain behind. A host reached on the
// second of its addresses tunnels from that one, which its SAs cover. A host
// between an encrypted peer and a trusted one relays between the two.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePinDir } from '../../../dataplane/bpf/bpffs.js';
import { pinnedCounters, withPinnedMaps } from '../../netns/lib/bpf-bed.js';
import { createTestbed, execCommand, type Host, type Testbed } from '../../netns/lib/index.js';
import { assertIPsecInstalled, assertOnlyEsp, assertResetClean, countUnderlay, encryptedFastdpViaSecondAddress, pingAndTcp, relayFromEncryptedToTrusted, startBroadcasting, underlayCounts } from './ipsec-checks.js';
import { connectionsMatch, loadKernelModules, mustWeave, weave, withRouterLogs } from './weave-fastdp-harness.js';

before(() => loadKernelModules());

const PASSWORD = 'bpf-fastdp-secret';

type Kind = 'bpf' | 'ovs';

/** One bpffs mount per test; each host pins in its own directory on it (reset removes that directory). */
function bpffsOf(bed: Testbed): string {
  return join('/tmp', `${bed.prefix}-bpffs`);
}

function pinDirOf(bed: Testbed, h: Host): string {
  return join(bpffsOf(bed), h.label);
}

/** The router environment of a host running the `kind` fast datapath (its own bpffs pin dir). */
function envOf(bed: Testbed, h: Host, kind: Kind): Record<string, string> {
  return { WEAVE_FASTDP_DATAPATH: kind, WEAVE_BPF_PIN_DIR: pinDirOf(bed, h) };
}

/** A testbed whose routers are reset, namespaces removed and pin dirs unmounted however the test ends. */
async function withBpfBed(kinds: Kind[], body: (bed: Testbed) => Promise<void>): Promise<void> {
  const bed = await createTestbed({ hosts: kinds.length, underlay: 'bridge' });
  try {
    ensurePinDir(bpffsOf(bed));
    for (const h of bed.hosts) ensurePinDir(pinDirOf(bed, h));
    await body(bed);
  } catch (err) {
    throw withRouterLogs(err, bed.hosts);
  } finally {
    for (const [i, h] of bed.hosts.entries()) await weave(h, ['reset'], envOf(bed, h, kinds[i] ?? 'bpf')).catch(() => undefined);
    await bed.teardown();
    await execCommand('umount', [bpffsOf(bed)]);
    rmSync(bpffsOf(bed), { recursive: true, force: true });
  }
}

/** Router.Datapath.Kind of `weave report`: which kernel datapath carries fastdp. */
async function datapathKind(h: Host): Promise<string | undefined> {
  const report = JSON.parse(await mustWeave(h, ['report'])) as { Router?: { Datapath?: { Kind?: string } } };
  return report.Router?.Datapath?.Kind;
}

/**
 * With a password the receive fast path at the underlay (which would accept a
 * plaintext VXLAN frame) is off: no address is listed for it, and every frame
 * the host delivered came through XFRM and the VXLAN device.
 */
function assertNoPlaintextReceivePath(bed: Testbed, h: Host): void {
  const pinDir = pinDirOf(bed, h);
  assert.equal(withPinnedMaps(pinDir, (m) => m.listUnderlayAddresses().size), 0, `${h.label}: the receive fast path lists no underlay address`);
  const c = pinnedCounters(pinDir);
  assert.equal(c.fwd_from_underlay, 0, `${h.label}: no frame was decapsulated at the underlay`);
  assert.ok(c.fwd_from_tunnel > 0, `${h.label}: frames were delivered from the tunnel device`);
}

test('eBPF fastdp with --password: encrypted fastdp over ESP; nothing crosses in clear; reset removes the SAs and rules', { timeout: 700_000 }, async () => {
  const kinds: Kind[] = ['bpf', 'bpf'];
  await withBpfBed(kinds, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await countUnderlay(h2);
    await mustWeave(h1, ['launch', '--password', PASSWORD, '--nickname', 'h1'], envOf(bed, h1, 'bpf'));
    const stopBroadcasting = await startBroadcasting(h1, envOf(bed, h1, 'bpf'));
    await mustWeave(h2, ['launch', '--password', PASSWORD, '--nickname', 'h2', h1.address], envOf(bed, h2, 'bpf'));
    const line = await connectionsMatch(h2, /^-> \S+:6783\s+established encrypted\s+fastdp \S+\(h1\) encrypted=true ?mtu=\d+\s*$/m);
    await connectionsMatch(h1, /^<- \S+\s+established encrypted\s+fastdp \S+\(h2\) encrypted=true ?mtu=\d+\s*$/m);
    await stopBroadcasting();
    assert.match(line, /mtu=1413\b/, 'room for ESP below the 1450 of plain fastdp');
    for (const h of [h1, h2]) assert.equal(await datapathKind(h), 'bpf', `${h.label} runs the eBPF datapath`);
    for (const h of [h1, h2]) await assertIPsecInstalled(h);

    await pingAndTcp(h1, h2);
    await assertOnlyEsp(h2);
    assertNoPlaintextReceivePath(bed, h2);
    await assertResetClean(h1, envOf(bed, h1, 'bpf'));
  });
});

test('eBPF fastdp with --password, the peer dialling the second of two addresses: encrypted fastdp from that address', { timeout: 700_000 }, async () => {
  await withBpfBed(['bpf', 'bpf'], (bed) => encryptedFastdpViaSecondAddress(bed, PASSWORD, (h) => envOf(bed, h, 'bpf')));
});

test('eBPF fastdp with --password, h2 between an encrypted peer and a trusted one: it relays between ESP and plain VXLAN both ways', { timeout: 700_000 }, async () => {
  await withBpfBed(['bpf', 'bpf', 'bpf'], (bed) => relayFromEncryptedToTrusted(bed, PASSWORD, (h) => envOf(bed, h, 'bpf')));
});

test('an eBPF host and an OVS host, both with --password: encrypted fastdp between them', { timeout: 700_000 }, async () => {
  const kinds: Kind[] = ['bpf', 'ovs'];
  await withBpfBed(kinds, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await countUnderlay(h1);
    await countUnderlay(h2);
    await mustWeave(h1, ['launch', '--password', PASSWORD, '--nickname', 'h1'], envOf(bed, h1, 'bpf'));
    const stopBroadcasting = await startBroadcasting(h1, envOf(bed, h1, 'bpf'));
    await mustWeave(h2, ['launch', '--password', PASSWORD, '--nickname', 'h2', h1.address], envOf(bed, h2, 'ovs'));
    await connectionsMatch(h2, /^-> \S+:6783\s+established encrypted\s+fastdp \S+\(h1\) encrypted=true ?mtu=\d+\s*$/m);
    await connectionsMatch(h1, /^<- \S+\s+established encrypted\s+fastdp \S+\(h2\) encrypted=true ?mtu=\d+\s*$/m);
    await stopBroadcasting();
    assert.equal(await datapathKind(h1), 'bpf', 'h1 runs the eBPF datapath');
    assert.equal(await datapathKind(h2), 'ovs', 'h2 runs the OVS datapath');
    for (const h of [h1, h2]) await assertIPsecInstalled(h);

    await pingAndTcp(h1, h2);
    // Both directions carry data (TCP acks come back): both underlays saw only ESP.
    await assertOnlyEsp(h2);
    const back = await underlayCounts(h1);
    // The way back carries the ping replies and the transfer's acks (a few dozen with delayed and GRO'd acks).
    assert.ok(back.esp >= 20, `the eBPF host received ESP (${back.esp} packets)`);
    assert.equal(back.vxlan, 0, 'no plain VXLAN reached the eBPF host');
    await assertResetClean(h1, envOf(bed, h1, 'bpf'));
  });
});
