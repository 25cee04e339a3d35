// The simulated-hosts library itself, against the real kernel: underlay
// reachability, link cuts, UDP blocks, containers, and cleanup that holds even
// when the process using the testbed fails.
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { execCommandSync } from './lib/exec.js';
import {
  createTestbed, waitForPing, sweepStale, execCommand, listNamespaces, pollUntil,
  type Host, type Testbed, type Underlay,
} from './lib/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixture = join(here, 'lib', 'crash-fixture.js');
const notRoot = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : false;

function namespacesOf(prefix: string): string[] {
  return listNamespaces().filter((n) => n.startsWith(`${prefix}-`));
}

async function assertReach(from: Host, to: Host, expected: boolean): Promise<void> {
  const ok = expected ? await waitForPing(from, to.address, 5000) : await from.ping(to.address, { count: 2, waitSeconds: 1 });
  assert.equal(ok, expected, `${from.label} -> ${to.label} (${to.address}) should ${expected ? '' : 'not '}answer ping`);
}

for (const underlay of ['bridge', 'mesh-veths'] as Underlay[]) {
  describe(`testbed with a ${underlay} underlay`, { skip: notRoot }, () => {
    let bed: Testbed;
    after(() => bed?.teardown());

    test('three hosts reach each other, each address only inside its namespace', async () => {
      bed = await createTestbed({ hosts: 3, underlay });
      assert.equal(bed.hosts.length, 3);
      for (const a of bed.hosts) {
        for (const b of bed.hosts) if (a !== b) await assertReach(a, b, true);
      }
      const local = (addr: string) => new RegExp(`inet ${addr.replace(/\./g, '\\.')}[ /]`);
      const addrs = await bed.host('h2').exec('ip', ['-4', '-o', 'addr', 'show']);
      assert.match(addrs.stdout, local(bed.host(2).address));
      assert.doesNotMatch(addrs.stdout, local(bed.host(1).address));
      const rootAddrs = await execCommand('ip', ['-4', '-o', 'addr', 'show']);
      assert.doesNotMatch(rootAddrs.stdout, local(bed.host(1).address), 'the root namespace gets no test address');
    });

    test('cutLink(h1, h3) separates only that pair; healLink restores it', async () => {
      const [h1, h2, h3] = [bed.host(1), bed.host(2), bed.host(3)];
      await bed.cutLink(h1, h3);
      await assertReach(h1, h3, false);
      await assertReach(h3, h1, false);
      await assertReach(h1, h2, true);
      await assertReach(h2, h3, true);
      await bed.healLink(h3, h1);
      await assertReach(h1, h3, true);
      await assertReach(h3, h1, true);
    });
  });
}

describe('containers, UDP blocks and teardown', { skip: notRoot }, () => {
  let bed: Testbed;
  after(() => bed?.teardown());

  test('a container is its own namespace inside the host', async () => {
    bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
    const h1 = bed.host(1);
    const c = await h1.addContainer('web');
    assert.equal(c.host, h1);
    assert.equal(c.netnsPath, `/run/netns/${c.namespace}`);
    assert.ok(existsSync(c.netnsPath));
    const nsOf = async (r: { exec: Host['exec'] }) => (await r.exec('readlink', ['/proc/self/ns/net'])).stdout.trim();
    const [hostNs, containerNs] = [await nsOf(h1), await nsOf(c)];
    assert.match(hostNs, /^net:\[\d+\]$/);
    assert.notEqual(containerNs, hostNs);
    const links = await c.exec('ip', ['-o', 'link', 'show']);
    assert.equal(links.stdout.trim().split('\n').length, 1, `container should only have lo: ${links.stdout}`);
    assert.match(links.stdout, /lo: <LOOPBACK,UP/);
    assert.equal(await c.ping(bed.host(2).address), false, 'a container is not plugged in until something attaches it');
    await assert.rejects(h1.addContainer('web'), /already has a container named "web"/);
  });

  test('blockUdpPort drops datagrams to that port until unblocked', async () => {
    const [h1, h2] = [bed.host(1), bed.host(2)];
    const port = 6783;
    const receiver = h2.spawn(process.execPath, ['-e',
      `require('node:dgram').createSocket('udp4').on('message', (m) => console.log('got ' + m)).bind(${port}, () => console.log('ready'))`]);
    assert.ok(await pollUntil(() => receiver.output().includes('ready'), 5000), `receiver did not start: ${receiver.output()}`);
    const send = (word: string) => h1.exec(process.execPath, ['-e',
      `const s = require('node:dgram').createSocket('udp4'); s.send('${word}', ${port}, '${h2.address}', () => s.close())`]);
    await send('before');
    assert.ok(await pollUntil(() => receiver.output().includes('got before'), 5000), 'datagram before the block should arrive');

    await bed.blockUdpPort(h2, port, { direction: 'in' });
    await send('blocked');
    await bed.unblockUdpPort(h2, port);
    await send('after');
    // The underlay keeps order, so once "after" is in, "blocked" would have been too.
    assert.ok(await pollUntil(() => receiver.output().includes('got after'), 5000), 'datagram after unblocking should arrive');
    assert.doesNotMatch(receiver.output(), /got blocked/);
  });

  test('teardown removes every namespace, process and directory of the run', async () => {
    const sleeper = bed.host(2).spawn('sleep', ['300']);
    assert.ok(namespacesOf(bed.prefix).length >= 4, 'two hosts, the underlay and a container exist before teardown');
    await bed.teardown();
    assert.deepEqual(namespacesOf(bed.prefix), []);
    assert.equal(existsSync(bed.dir), false);
    assert.notEqual(await sleeper.exited, 0, 'processes started in the namespaces are killed');
    await bed.teardown(); // idempotent
  });
});

interface FixtureRun { prefix: string; dir: string; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; kill(sig: NodeJS.Signals): void }

/** Starts the crash fixture and waits for it to report its testbed's prefix. */
async function startFixture(mode: 'throw' | 'wait'): Promise<FixtureRun> {
  const child = spawn(process.execPath, [fixture, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    void exit.then(() => reject(new Error(`crash fixture ended before reporting its prefix: ${stderr}`)));
  });
  const info = JSON.parse(first) as { prefix: string; dir: string };
  return { ...info, exit, kill: (sig) => child.kill(sig) };
}

describe('cleanup when the process using a testbed fails', { skip: notRoot }, () => {
  test('an uncaught exception still removes the namespaces', async () => {
    const run = await startFixture('throw');
    const { code } = await run.exit;
    assert.equal(code, 1, 'the fixture should die of its exception');
    assert.deepEqual(namespacesOf(run.prefix), []);
    assert.equal(existsSync(run.dir), false);
  });

  for (const sig of ['SIGTERM', 'SIGINT'] as NodeJS.Signals[]) {
    test(`${sig} removes the namespaces and then exits`, async () => {
      const run = await startFixture('wait');
      assert.ok(namespacesOf(run.prefix).length >= 3, 'the fixture built its testbed');
      run.kill(sig);
      const { code } = await run.exit;
      assert.equal(code, sig === 'SIGTERM' ? 143 : 130);
      assert.deepEqual(namespacesOf(run.prefix), []);
    });
  }

  test('after SIGKILL nothing can run, and sweepStale() removes the leftovers', async () => {
    const run = await startFixture('wait');
    const pidsBefore = execCommandSync('ip', ['netns', 'pids', `${run.prefix}-h2`]).stdout.trim();
    assert.match(pidsBefore, /^\d+$/, 'the fixture left a process running in h2');
    run.kill('SIGKILL');
    await run.exit;
    assert.ok(namespacesOf(run.prefix).length >= 3, 'SIGKILL leaves the namespaces behind');
    const removed = sweepStale();
    assert.ok(removed.length >= 3);
    assert.deepEqual(namespacesOf(run.prefix), []);
    const gone = await pollUntil(() => !existsSync(`/proc/${pidsBefore}`), 5000);
    assert.ok(gone, 'the orphaned process inside the namespace was killed');
    assert.equal(existsSync(run.dir), false, 'the scratch directory of the dead run was removed');
  });
});
