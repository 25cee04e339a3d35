// The short id is kept across restarts in the state directory (spec §4.8),
// only for the same peer name, and a kept id still yields to the collision rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createIdentity, persistShortId, readPersistedShortId, resolvePeerName, shortIdFile } from '../../weaver/identity.js';
import { statePaths } from '../../controlplane/cli/state-paths.js';
import { TestMesh, identity } from './mesh-harness.js';

function withStateDir(body: (paths: { dir: string }) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'weave-short-id-'));
  return Promise.resolve(body({ dir })).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('a restarted router gets the short id it had, for the same name only', () =>
  withStateDir((paths) => {
    const name = identity(1).name;
    const first = createIdentity(name, 'h1', paths);
    assert.equal(readPersistedShortId(paths, name), first.shortId, 'the chosen id is saved');
    for (let i = 0; i < 5; i++) assert.equal(createIdentity(name, 'h1', paths).shortId, first.shortId, 'kept across restarts');
    assert.notEqual(createIdentity(name, 'h1', paths).uid, first.uid, 'the UID is still new every start');
    assert.equal(readPersistedShortId(paths, identity(2).name), undefined, 'a different name does not inherit it');
    persistShortId(paths, name, 4095);
    assert.equal(createIdentity(name, 'h1', paths).shortId, 4095, 'a reassigned id, once saved, is the one kept');
  }));

test('an unreadable or foreign short-id file is ignored, and bad ids are refused', () =>
  withStateDir((paths) => {
    const name = identity(1).name;
    for (const junk of ['', 'garbage', `${'zz'} 12`, 'aa:bb:cc:dd:ee:ff 99999']) {
      writeFileSync(shortIdFile(paths), junk);
      assert.equal(readPersistedShortId(paths, name), undefined, `ignored: ${JSON.stringify(junk)}`);
      const id = createIdentity(name, 'h1', paths).shortId;
      assert.ok(id >= 0 && id <= 0xfff);
    }
    assert.throws(() => persistShortId(paths, name, 4096), /12-bit/);
    assert.throws(() => persistShortId(paths, name, -1), /12-bit/);
  }));

test('a kept short id that another peer with a lower name holds is reassigned as usual', () =>
  withStateDir(async (paths) => {
    const [low, high] = [identity(1), identity(2)];
    persistShortId(paths, high.name, low.shortId);
    const kept = createIdentity(high.name, 'h2', paths);
    assert.equal(kept.shortId, low.shortId, 'the saved (colliding) id is claimed at start');
    const mesh = new TestMesh(2, {}, (i) => (i === 0 ? low : kept));
    try {
      mesh.connect(0, 1);
      await mesh.advance(10_000);
      const ids = mesh.peers.map((p) => p.router.peers.ourselves.shortId);
      assert.equal(ids[0], low.shortId, 'the lower name keeps the id');
      assert.notEqual(ids[1], low.shortId, 'the restarted router chose another one');
    } finally {
      mesh.stop();
    }
  }));

test('the peer name is written on first start and when it changes, not again on a restart with the same name', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weave-name-'));
  try {
    const paths = statePaths(dir);
    const first = resolvePeerName(paths, undefined);
    assert.equal(resolvePeerName(paths, undefined), first, 'a restart keeps the persisted name');
    // Back-date the file: a rewrite would move its mtime to now.
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(paths.peerNameFile, old, old);
    assert.equal(resolvePeerName(paths, first), first);
    const seconds = (ms: number): number => Math.floor(ms / 1000);
    assert.equal(seconds(statSync(paths.peerNameFile).mtimeMs), seconds(old.getTime()), 'the same name given again is not rewritten');
    const other = first ^ 1n;
    assert.equal(resolvePeerName(paths, other), other, '--name wins');
    assert.notEqual(seconds(statSync(paths.peerNameFile).mtimeMs), seconds(old.getTime()), 'a new name is written');
    assert.equal(resolvePeerName(paths, undefined), other, 'and is what the next start reads');
    assert.match(readFileSync(paths.peerNameFile, 'utf8'), /^([0-9a-f]{2}:){5}[0-9a-f]{2}\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
