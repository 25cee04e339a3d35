// A container answers within the bound a user accepts right after the events
// that change the mesh under it: a router restarted (the container attached
// as soon as `weave launch` returns), a new peer joining with `weave connect`,
// and a connection moving fastdp -> sleeve and back (UDP 6784 blocked, then
// unblocked). Each first reply is timed from the event (the later attach, or
// the switch being reported) and must come within 2 s, first ARP included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bpfPinDir, withBpfWeaveBed } from './lib/bpf-bed.js';
import { firstReply } from './lib/convergence.js';
import { connectionsMatch, mustWeave, type Container, type Host, type Testbed, type WeaveOptions } from './lib/index.js';

const FIRST_REPLY_BOUND_MS = 2000;
/** Short fastdp heartbeat timings, so a blocked port is noticed in seconds (spec §6.4 says 10 s / 60 s). */
const HEARTBEAT_ENV = { WEAVE_FASTDP_HEARTBEAT_INTERVAL_MS: '500', WEAVE_FASTDP_HEARTBEAT_TIMEOUT_MS: '3000' };
const SWITCH_BOUND_MS = 15_000;

function envFor(bed: Testbed, h: Host): WeaveOptions {
  return { env: { ...HEARTBEAT_ENV, WEAVE_BPF_PIN_DIR: bpfPinDir(bed, h) } };
}

async function attach(bed: Testbed, h: Host, name: string, ip: string): Promise<Container> {
  const c = await h.addContainer(name);
  await mustWeave(h, ['attach', `${ip}/24`, '--netns', c.netnsPath], envFor(bed, h));
  return c;
}

/** First replies both ways between (a, aIp) and (b, bIp), timed from `since`; asserts the bound. */
async function assertAnswersWithin(what: string, since: number, a: Container, aIp: string, b: Container, bIp: string): Promise<string> {
  const [ab, ba] = await Promise.all([firstReply(a, bIp), firstReply(b, aIp)]);
  const ms = [ab, ba].map((r) => (r === undefined ? undefined : r.at - since));
  for (const [i, m] of ms.entries()) {
    assert.ok(m !== undefined && m <= FIRST_REPLY_BOUND_MS, `${what}, ${i === 0 ? `${aIp} -> ${bIp}` : `${bIp} -> ${aIp}`}: first reply ${m ?? 'never'} ms after the event (bound ${FIRST_REPLY_BOUND_MS} ms)`);
  }
  return `${what} ${ms.join('/')} ms`;
}

test(`first reply within ${FIRST_REPLY_BOUND_MS} ms after a router restart, weave connect of a new peer, fastdp -> sleeve -> fastdp`, async () => {
  await withBpfWeaveBed(3, envFor, async (bed) => {
    const [h1, h2, h3] = bed.hosts as [Host, Host, Host];
    const timings: string[] = [];
    for (const h of [h1, h2]) await mustWeave(h, ['launch', '--nickname', h.label, bed.hosts.filter((o) => o !== h && o !== h3).map((o) => o.address)[0]!], envFor(bed, h));
    const c1 = await attach(bed, h1, 'c1', '10.2.1.1');
    const c2 = await attach(bed, h2, 'c2', '10.2.1.2');
    timings.push(await assertAnswersWithin('launch', Date.now(), c1, '10.2.1.1', c2, '10.2.1.2'));

    // Router restart: stop h2's router, launch it again and attach a new container at once.
    await mustWeave(h2, ['stop'], envFor(bed, h2));
    await mustWeave(h2, ['launch', '--nickname', h2.label, h1.address], envFor(bed, h2));
    const c2b = await attach(bed, h2, 'c2b', '10.2.1.12');
    timings.push(await assertAnswersWithin('restart', Date.now(), c1, '10.2.1.1', c2b, '10.2.1.12'));

    // A new peer, told of the mesh with `weave connect` after launching alone.
    await mustWeave(h3, ['launch', '--nickname', h3.label], envFor(bed, h3));
    await mustWeave(h3, ['connect', h1.address], envFor(bed, h3));
    const c3 = await attach(bed, h3, 'c3', '10.2.1.3');
    const joined = Date.now();
    timings.push(await assertAnswersWithin('connect h3-h1', joined, c1, '10.2.1.1', c3, '10.2.1.3'));
    timings.push(await assertAnswersWithin('connect h3-h2', joined, c2b, '10.2.1.12', c3, '10.2.1.3'));

    // fastdp -> sleeve: h3's fastdp port blocked both ways; once both ends report the sleeve, new containers answer at once.
    await connectionsMatch(h1, /established fastdp \S+\(h3\)/, { timeoutMs: SWITCH_BOUND_MS });
    await bed.blockUdpPort(h3, 6784);
    await connectionsMatch(h1, /established sleeve \S+\(h3\)/, { timeoutMs: SWITCH_BOUND_MS });
    await connectionsMatch(h3, /established sleeve \S+\(h1\)/, { timeoutMs: SWITCH_BOUND_MS });
    const c1s = await attach(bed, h1, 'c1s', '10.2.1.21');
    const c3s = await attach(bed, h3, 'c3s', '10.2.1.23');
    timings.push(await assertAnswersWithin('on sleeve', Date.now(), c1s, '10.2.1.21', c3s, '10.2.1.23'));
    timings.push(await assertAnswersWithin('on sleeve, old containers', Date.now(), c1, '10.2.1.1', c3, '10.2.1.3'));

    // sleeve -> fastdp.
    await bed.unblockUdpPort(h3, 6784);
    await connectionsMatch(h1, /established fastdp \S+\(h3\)/, { timeoutMs: SWITCH_BOUND_MS });
    await connectionsMatch(h3, /established fastdp \S+\(h1\)/, { timeoutMs: SWITCH_BOUND_MS });
    const c1f = await attach(bed, h1, 'c1f', '10.2.1.31');
    const c3f = await attach(bed, h3, 'c3f', '10.2.1.33');
    timings.push(await assertAnswersWithin('back on fastdp', Date.now(), c1f, '10.2.1.31', c3f, '10.2.1.33'));
    timings.push(await assertAnswersWithin('back on fastdp, old containers', Date.now(), c1s, '10.2.1.21', c3s, '10.2.1.23'));
    process.stdout.write(`# reach-events: first replies: ${timings.join('; ')}\n`);
  });
});
