// The sleeve datapath on the real kernel between two simulated hosts, driven
// without the mesh router: forwarders are wired to each other in-process.
// Plain and encrypted: heartbeats establish, ping and 1 MB TCP both ways, the
// PMTU is discovered, encrypted traffic shows no plaintext on the underlay and
// plaintext datagrams are dropped, and a killed packet worker is restarted.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createTestbed, pollUntil, waitForPing, type Testbed } from './lib/index.js';
import {
  applyTopology, connectNodes, plugNode, startSleeve, stopSleeve, tcpSendScript, tcpSinkScript, SLEEVE_PORT,
  type Link, type SleeveNode,
} from './sleeve-harness.js';
import { overheadDF } from '../../dataplane/sleeve/constants.js';

const UNDERLAY_MTU = 1500;
const CONTAINER_MTU = 1376;
const PATTERN = 'SLEEVE-KNOWN-PLAINTEXT-';
/** Worker kills after the first, with the RSS compared across them. */
const WORKER_KILLS = 5;
/** Growth allowed over those kills: well under one leaked worker's packet batches (4 x 64 x 64 KiB). */
const LEAK_BOUND_MIB = 12;
/** How long the sleeve must go unused before its worker is parked, here (60 s in the router). */
const PARK_AFTER_MS = 300;

/** A field of /proc/self/status, in KiB. */
function vmKiB(field: 'VmData' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  assert.ok(m, `${field} in /proc/self/status`);
  return Number(m[1]);
}

async function transfer(from: SleeveNode, to: SleeveNode, bytes: number, port: number): Promise<string> {
  const sink = to.container.spawn('node', ['-e', tcpSinkScript(port)]);
  assert.ok(await pollUntil(() => sink.output().includes('listening'), 10_000, 20), `sink did not start: ${sink.output()}`);
  const r = await from.container.exec('node', ['-e', tcpSendScript(to.ip, port, bytes, PATTERN)], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `sender failed: ${r.stderr}`);
  assert.ok(await pollUntil(() => /^\d+ [0-9a-f]{64}/m.test(sink.output()), 30_000, 50), `sink got no end: ${sink.output()}`);
  return sink.output().split('\n').find((l) => /^\d+ /.test(l))!;
}

async function expectedDigest(bytes: number): Promise<string> {
  const { createHash } = await import('node:crypto');
  return `${bytes} ${createHash('sha256').update(Buffer.alloc(bytes, PATTERN)).digest('hex')}`;
}

for (const encrypt of [false, true]) {
  describe(`sleeve between two hosts (${encrypt ? 'encrypted' : 'plain'})`, () => {
    let bed: Testbed;
    let a: SleeveNode;
    let b: SleeveNode;
    let link: Link;
    let lazyWorkerBefore: number | undefined;
    let lazyWorkerAfter: number | undefined;

    before(async () => {
      bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
      a = await plugNode(bed.host(1), 1, CONTAINER_MTU);
      b = await plugNode(bed.host(2), 2, CONTAINER_MTU);
      await startSleeve(a, CONTAINER_MTU, { parkIdleWorkerAfterMs: PARK_AFTER_MS });
      // b's worker starts only with its first forwarder.
      await startSleeve(b, CONTAINER_MTU, { workerStart: 'first-forwarder', parkIdleWorkerAfterMs: PARK_AFTER_MS });
      lazyWorkerBefore = b.dp!.workerThreadId;
      link = connectNodes(a, b, encrypt);
      lazyWorkerAfter = b.dp!.workerThreadId;
      applyTopology([a, b], [[a, b]]);
    });

    after(async () => {
      await stopSleeve(a);
      await stopSleeve(b);
      await bed?.teardown();
    });

    test('a lazy sleeve has no packet worker until its first forwarder', () => {
      assert.equal(lazyWorkerBefore, undefined);
      assert.equal(typeof lazyWorkerAfter, 'number');
    });

    test('heartbeats establish both forwarders', async () => {
      const timeout = new Promise<string>((r) => setTimeout(() => r('timeout'), 10_000).unref());
      assert.equal(await Promise.race([link.established.then(() => 'ok'), timeout]), 'ok');
      assert.equal(link.fa.status().state, 'established');
      assert.equal(link.fb.status().state, 'established');
      assert.equal(link.fa.status().encrypted, encrypt);
      assert.deepEqual(link.failures, []);
    });

    test('ping works both ways', async () => {
      assert.ok(await waitForPing(a.container, b.ip, 10_000), 'a cannot ping b');
      assert.ok(await waitForPing(b.container, a.ip, 10_000), 'b cannot ping a');
    });

    test('the overlay MTU is discovered from the underlay path MTU', async () => {
      const want = UNDERLAY_MTU - overheadDF(encrypt);
      assert.ok(await pollUntil(() => link.fa.status().mtu === want && link.fb.status().mtu === want, 10_000, 50),
        `mtu a=${link.fa.status().mtu} b=${link.fb.status().mtu}, want ${want}`);
    });

    test('10 KiB and 1 MB TCP transfers arrive intact both ways', async () => {
      assert.equal(await transfer(a, b, 10 * 1024, 5001), await expectedDigest(10 * 1024));
      assert.equal(await transfer(a, b, 1 << 20, 5002), await expectedDigest(1 << 20));
      assert.equal(await transfer(b, a, 1 << 20, 5003), await expectedDigest(1 << 20));
    });

    test('no neighbour on the sleeve: workers parked, the main thread heartbeats; on the sleeve again: workers back, traffic flows', async () => {
      const before = [a.dp!.counters(), b.dp!.counters()];
      const started = Date.now();
      applyTopology([a, b], [[a, b]], 'fastdp');
      assert.ok(await pollUntil(() => a.dp!.parked && b.dp!.parked, PARK_AFTER_MS + 3000, 20), 'both sleeve workers parked');
      assert.equal(a.dp!.workerThreadId, undefined);
      const parkedAfter = Date.now() - started;
      // A forwarder handed to the keeper heartbeats at once: each side's keeper sends one, and the
      // other's opens it (sealed with the shared counters, opened by a fresh opener when encrypted).
      const heard = (i: number, dp: SleeveNode['dp']): boolean => dp!.counters().framesReceived > before[i]!.framesReceived && dp!.counters().framesSent > before[i]!.framesSent;
      assert.ok(await pollUntil(() => heard(0, a.dp) && heard(1, b.dp), 3000, 20),
        `heartbeats from the main thread: a ${JSON.stringify(a.dp!.counters())} b ${JSON.stringify(b.dp!.counters())}`);
      for (const [i, dp] of [a.dp!, b.dp!].entries()) {
        for (const reason of ['authentication-failed', 'replayed', 'unknown-sender'] as const) {
          assert.equal(dp.counters().drops[reason] ?? 0, before[i]!.drops[reason] ?? 0, `${reason} drops while parked`);
        }
      }
      assert.equal(link.fa.status().state, 'established');
      assert.equal(link.fb.status().state, 'established');
      assert.deepEqual(link.failures, []);

      const unparkAt = Date.now();
      applyTopology([a, b], [[a, b]]);
      assert.ok(!a.dp!.parked && !b.dp!.parked, 'a state with the sleeve in it starts the workers at once');
      assert.ok(await waitForPing(a.container, b.ip, 10_000), 'a cannot ping b after the workers came back');
      const pingAfter = Date.now() - unparkAt;
      assert.ok(await waitForPing(b.container, a.ip, 10_000), 'b cannot ping a after the workers came back');
      // The sealers' counters went on across both handovers: the peer's replay window takes every datagram.
      assert.equal(await transfer(a, b, 1 << 20, 5010), await expectedDigest(1 << 20));
      process.stdout.write(`# parked ${parkedAfter} ms after the sleeve went unused (${PARK_AFTER_MS} ms asked); ping through the restarted workers ${pingAfter} ms after\n`);
      assert.ok(pingAfter < 2000, `first ping ${pingAfter} ms after the sleeve was needed again`);
    });

    if (encrypt) {
      test('the underlay never carries the plaintext, and plaintext datagrams are dropped', async () => {
        const pcap = `${bed.dir}/underlay.pcap`;
        const dump = a.host.spawn('tcpdump', ['-i', 'eth0', '-U', '-w', pcap, 'udp', 'port', String(SLEEVE_PORT)]);
        await pollUntil(async () => (await a.host.run(`test -s ${pcap}`)).code === 0, 5000, 50);
        assert.equal(await transfer(a, b, 1 << 20, 5004), await expectedDigest(1 << 20));
        dump.kill('SIGINT');
        await dump.exited;
        const grep = await a.host.run(`grep -c ${PATTERN} ${pcap} || true`);
        assert.equal(grep.stdout.trim(), '0', 'plaintext pattern found in the underlay capture');
        const size = await a.host.run(`stat -c %s ${pcap}`);
        assert.ok(Number(size.stdout) > 1 << 19, `capture too small (${size.stdout.trim()} bytes) to be meaningful`);

        // A datagram in the clear from a's address, claiming to be a: b must drop it and count it.
        const before = b.dp!.stats().drops['authentication-failed'] ?? 0n;
        const clear = `const d=require('dgram').createSocket('udp4');const m=Buffer.alloc(6+14+60);m.writeUIntBE(${a.name},0,6);m.writeUIntBE(${a.name},6,6);m.writeUIntBE(${b.name},12,6);m.writeUInt16BE(60,18);m.fill(0xab,20);d.send(m,${SLEEVE_PORT},'${b.host.address}',()=>d.close())`;
        assert.equal((await a.host.exec('node', ['-e', clear])).code, 0);
        assert.ok(await pollUntil(() => (b.dp!.stats().drops['authentication-failed'] ?? 0n) > before, 5000, 50),
          `plaintext datagram not counted: ${JSON.stringify(b.dp!.workerStats()?.drops)}`);
      });
    } else {
      test('a killed packet worker is restarted and ping resumes', async () => {
        const firstThread = a.dp!.workerThreadId;
        await a.dp!.killWorkerForTest();
        assert.ok(await pollUntil(() => a.dp!.workerRestarts === 1 && a.dp!.workerThreadId !== undefined, 5000, 20), 'worker not restarted');
        assert.notEqual(a.dp!.workerThreadId, firstThread);
        assert.ok(await waitForPing(a.container, b.ip, 10_000), 'ping did not resume after the restart');
        assert.ok(await waitForPing(b.container, a.ip, 10_000), 'reverse ping did not resume after the restart');
        assert.equal(link.fa.status().state, 'established');
        // Each worker's packet batches (~17 MB) go with it, also when it is killed rather than stopped.
        // Measured as the process's private writable memory (VmData): slots no packet has touched yet are not resident, but leak all the same.
        const vmDataBefore = vmKiB('VmData');
        const rssBefore = vmKiB('VmRSS');
        for (let kill = 2; kill <= 1 + WORKER_KILLS; kill++) {
          await a.dp!.killWorkerForTest();
          assert.ok(await pollUntil(() => a.dp!.workerRestarts === kill && a.dp!.workerThreadId !== undefined, 5000, 20), `worker not restarted after kill ${kill}`);
        }
        assert.ok(await waitForPing(a.container, b.ip, 10_000), `ping did not resume after ${WORKER_KILLS} more restarts`);
        const grewMiB = (vmKiB('VmData') - vmDataBefore) / 1024;
        process.stdout.write(`# over ${WORKER_KILLS} worker kills: VmData ${(vmDataBefore / 1024).toFixed(1)} -> ${(vmKiB('VmData') / 1024).toFixed(1)} MiB, `
          + `VmRSS ${(rssBefore / 1024).toFixed(1)} -> ${(vmKiB('VmRSS') / 1024).toFixed(1)} MiB\n`);
        assert.ok(grewMiB < LEAK_BOUND_MIB, `private memory grew ${grewMiB.toFixed(1)} MiB over ${WORKER_KILLS} worker kills (a leaked worker's batches are ~17 MiB)`);
      });
    }
  });
}
