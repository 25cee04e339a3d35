// Short id collisions resolved across a live mesh (spec §4.8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestMesh, identity } from './mesh-harness.js';

test('two routers that start with the same short id end up with distinct ones; the lower name keeps it', async () => {
  let changes = 0;
  const mesh = new TestMesh(3, { onShortIdsChanged: () => changes++ }, (i) => identity(i + 1, { shortId: 42 }));
  try {
    mesh.connect(0, 1);
    mesh.connect(1, 2);
    await mesh.advance(10_000);
    const ids = mesh.peers.map((p) => p.router.peers.ourselves.shortId);
    assert.equal(ids[0], 42, 'the lowest name stays principal');
    assert.equal(new Set(ids).size, 3, `short ids are distinct: ${ids.join(', ')}`);
    for (const p of mesh.peers) {
      for (const q of mesh.peers) {
        const view = p.router.peers.byShortId(q.router.peers.ourselves.shortId);
        assert.equal(view?.name, q.identity.name, 'every router maps each id to its owner');
      }
    }
    assert.ok(changes > 0);
  } finally {
    mesh.stop();
  }
});
