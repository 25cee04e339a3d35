// `weave launch --expect-npc` (user-surface spec §6.3): the router steers what
// it forwards into the bridge through WEAVE-NPC and drops it unless that chain
// accepts; weave-npc fills the chain once its first sync is done. A client
// outside the overlay (its own bridge, routed through the host to the exposed
// weave subnet) cannot reach a container before weave-npc runs, and can after.
// `weave reset` removes the NPC rules and chains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mustExec, mustPing, mustWeave, withWeaveBed, type Host } from './lib/index.js';

const NPC = fileURLToPath(new URL('../../../bin/weave-npc', import.meta.url));
const OUTSIDE_GW = '192.168.88.1';
const OUTSIDE_IP = '192.168.88.2';
/** From weave-npc's start to the client's first answer: its first sync of an empty directory and one iptables change. */
const GATE_OPEN_BOUND_MS = 10_000;

async function rules(h: Host, chain: string): Promise<string[]> {
  const r = await h.exec('iptables-nft', ['-w', '-S', chain]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n');
}

test('--expect-npc: forwarding into the bridge waits for weave-npc; reset removes the NPC rules', async () => {
  await withWeaveBed(1, async (bed) => {
    const h = bed.hosts[0] as Host;
    await mustExec('ip', ['netns', 'exec', h.namespace, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await mustWeave(h, ['launch', '--no-fastdp', '--expect-npc']);
    const c = await h.addContainer('c1');
    const ip = (await mustWeave(h, ['attach', '--netns', c.netnsPath])).trim();
    await mustWeave(h, ['expose']);

    const forward = await rules(h, 'FORWARD');
    // iptables -S escapes the comment's quotes.
    const comment = `-m comment --comment "NOTE: this must go before \\'-j KUBE-FORWARD\\'"`;
    assert.deepEqual(forward.slice(1, 8), [
      '-A FORWARD -i docker0 -o weave -j DROP',
      `-A FORWARD -i weave ${comment} -j WEAVE-NPC-EGRESS`,
      `-A FORWARD -o weave ${comment} -j WEAVE-NPC`,
      '-A FORWARD -o weave -m state --state NEW -j NFLOG --nflog-group 86',
      '-A FORWARD -o weave -j DROP',
      '-A FORWARD -i weave ! -o weave -j ACCEPT',
      '-A FORWARD -o weave -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    ], 'FORWARD starts with the NPC block of spec §6.3');
    assert.equal(new Set(forward).size, forward.length, `no rule twice after launch and expose (the comment reads back as written):\n${forward.join('\n')}`);
    assert.ok((await rules(h, 'INPUT')).includes('-A INPUT -i weave -j WEAVE-NPC-EGRESS'), 'INPUT passes WEAVE-NPC-EGRESS');
    assert.deepEqual(await rules(h, 'WEAVE-NPC'), ['-N WEAVE-NPC'], 'WEAVE-NPC exists, empty');
    assert.ok(!forward.some((l) => l.includes('WEAVE-EXPOSE')), 'no WEAVE-EXPOSE with --expect-npc');

    // A client outside the overlay, routed through the host.
    const out = await h.addContainer('outside');
    await mustExec('ip', ['-n', h.namespace, 'link', 'add', 'outbr', 'type', 'bridge']);
    await mustExec('ip', ['-n', h.namespace, 'addr', 'add', `${OUTSIDE_GW}/24`, 'dev', 'outbr']);
    await mustExec('ip', ['-n', h.namespace, 'link', 'set', 'outbr', 'up']);
    await mustExec('ip', ['-n', h.namespace, 'link', 'add', 'vethout', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', out.namespace]);
    await mustExec('ip', ['-n', h.namespace, 'link', 'set', 'vethout', 'master', 'outbr', 'up']);
    await mustExec('ip', ['-n', out.namespace, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0']);
    await mustExec('ip', ['-n', out.namespace, 'link', 'set', 'eth0', 'up']);
    await mustExec('ip', ['-n', out.namespace, 'route', 'add', 'default', 'via', OUTSIDE_GW]);
    assert.ok(await out.ping(OUTSIDE_GW, { count: 1, waitSeconds: 2 }), 'the client reaches its gateway');
    assert.ok(await h.ping(ip, { count: 1, waitSeconds: 2 }), 'the host itself reaches c1 (exposed; not forwarded)');
    assert.equal(await out.ping(ip, { count: 2, waitSeconds: 1 }), false, 'no weave-npc yet: forwarding into the bridge is refused');
    const dropped = (await h.exec('iptables-nft', ['-w', '-v', '-S', 'FORWARD'])).stdout;
    assert.match(dropped, /-A FORWARD -o weave -c [1-9]\d* \d+ -j DROP/, 'the DROP rule counted them');

    const dir = join(h.dir, 'policy');
    mkdirSync(dir, { recursive: true });
    const started = Date.now();
    const npc = h.spawn(process.execPath, [NPC, '--policy-dir', dir, '--metrics-addr', '']);
    await mustPing(out, ip, 'weave-npc runs: the client reaches c1', { timeoutMs: GATE_OPEN_BOUND_MS });
    const took = Date.now() - started;
    process.stdout.write(`# client reached c1 ${took} ms after weave-npc started\n`);
    assert.ok(took <= GATE_OPEN_BOUND_MS, `within ${GATE_OPEN_BOUND_MS} ms (took ${took} ms)`);
    assert.equal((await rules(h, 'WEAVE-NPC')).length, 2, `WEAVE-NPC holds weave-npc's rule:\n${npc.output()}`);
    npc.kill();
    await npc.exited;
    assert.ok(await out.ping(ip, { count: 1, waitSeconds: 2 }), 'its rule stays in force after it stops (it restarts without a gap)');

    await mustWeave(h, ['reset']);
    assert.deepEqual((await rules(h, 'FORWARD')).filter((l) => /weave|WEAVE/.test(l)), [], 'reset removes the FORWARD rules');
    assert.ok(!(await rules(h, 'INPUT')).some((l) => l.includes('WEAVE-NPC')), 'and the INPUT rule');
    for (const chain of ['WEAVE-NPC', 'WEAVE-NPC-EGRESS']) assert.notEqual((await h.exec('iptables-nft', ['-w', '-S', chain])).code, 0, `and ${chain}`);
  });
});
