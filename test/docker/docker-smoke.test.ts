// Proves the private dockerd works here: a busybox container runs without a network, and
// `docker inspect` yields the pid whose /proc/PID/ns/net later tests attach containers by.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { startDockerd, importBusybox, containerPid, containerNetnsPath } from './dockerd.js';
import type { Dockerd } from './dockerd.js';
import { uniqueSuffix } from '../support/exec.js';

let d: Dockerd | undefined;
let image = '';
const run = uniqueSuffix();

before(async () => {
  d = await startDockerd();
  process.stdout.write(`dockerd answered /_ping after ${d.startMs} ms\n`);
  image = await importBusybox(d);
});
after(async () => { await d?.stop(); });

function daemon(): Dockerd {
  assert.ok(d, 'dockerd did not start (see the before hook)');
  return d;
}

test('a --network none container echoes a string', async () => {
  const greeting = `hello-from-${run}`;
  const out = await daemon().docker(['run', '--rm', '--network', 'none', image, 'echo', greeting]);
  assert.equal(out.trim(), greeting);
});

test('docker inspect gives the pid and network namespace of a running container', async () => {
  const name = `weave-test-smoke-${run}`;
  await daemon().docker(['run', '-d', '--name', name, '--network', 'none', image, 'sleep', '300']);
  try {
    const pid = await containerPid(daemon(), name);
    const netns = await containerNetnsPath(daemon(), name);
    assert.equal(netns, `/proc/${pid}/ns/net`);
    // The container has a namespace of its own, not ours.
    assert.match(readlinkSync(netns), /^net:\[\d+\]$/);
    assert.notEqual(readlinkSync(netns), readlinkSync('/proc/self/ns/net'));
    const links = await daemon().docker(['exec', name, 'ip', '-o', 'link']);
    assert.deepEqual(links.trim().split('\n').map((l) => l.split(':')[1]?.trim()), ['lo']);
  } finally {
    await daemon().docker(['rm', '-f', name]);
  }
});
