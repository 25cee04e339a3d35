// Parts of Weave's user surface that read the host (user-surface spec §1.13,
// §4.4): IPTABLES_BACKEND (on a host where both iptables variants have a
// FORWARD chain the router programs only the named one; a value that is no
// backend stops the launch), `weave bridge-type` and `weave docker-bridge-ip`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attachContainer, mustWeave, weave, withWeaveBed, type Host } from './lib/index.js';

async function forward(h: Host, iptables: string): Promise<string> {
  const r = await h.exec(iptables, ['-w', '-S', 'FORWARD']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

test('IPTABLES_BACKEND=legacy programs only iptables-legacy; a bad value is refused', async () => {
  await withWeaveBed(1, async (bed) => {
    const h = bed.hosts[0] as Host;
    for (const ipt of ['iptables-nft', 'iptables-legacy']) {
      const r = await h.exec(ipt, ['-w', '-P', 'FORWARD', 'DROP']);
      assert.equal(r.code, 0, r.stderr);
    }
    const bad = await weave(h, ['launch'], { env: { IPTABLES_BACKEND: 'xtables' } });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /IPTABLES_BACKEND=xtables is not an iptables backend: use nft or legacy/);

    await mustWeave(h, ['launch'], { env: { IPTABLES_BACKEND: 'legacy' } });
    assert.match(await forward(h, 'iptables-legacy'), /^-A FORWARD -i weave -o weave -j ACCEPT$/m);
    assert.doesNotMatch(await forward(h, 'iptables-nft'), /-o weave/, 'the nf_tables iptables is left alone');
  }, { command: 'reset' });
});

test('weave bridge-type: nothing before launch, the kernel\'s type after; docker-bridge-ip prints docker0\'s address', async () => {
  await withWeaveBed(1, async (bed) => {
    const h = bed.hosts[0] as Host;
    assert.equal(await mustWeave(h, ['bridge-type']), '', 'no weave bridge yet');
    const noDocker = await weave(h, ['docker-bridge-ip']);
    assert.equal(noDocker.code, 1);
    assert.match(noDocker.stderr, /^weave: the docker bridge docker0 has no IPv4 address/);
    for (const args of [['link', 'add', 'docker0', 'type', 'bridge'], ['addr', 'add', '172.17.0.1/16', 'dev', 'docker0']]) {
      const r = await h.exec('ip', args);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal(await mustWeave(h, ['docker-bridge-ip']), '172.17.0.1', 'no newline, as Weave');
    await mustWeave(h, ['launch']);
    // No Open vSwitch datapath on this kernel: a plain Linux bridge (eBPF or sleeve behind it).
    assert.equal(await mustWeave(h, ['bridge-type']), 'bridge\n');

    await attachContainer(h);
    const all = (await mustWeave(h, ['ps'])).trim().split('\n');
    assert.match(all[0], /^weave:expose /);
    assert.equal(all.length, 2, all.join('\n'));
    const ids = (await mustWeave(h, ['ps', 'weave:allids'])).trim().split('\n');
    assert.deepEqual(ids, all.slice(1), 'weave:allids: every container, not the bridge');
    assert.deepEqual((await mustWeave(h, ['ps', 'weave:allids', 'weave:expose'])).trim().split('\n'), all);
  }, { command: 'reset' });
});
