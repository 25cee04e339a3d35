// Proves podman drives a real CNI plugin chain here: a container on the private bridge +
// host-local network gets an address from the configured range.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setupPodman, importBusyboxPodman } from './podman.js';
import type { Podman } from './podman.js';
import { uniqueSuffix } from '../support/exec.js';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

let p: Podman | undefined;
let image = '';

before(async () => {
  p = setupPodman({ subnet: '10.99.0.0/24' });
  image = await importBusyboxPodman(p);
});
after(async () => { await p?.cleanup(); });

test('a container on the CNI network gets an address from the host-local range, released on removal', async () => {
  assert.ok(p, 'podman setup failed (see the before hook)');
  const name = `weave-test-cni-${uniqueSuffix()}`;
  await p.run(['-d', '--name', name, image, 'sleep', '300']);
  const leases = join(p.dir, 'ipam', p.network);
  try {
    const out = await p.podman(['exec', name, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    const m = /inet (10\.99\.0\.(\d+))\/24/.exec(out);
    assert.ok(m, `no 10.99.0.0/24 address on eth0 in:\n${out}`);
    assert.ok(Number(m[2]) >= 2 && Number(m[2]) <= 254, `address ${m[1]} is outside host-local's usable range`);
    // host-local keeps one file per leased address in its data dir.
    assert.ok(existsSync(join(leases, m[1] ?? '')), `host-local holds no lease file for ${m[1]} in ${leases}`);
  } finally {
    await p.podman(['rm', '--force', '--time', '0', name]);
  }
  // Removing the container runs the CNI DEL, which returns the address.
  assert.deepEqual(readdirSync(leases).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)), []);
});

test('the container has no route off its own subnet', async () => {
  assert.ok(p, 'podman setup failed (see the before hook)');
  const routes = await p.run(['--rm', image, 'ip', '-4', 'route']);
  assert.doesNotMatch(routes, /^default/m);
  assert.match(routes, /^10\.99\.0\.0\/24 dev eth0/m);
});
