// Names survive a router restart (Weave 2.8's test 256_dns_persist): names
// given with `weave attach -h` and `weave dns-add` on h1 are back on h1 and
// h2 after `weave stop` + `weave launch` and after kill -9 + launch; the name
// of a container that went away while its router was down comes back as a
// tombstone, not as a live name; `weave reset` forgets them. A large saved
// table is restored beside the first handshakes, not before the first dial.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { statePaths } from '../../controlplane/cli/state-paths.js';
import { serialiseDnsEntries } from '../../controlplane/dns/persistence.js';
import { parsePeerName } from '../../weaver/peer-name.js';
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

/** Saved names in the restart below: a table a router keeps after heavy churn (half tombstones). */
const SAVED_NAMES = 20_000;
/** How soon after `weave launch` returns the restarted router must answer every saved live name. */
const MANY_RESTORED_MS = 10_000;

test(`a router restarting with ${SAVED_NAMES} saved names dials its peer before restoring them, then has them all back`, async () => {
  await withWeaveBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await launchFullMesh(bed.hosts);
    await mustWeave(h1, ['stop']);
    const dir = weaveStateDir(h1);
    const paths = statePaths(dir);
    const name = parsePeerName(readFileSync(paths.peerNameFile, 'utf8').trim());
    const now = Math.floor(Date.now() / 1000);
    const entries = Array.from({ length: SAVED_NAMES }, (_, i) => ({
      hostname: `n${i}.weave.local.`, containerId: 'weave:extern', origin: name, addr: 0xc6120000 + i, version: 1, tombstone: i % 2 === 0 ? 0 : now - 60,
    }));
    writeFileSync(join(dir, 'dns-entries.json'), serialiseDnsEntries(name, entries));
    rmSync(join(dir, 'dns-entries.journal'), { force: true });

    const launched = Date.now();
    await mustWeave(h1, ['launch', '--nickname', 'h1', '--log-level=debug', h2.address]);
    const live = SAVED_NAMES / 2;
    let count = 0;
    const back = await pollUntil(async () => {
      const r = await h1.run(`curl -sf 'http://127.0.0.1:6784/name' | grep -o '"Hostname"' | wc -l`);
      count = Number(r.stdout.trim());
      return count >= live;
    }, MANY_RESTORED_MS, 100);
    assert.ok(back, `every live saved name is served again within ${MANY_RESTORED_MS} ms of launch (${count} of ${live})`);
    const log = readFileSync(paths.logFile, 'utf8');
    const phaseMs = (what: string): number => {
      const m = new RegExp(`startup: ${what} at (\\d+) ms`).exec(log);
      assert.ok(m, `the router logs the startup phase "${what}"`);
      return Number(m[1]);
    };
    const dial = phaseMs('first dial');
    const restored = phaseMs('DNS names restored and served');
    assert.ok(dial < restored, `the first dial (${dial} ms) does not wait for the saved names (back at ${restored} ms)`);
    assert.match(log, new RegExp(`restored ${live} names of this host`));
    process.stdout.write(`# ${SAVED_NAMES} saved names: first dial at ${dial} ms, names back at ${restored} ms after exec; all served ${Date.now() - launched} ms after launch\n`);
  });
});
