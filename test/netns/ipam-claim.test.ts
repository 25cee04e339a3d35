// Claims of explicit addresses inside IPAM's range on a mesh whose routers are
// not all directly connected (user-surface spec §1.6 `weave attach ip:`; wire
// spec §8.6 consensus, §8.7 space requests): routers h1-h2-h3 in a line with
// h1-h3 cut before launch. Claims that start consensus, claims of space owned
// by a peer reachable only through a relay, and claims of an address in use
// there all answer within seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  launchCutLine, pollUntil, weave, withWeaveBed, type Host,
} from './lib/index.js';

/** A claim must answer within this (consensus and one relayed space request on a loaded machine). */
const CLAIM_BOUND_MS = 20_000;

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0) >>> 0;
}

function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

interface RingEntry { Token: string; Size: number; Nickname: string }

/** The ring as the router's `/report` lists it. */
async function ringOf(h: Host): Promise<RingEntry[]> {
  const r = await h.exec('curl', ['-sf', '--max-time', '5', 'http://127.0.0.1:6784/report']);
  if (r.code !== 0) return [];
  return (JSON.parse(r.stdout) as { IPAM?: { Entries: RingEntry[] | null } }).IPAM?.Entries ?? [];
}

/** `weave attach <cidr>` for a fresh container on `h`; its result and how long it took. */
async function timedClaim(h: Host, name: string, cidr: string): Promise<{ code: number; out: string; ms: number }> {
  const c = await h.addContainer(name);
  const started = Date.now();
  const r = await weave(h, ['attach', cidr, '--netns', c.netnsPath], { timeoutMs: CLAIM_BOUND_MS * 3 });
  return { code: r.code, out: `${r.stdout}${r.stderr}`.trim(), ms: Date.now() - started };
}

test('line h1-h2-h3 with h1-h3 cut: explicit claims start consensus, cross the relay and answer within seconds', { timeout: 240_000 }, async () => {
  await withWeaveBed(3, async (bed) => {
    // The same peer list everywhere, so consensus has quorum 2 of 3 on every router.
    const [h1, , h3] = await launchCutLine(bed);

    // No ring yet: each claim starts (or joins) consensus, and one of the three
    // addresses is owned by each peer's neighbour or by the peer behind the relay.
    const first = await Promise.all(bed.hosts.map((h) => timedClaim(h, 'c1', `10.32.0.${h.index}/12`)));
    for (const [i, r] of first.entries()) {
      assert.equal(r.code, 0, `h${i + 1}: claim of 10.32.0.${i + 1} succeeded: ${r.out}`);
      assert.equal(r.out, `10.32.0.${i + 1}`);
      assert.ok(r.ms < CLAIM_BOUND_MS, `h${i + 1}: claim of 10.32.0.${i + 1} answered in ${r.ms} ms`);
    }

    // The routers agree on a ring with three owners.
    let rings: RingEntry[][] = [];
    const agreed = await pollUntil(async () => {
      rings = await Promise.all(bed.hosts.map(ringOf));
      const text = rings.map((r) => JSON.stringify(r));
      return new Set(rings[0].map((e) => e.Nickname)).size === 3 && text.every((t) => t === text[0]);
    }, 30_000, 250);
    assert.ok(agreed, `the three routers agree on the ring: ${JSON.stringify(rings)}`);

    // A free address in a range h3 owns, claimed on h1, which reaches h3 only through h2.
    const h3Range = rings[0].filter((e) => e.Nickname === 'h3').sort((a, b) => b.Size - a.Size)[0];
    assert.ok(h3Range && h3Range.Size >= 16, `h3 owns a range: ${JSON.stringify(rings[0])}`);
    const relayed = intToIp(ipToInt(h3Range.Token) + 7);
    const viaRelay = await timedClaim(h1, 'c2', `${relayed}/12`);
    assert.equal(viaRelay.code, 0, `h1: claim of ${relayed} (owned by h3, via h2) succeeded: ${viaRelay.out}`);
    assert.equal(viaRelay.out, relayed);
    assert.ok(viaRelay.ms < CLAIM_BOUND_MS, `h1: claim of ${relayed} via the relay answered in ${viaRelay.ms} ms`);

    // An address h3 has handed to a container: claiming it on h1 is refused, not left waiting.
    const inUse = intToIp(ipToInt(h3Range.Token) + 9);
    assert.equal((await timedClaim(h3, 'c2', `${inUse}/12`)).code, 0, `h3 claims ${inUse} for its own container`);
    const refused = await timedClaim(h1, 'c3', `${inUse}/12`);
    assert.notEqual(refused.code, 0, `h1: claim of ${inUse}, in use on h3, is refused: ${refused.out}`);
    assert.match(refused.out, new RegExp(`${inUse.replace(/\./g, '\\.')}.*(h3|in use|owned)`), 'the error names the address and why');
    assert.ok(refused.ms < CLAIM_BOUND_MS, `h1: the refusal of ${inUse} came in ${refused.ms} ms`);
  });
});
