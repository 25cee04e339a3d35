// IPAM across router restarts and departures as Weave 2.8 users met them:
// `weave reset` of the only peer owning space hands it to a live peer that
// owns none yet; a changed --ipalloc-range deletes the old range's data and
// carries on; addresses of containers that went away while the router was
// down are free right after relaunch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  mustExec, mustWeave, pollWeave, weaveStateDir, withWeaveBed, type Host,
} from './lib/index.js';

/** How soon an allocation on the heir must succeed after the owner's reset (Weave's: at once). */
const ALLOCATE_AFTER_RESET_MS = 5_000;

/** The idents IPAM holds addresses for, from the control API (GET /ip). */
async function ownedIdents(h: Host): Promise<string[]> {
  const r = await h.exec('curl', ['-s', 'http://127.0.0.1:6784/ip']);
  const body = JSON.parse(r.stdout || '{"owned":[]}') as { owned: { containerid: string }[] | null };
  return (body.owned ?? []).map((o) => o.containerid);
}

test('weave reset of the only peer owning space: a live peer owning nothing inherits it and allocates at once', async () => {
  await withWeaveBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    // h1 alone makes the ring (quorum 1) and owns all of it; h2 joins later and owns nothing.
    await mustWeave(h1, ['launch', '--nickname', 'h1']);
    const c1 = await h1.addContainer('c1');
    await mustWeave(h1, ['attach', '--netns', c1.netnsPath]);
    await mustWeave(h2, ['launch', '--nickname', 'h2', h1.address]);
    await pollWeave(h2, ['status', 'ipam'], /\(h1\)\s+1048576 IPs/, { what: 'h2 learns the ring from h1' });

    await mustWeave(h1, ['reset']);
    await pollWeave(h2, ['status', 'ipam'], (out) => /\(h2\)\s+1048576 IPs/.test(out) && !out.includes('h1'), {
      what: 'h2 owns the whole range and lists no departed h1',
    });
    const c2 = await h2.addContainer('c2');
    const started = Date.now();
    const ip = (await mustWeave(h2, ['attach', '--netns', c2.netnsPath], { timeoutMs: 60_000 })).trim();
    const took = Date.now() - started;
    assert.match(ip, /^10\.(3[2-9]|4[0-7])\./);
    assert.ok(took < ALLOCATE_AFTER_RESET_MS, `allocation on h2 took ${took} ms (bound ${ALLOCATE_AFTER_RESET_MS} ms)`);
    assert.doesNotMatch(await mustWeave(h2, ['status', 'ipam']), /unreachable/);
  });
});

test('relaunch: a changed --ipalloc-range deletes the old data; dead containers\' addresses are free at once', async () => {
  await withWeaveBed(1, async (bed) => {
    const h = bed.host(1);
    await mustWeave(h, ['launch', '--nickname', 'solo']);
    const stays = await h.addContainer('stays');
    const goes = await h.addContainer('goes');
    await mustWeave(h, ['attach', '--netns', stays.netnsPath]);
    const freed = (await mustWeave(h, ['attach', '--netns', goes.netnsPath])).trim();
    await mustWeave(h, ['stop']);

    // The container goes away while the router is down.
    await mustExec('ip', ['netns', 'del', goes.namespace]);
    const started = Date.now();
    await mustWeave(h, ['launch', '--nickname', 'solo']);
    const owned = await ownedIdents(h);
    assert.ok(!owned.includes(goes.netnsPath), `${goes.netnsPath} is released at launch (${Date.now() - started} ms), not after a grace period: ${owned.join(' ')}`);
    assert.ok(owned.includes(stays.netnsPath), 'a live container keeps its address');
    const reuse = await h.addContainer('reuse');
    assert.equal((await mustWeave(h, ['attach', `${freed}/12`, '--netns', reuse.netnsPath])).trim(), freed, 'its address can be claimed again');
    await mustWeave(h, ['stop']);

    const logFile = join(weaveStateDir(h), 'weaver.log');
    await mustWeave(h, ['launch', '--nickname', 'solo', '--ipalloc-range', '10.40.0.0/16']);
    assert.match(readFileSync(logFile, 'utf8'), /Deleting persisted data for IPAM range 10\.32\.0\.0-10\.47\.255\.255; our range is 10\.40\.0\.0\/16/);
    assert.match(await mustWeave(h, ['status']), /Range: 10\.40\.0\.0\/16\n/);
    const fresh = await h.addContainer('fresh');
    assert.match((await mustWeave(h, ['attach', '--netns', fresh.netnsPath])).trim(), /^10\.40\./);
    assert.deepEqual((await ownedIdents(h)).sort(), [fresh.netnsPath], 'nothing of the old range is held');
  });
});
