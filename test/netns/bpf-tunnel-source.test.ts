// A host with two addresses, reached by its peer on the one its routes do not
// prefer: the eBPF fast datapath's VXLAN frames and heartbeats leave from the
// address of the connection (as Weave's OVS tunnel action sets its source),
// never from the route's preferred one. With a password that is what keeps
// encrypted fastdp working there: the connection's SAs and marking rules cover
// its own address only, so a frame from the other would be dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bpfPinDir, withBpfWeaveBed, withPinnedMaps } from './lib/bpf-bed.js';
import { addSecondAddress, attachContainer, connectionsMatch, ipPattern, mustExec, mustPing, mustWeave, type Host, type Testbed, type WeaveOptions } from './lib/index.js';

/** How soon the connection must be on fastdp after the second launch returns (a user's wait on a loaded host). */
const FASTDP_BOUND_MS = 20_000;
const COUNT_TABLE = 'wtsrc';

function envFor(bed: Testbed, h: Host): WeaveOptions {
  return { env: { WEAVE_BPF_PIN_DIR: bpfPinDir(bed, h) } };
}

/** Counts VXLAN (UDP 6784) arriving on `h`'s underlay from each of `sources`, from now on. */
async function countVxlanFrom(h: Host, sources: readonly string[]): Promise<() => Promise<number[]>> {
  const rules = sources.map((s, i) => `    ip saddr ${s} udp dport 6784 counter comment "from${i}"`);
  const script = [`table netdev ${COUNT_TABLE} {`, '  chain count {', '    type filter hook ingress device "eth0" priority 0; policy accept;', ...rules, '  }', '}', ''].join('\n');
  await mustExec('ip', ['netns', 'exec', h.namespace, 'nft', '-f', '-'], { input: script });
  return async () => {
    const out = (await mustExec('ip', ['netns', 'exec', h.namespace, 'nft', 'list', 'table', 'netdev', COUNT_TABLE])).stdout;
    return sources.map((_, i) => {
      const m = new RegExp(`counter packets (\\d+) bytes \\d+ comment "from${i}"`).exec(out);
      assert.ok(m, `counter from${i} in:\n${out}`);
      return Number(m[1]);
    });
  };
}

test('a peer that dialled the secondary address: tunnel frames and heartbeats leave from that address', async () => {
  await withBpfWeaveBed(2, envFor, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    const secondary = await addSecondAddress(bed, h1, h2);
    const vxlanFrom = await countVxlanFrom(h2, [h1.address, secondary]);

    await mustWeave(h1, ['launch', '--nickname', 'h1'], envFor(bed, h1));
    await mustWeave(h2, ['launch', '--nickname', 'h2', secondary], envFor(bed, h2));
    const started = Date.now();
    await connectionsMatch(h2, new RegExp(`^-> ${ipPattern(secondary)}:6783\\s+established fastdp \\S+\\(h1\\)`, 'm'), { timeoutMs: FASTDP_BOUND_MS });
    await connectionsMatch(h1, /^<- \S+\s+established fastdp \S+\(h2\)/m, { timeoutMs: FASTDP_BOUND_MS });
    process.stdout.write(`# bpf-tunnel-source: fastdp established both ways ${Date.now() - started} ms after the second launch\n`);

    const [c1, c2] = [await attachContainer(h1, envFor(bed, h1)), await attachContainer(h2, envFor(bed, h2))];
    await mustPing(c1, '10.32.0.2', 'h1/c1 -> h2/c1');
    await mustPing(c2, '10.32.0.1', 'h2/c1 -> h1/c1');
    for (const [from, to] of [[c1, '10.32.0.2'], [c2, '10.32.0.1']] as const) assert.ok(await from.ping(to, { count: 5 }), `${from.host.label}/${from.name} -> ${to}: 5 pings`);

    const [fromPrimary, fromSecondary] = await vxlanFrom();
    assert.equal(fromPrimary, 0, `no VXLAN from h1's first address reached h2 (${fromSecondary} from the secondary)`);
    // h1's echo requests and replies of those 10 pings, besides its heartbeats.
    assert.ok(fromSecondary >= 10, `h1's frames and heartbeats came from ${secondary}: ${fromSecondary}`);
    // The kernel's route to h2 names the connection's address as the tunnel source.
    const entry = withPinnedMaps(bpfPinDir(bed, h1), (m) => [...m.listPeerEntries().values()].find((p) => p.underlayIp === h2.address));
    assert.deepEqual(entry, { underlayIp: h2.address, receiveOnly: false, localIp: secondary }, 'h1 tunnels to h2 from the secondary address');
  });
});
