// Names survive a router restart (Weave 2.8's test 256_dns_persist): names
// given with `weave attach -h` and `weave dns-add` on h1 are back on h1 and
// h2 after `weave stop` + `weave launch` and after kill -9 + launch; the name
// of a container that went away while its router was down comes back as a
// tombstone, not as a live name; `weave reset` forgets them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execCommand, launchFullMesh, mustExec, mustWeave, pollUntil, weaveStateDir, weaverPid, withWeaveBed, type Host } from './lib/index.js';

/** How soon after `weave launch` returns every host must show the names again. */
const RESTORED_MS = 5_000;

/** `weave status dns` as sorted `name ip` pairs (names in the domain show without it). */
async function names(h: Host): Promise<string> {
  const out = await mustWeave(h, ['status', 'dns']);
  return out.split('\n').map((l) => l.trim().split(/\s+/).slice(0, 2).join(' ')).filter((l) => l !== '').sort().join(',');
}

async function namesEverywhere(hosts: readonly Host[], want: string, what: string): Promise<number> {
  const started = Date.now();
  let seen: string[] = [];
  const ok = await pollUntil(async () => {
    seen = await Promise.all(hosts.map(names));
    return seen.every((s) => s === want);
  }, RESTORED_MS, 100);
  assert.ok(ok, `${what}: every host shows ${want} within ${RESTORED_MS} ms; got ${seen.join(' | ')}`);
  return Date.now() - started;
}

test('names given with weave attach -h and dns-add survive weave stop/launch and kill -9', async () => {
  await withWeaveBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await launchFullMesh(bed.hosts);
    const web = await h1.addContainer('web');
    const gone = await h1.addContainer('gone');
    const webIp = (await mustWeave(h1, ['attach', '--netns', web.netnsPath, '-h', 'web.weave.local'])).trim();
    const goneIp = (await mustWeave(h1, ['attach', '--netns', gone.netnsPath, '-h', 'gone.weave.local'])).trim();
    await mustWeave(h1, ['dns-add', '192.0.2.7', '-h', 'ext.weave.local.']);
    const all = [`ext 192.0.2.7`, `gone ${goneIp}`, `web ${webIp}`].sort().join(',');
    await namesEverywhere(bed.hosts, all, 'before the restart');
    const launchArgs = ['launch', '--nickname', 'h1', h2.address];

    await mustWeave(h1, ['stop']);
    // The container goes away while its router is down: its name must not come back live.
    await mustExec('ip', ['netns', 'delete', gone.namespace]);
    await mustWeave(h1, launchArgs);
    const kept = [`ext 192.0.2.7`, `web ${webIp}`].sort().join(',');
    const afterStop = await namesEverywhere(bed.hosts, kept, 'after weave stop + launch');

    const pid = weaverPid(h1);
    process.kill(pid, 'SIGKILL');
    assert.ok(await pollUntil(async () => (await execCommand('kill', ['-0', String(pid)])).code !== 0, 10_000, 50), 'the killed router is gone');
    await mustWeave(h1, launchArgs);
    const afterKill = await namesEverywhere(bed.hosts, kept, 'after kill -9 + launch');
    process.stdout.write(`# names back everywhere ${afterStop} ms after weave launch (stop), ${afterKill} ms (kill -9)\n`);

    for (const f of ['dns-entries.json', 'dns-entries.journal']) assert.ok(existsSync(join(weaveStateDir(h1), f)), `the router keeps ${f}`);
    await mustWeave(h1, ['reset']);
    for (const f of ['dns-entries.json', 'dns-entries.journal']) assert.ok(!existsSync(join(weaveStateDir(h1), f)), `weave reset removes ${f}`);
  }, { command: 'reset' });
});
