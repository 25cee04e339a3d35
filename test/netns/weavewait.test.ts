// The proxy's waiter (dataplane/weavewait, user-surface spec §7.3.6) on the real
// kernel: in a fresh network namespace it does not run its command until
// `ethwe` is up with an address and (for /w/w) the 224.0.0.0/4 route exists,
// and then runs it at once, woken by rtnetlink rather than by polling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createTestbed, mustExec, type Container, type Host, type Testbed } from './lib/index.js';
import type { SpawnedProcess } from './lib/exec.js';

const waiter = (variant: 'w' | 'w-nomcast' | 'w-noop'): string =>
  fileURLToPath(new URL(`../../weavewait/${variant}/w`, import.meta.url));
/** How long a waiter that must still be waiting is watched (absence has no event to wait for). */
const STILL_WAITING_MS = 300;
/** A user would not notice this between the last network change and the command starting. */
const START_BOUND_MS = 1_000;

let bed: Testbed;
let host: Host;

before(async () => {
  bed = await createTestbed({ hosts: 1, underlay: 'bridge' });
  host = bed.hosts[0];
});
after(async () => { await bed?.teardown(); });

async function stillWaiting(p: SpawnedProcess): Promise<boolean> {
  const r = await Promise.race([p.exited.then(() => 'exited'), new Promise((res) => setTimeout(() => res('waiting'), STILL_WAITING_MS))]);
  return r === 'waiting';
}

async function exitedWithin(p: SpawnedProcess, ms: number): Promise<number> {
  const t = Date.now();
  const code = await Promise.race([p.exited, new Promise<number>((_r, rej) => setTimeout(() => rej(new Error(`not started within ${ms} ms: ${p.output()}`)), ms))]);
  assert.equal(code, 0, p.output());
  return Date.now() - t;
}

test('w waits for ethwe up with an address and the multicast route; w-nomcast only for ethwe', async () => {
  const c: Container = await host.addContainer('ww1');
  const full = c.spawn(waiter('w'), ['echo', 'started']);
  const nomcast = c.spawn(waiter('w-nomcast'), ['echo', 'started']);
  assert.ok(await stillWaiting(full) && await stillWaiting(nomcast), 'both wait while there is no ethwe');
  await mustExec('ip', ['link', 'add', 'vww1', 'netns', host.namespace, 'type', 'veth', 'peer', 'name', 'ethwe', 'netns', c.namespace]);
  await mustExec('ip', ['-n', host.namespace, 'link', 'set', 'vww1', 'up']);
  await mustExec('ip', ['-n', c.namespace, 'link', 'set', 'ethwe', 'up']);
  assert.ok(await stillWaiting(nomcast), 'ethwe up without an address is not enough');
  await mustExec('ip', ['-n', c.namespace, 'addr', 'add', '10.2.0.5/24', 'dev', 'ethwe']);
  const nomcastMs = await exitedWithin(nomcast, START_BOUND_MS);
  assert.equal(nomcast.output(), 'started\n');
  assert.ok(await stillWaiting(full), '/w/w also needs the multicast route');
  await mustExec('ip', ['-n', c.namespace, 'route', 'add', '224.0.0.0/4', 'dev', 'ethwe']);
  const fullMs = await exitedWithin(full, START_BOUND_MS);
  assert.equal(full.output(), 'started\n');
  process.stdout.write(`waiter started its command ${nomcastMs} ms (w-nomcast) / ${fullMs} ms (w) after the last change\n`);
});

test('w-noop runs at once; no command and unknown commands fail as Weave\'s', async () => {
  const c = await host.addContainer('ww2');
  const noop = c.spawn(waiter('w-noop'), ['echo', 'now']);
  await exitedWithin(noop, START_BOUND_MS);
  assert.equal(noop.output(), 'now\n');
  const none = c.spawn(waiter('w-noop'), []);
  assert.equal(await none.exited, 1);
  assert.equal(none.output(), 'No command specified\n');
  const unknown = c.spawn(waiter('w-noop'), ['nosuchcommand']);
  assert.equal(await unknown.exited, 1);
  assert.equal(unknown.output(), 'exec: "nosuchcommand": executable file not found in $PATH\n');
});
