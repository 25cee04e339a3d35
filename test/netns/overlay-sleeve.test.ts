// Containers on different simulated hosts reach each other through real
// routers started with `weave launch`: the overlay switch picks the sleeve
// (wire spec §5.9), the connection is established by its heartbeats (§2.5),
// and `weave status connections` says which overlay is in use and whether it
// is encrypted (user-surface spec §2.3, §8).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestbed, pollUntil, type Container, type Host, type Testbed } from './lib/index.js';

const WEAVE = fileURLToPath(new URL('../../../bin/weave', import.meta.url));
const CONVERGE_MS = 30_000;

function weave(h: Host, args: string[]) {
  return h.exec(process.execPath, [WEAVE, ...args], { env: { WEAVE_STATE_DIR: join(h.dir, 'state') }, timeoutMs: 60_000 });
}

async function mustWeave(h: Host, args: string[]): Promise<string> {
  const r = await weave(h, args);
  assert.equal(r.code, 0, `weave ${args.join(' ')} on ${h.label} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A testbed whose routers are stopped and namespaces removed however the test ends. */
async function withBed(hosts: number, body: (bed: Testbed) => Promise<void>): Promise<void> {
  const bed = await createTestbed({ hosts, underlay: 'bridge' });
  try {
    await body(bed);
  } finally {
    for (const h of bed.hosts) await weave(h, ['stop']).catch(() => undefined);
    await bed.teardown();
  }
}

async function attachContainer(h: Host): Promise<Container> {
  const c = await h.addContainer('c1');
  assert.equal(await mustWeave(h, ['attach', `10.32.0.${h.index}/12`, '--netns', c.netnsPath]), `10.32.0.${h.index}\n`);
  return c;
}

/** Polls `weave status connections` until `want` matches; returns the last output. */
async function connectionsMatch(h: Host, want: RegExp): Promise<string> {
  let out = '';
  const ok = await pollUntil(async () => {
    out = (await weave(h, ['status', 'connections'])).stdout;
    return want.test(out);
  }, CONVERGE_MS, 250);
  assert.ok(ok, `${h.label}: status connections should match ${want}:\n${out}`);
  return out;
}

async function mustPing(from: Container, to: string, what: string): Promise<void> {
  const ok = await pollUntil(() => from.ping(to, { count: 1, waitSeconds: 1 }), 20_000, 200);
  assert.ok(ok, `${what}: ${to} answers ping`);
}

test('two hosts: containers ping across the sleeve; status shows sleeve and why not fastdp', async () => {
  await withBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await mustWeave(h1, ['launch', '--nickname', 'h1']);
    await mustWeave(h2, ['launch', '--nickname', 'h2', h1.address]);
    const line = await connectionsMatch(h2, /^-> \S+:6783\s+established sleeve \S+\(h1\) mtu=\d+ \(fastdp: [^)]+\)+\s*$/m);
    assert.doesNotMatch(line, /encrypted/);
    await connectionsMatch(h1, /^<- \S+\s+established sleeve \S+\(h2\) mtu=\d+ \(fastdp: [^)]+\)+\s*$/m);
    const [c1, c2] = [await attachContainer(h1), await attachContainer(h2)];
    await mustPing(c1, '10.32.0.2', 'h1/c1 -> h2/c1');
    await mustPing(c2, '10.32.0.1', 'h2/c1 -> h1/c1');
    // The sleeve is a userspace path: its capture port is on the bridge.
    assert.equal((await mustWeave(h1, ['report', '-f', '{{.Router.Interface}}'])).trim(), 'vethwe-pcap (via pcap)');
    const diag = await mustWeave(h1, ['report', '-f', '{{json .Router.OverlayDiagnostics}}']);
    assert.match(diag, /"overlay":"sleeve"/);
    assert.match(diag, /"reason":"fastdp: [^"]+"/, 'the report says why fastdp is not in use');
  });
});

test('two hosts with --password: encrypted sleeve, and the containers still reach each other', async () => {
  await withBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await mustWeave(h1, ['launch', '--password', 'overlay-secret', '--nickname', 'h1']);
    await mustWeave(h2, ['launch', '--password', 'overlay-secret', '--nickname', 'h2', h1.address]);
    await connectionsMatch(h2, /^-> \S+\s+established encrypted\s+sleeve \S+\(h1\) encrypted=truemtu=\d+ \(fastdp: [^)]+\)+\s*$/m);
    await connectionsMatch(h1, /^<- \S+\s+established encrypted\s+sleeve \S+\(h2\) encrypted=truemtu=\d+ \(fastdp: [^)]+\)+\s*$/m);
    const [c1, c2] = [await attachContainer(h1), await attachContainer(h2)];
    await mustPing(c1, '10.32.0.2', 'h1/c1 -> h2/c1 (encrypted)');
    await mustPing(c2, '10.32.0.1', 'h2/c1 -> h1/c1 (encrypted)');
  });
});

test('three hosts with h1-h3 cut: h1\'s container reaches h3\'s through h2', async () => {
  await withBed(3, async (bed) => {
    const [h1, h2, h3] = bed.hosts as [Host, Host, Host];
    await bed.cutLink(h1, h3);
    // Every router is given the same peer list, as Weave's docs ask, so IPAM's
    // consensus (quorum from the initial peer count) agrees on all three.
    await mustWeave(h2, ['launch', '--nickname', 'h2', h1.address, h3.address]);
    await mustWeave(h1, ['launch', '--nickname', 'h1', h2.address, h3.address]);
    await mustWeave(h3, ['launch', '--nickname', 'h3', h2.address, h1.address]);
    for (const h of [h1, h3]) await connectionsMatch(h, /established sleeve \S+\(h2\)/);
    const h1Lines = (await weave(h1, ['status', 'connections'])).stdout;
    assert.doesNotMatch(h1Lines, /established .*\(h3\)/, `h1 has no direct connection to h3:\n${h1Lines}`);
    const [c1, , c3] = [await attachContainer(h1), await attachContainer(h2), await attachContainer(h3)];
    await mustPing(c1, '10.32.0.3', 'h1/c1 -> h3/c1 via h2');
    await mustPing(c3, '10.32.0.1', 'h3/c1 -> h1/c1 via h2');
    assert.equal(await h1.ping(h3.address, { count: 1, waitSeconds: 1 }), false, 'the underlay between h1 and h3 stays cut');
  });
});

test('weave reset removes the sleeve\'s capture port', async () => {
  await withBed(1, async (bed) => {
    const h = bed.host(1);
    await mustWeave(h, ['launch']);
    assert.equal((await h.exec('ip', ['link', 'show', 'vethwe-pcap'])).code, 0, 'the sleeve made its capture port');
    await mustWeave(h, ['reset']);
    assert.notEqual((await h.exec('ip', ['link', 'show', 'vethwe-pcap'])).code, 0, 'reset removed it');
  });
});
