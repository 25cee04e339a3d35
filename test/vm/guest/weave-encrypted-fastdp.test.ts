// Runs INSIDE the kernel lab VM (the host kernel has neither openvswitch nor
// ESP): two routers launched with `--password` carry their containers' traffic
// on the fast datapath inside kernel IPsec ESP (wire spec §7). Counters on the
// receiving host's underlay interface (ingress, before XFRM) prove the VXLAN
// traffic crossed the wire as ESP (IP protocol 50) and never as plain UDP 6784; `weave reset` then leaves no XFRM
// state, policy or IPsec chain behind.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mustExec, runIperfClient, startIperfServer, type Host } from '../../netns/lib/index.js';
import { attachContainer, connectionsMatch, loadKernelModules, mustPing, mustWeave, withBed } from './weave-fastdp-harness.js';

before(() => loadKernelModules());

const COUNT_TABLE = 'wtesp';

/** Counts ESP and plain VXLAN frames arriving on h's underlay interface, as they were on the wire (before XFRM). */
async function countUnderlay(h: Host): Promise<void> {
  const script = [
    `table netdev ${COUNT_TABLE} {`,
    '  chain count {',
    '    type filter hook ingress device "eth0" priority 0; policy accept;',
    '    ip protocol esp counter comment "esp"',
    '    udp dport 6784 counter comment "vxlan"',
    '  }',
    '}',
    '',
  ].join('\n');
  await mustExec('ip', ['netns', 'exec', h.namespace, 'nft', '-f', '-'], { input: script });
}

async function underlayCounts(h: Host): Promise<{ esp: number; vxlan: number }> {
  const out = (await mustExec('ip', ['netns', 'exec', h.namespace, 'nft', 'list', 'table', 'netdev', COUNT_TABLE])).stdout;
  const packets = (what: string): number => {
    const m = new RegExp(`counter packets (\\d+) bytes \\d+ comment "${what}"`).exec(out);
    assert.ok(m, `counter ${what} in:\n${out}`);
    return Number(m[1]);
  };
  return { esp: packets('esp'), vxlan: packets('vxlan') };
}

async function xfrm(h: Host, what: 'state' | 'policy'): Promise<string> {
  return (await mustExec('ip', ['-n', h.namespace, 'xfrm', what])).stdout.trim();
}

test('--password: connections run encrypted fastdp over ESP; nothing crosses in clear; reset removes the SAs and rules', { timeout: 700_000 }, async () => {
  await withBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await countUnderlay(h2);
    await mustWeave(h1, ['launch', '--password', 'fastdp-secret', '--nickname', 'h1']);
    await mustWeave(h2, ['launch', '--password', 'fastdp-secret', '--nickname', 'h2', h1.address]);
    const line = await connectionsMatch(h2, /^-> \S+:6783\s+established encrypted\s+fastdp \S+\(h1\) encrypted=true ?mtu=\d+\s*$/m);
    await connectionsMatch(h1, /^<- \S+\s+established encrypted\s+fastdp \S+\(h2\) encrypted=true ?mtu=\d+\s*$/m);
    // Room for ESP (spec §7.4: up to 37 bytes) below the 1450 of plain fastdp on a 1500-byte underlay.
    assert.match(line, /mtu=1413\b/);

    // spec §7.4: each side holds an inbound and an outbound SA, and one marked OUT policy.
    for (const h of [h1, h2]) {
      const states = await xfrm(h, 'state');
      assert.equal((states.match(/proto esp spi/g) ?? []).length, 2, `${h.label} has two ESP SAs:\n${states}`);
      assert.match(states, /rfc4106\(gcm\(aes\)\)/);
      assert.match(await xfrm(h, 'policy'), /dir out[\s\S]*mark 0x20000\/0x20000/);
      const rules = (await mustExec('ip', ['netns', 'exec', h.namespace, 'nft', 'list', 'table', 'inet', 'weave'])).stdout;
      assert.match(rules, /chain ipsec-out-mark/);
      assert.match(rules, /esp spi \d+ meta mark set/);
    }

    const [c1, c2] = [await attachContainer(h1), await attachContainer(h2)];
    await mustPing(c1, '10.32.0.2', 'h1/c1 -> h2/c1 (encrypted fastdp)');
    await mustPing(c2, '10.32.0.1', 'h2/c1 -> h1/c1 (encrypted fastdp)');

    // A TCP transfer through the tunnel.
    const server = await startIperfServer(c2, { bind: '10.32.0.2' });
    // runIperfClient throws unless the 4 MiB went over a TCP connection iperf3 closed cleanly;
    // its receiver total may miss the last interval, so the sender's total is the measure.
    const report = await runIperfClient(c1, ['-c', '10.32.0.2', '-n', '4M'], { timeoutMs: 120_000 }).finally(() => server.stop());
    assert.ok(report.sentBytes >= 4 * 1024 * 1024, `sent ${report.sentBytes} bytes`);
    assert.ok(report.receivedBytes > 0, 'the receiver counted the transfer');

    const counts = await underlayCounts(h2);
    assert.ok(counts.esp >= 1000, `the transfer crossed the underlay as ESP (${counts.esp} packets)`);
    assert.equal(counts.vxlan, 0, 'no plain VXLAN (UDP 6784) ever crossed the underlay');

    await mustWeave(h1, ['reset']);
    assert.equal(await xfrm(h1, 'state'), '', 'reset removed every SA');
    assert.equal(await xfrm(h1, 'policy'), '', 'reset removed every policy');
    const table = await h1.exec('nft', ['list', 'table', 'inet', 'weave']);
    assert.doesNotMatch(table.stdout, /ipsec/, 'reset removed the IPsec chains');
  });
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
