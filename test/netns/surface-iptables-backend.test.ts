// IPTABLES_BACKEND (Weave's Kubernetes launch variable, user-surface spec
// §4.4): on a host where both iptables variants have a FORWARD chain, the
// router programs only the named one; a value that is no backend stops the
// launch with a message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mustWeave, weave, withWeaveBed, type Host } from './lib/index.js';

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
