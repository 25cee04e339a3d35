// IPAM across a network partition (user-surface spec §1.6, §2.6; wire spec
// §8): once the ring exists, each router allocates from the space it owns
// without asking anyone, so both sides of a partition keep handing out
// addresses, none of them twice; after the partition heals the routers agree
// on the ring again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  launchFullMesh, mustWeave, pollUntil, pollWeave, withWeaveBed, type Container, type Host,
} from './lib/index.js';

const PER_HOST_IN_PARTITION = 5;
// A router notices a silent peer only when its read timeout expires (about 60 s).
const CUT_DETECT_MS = 90_000;
const HEAL_MS = 60_000;

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

const inUniverse = (ip: string): boolean => ipToInt(ip) >= ipToInt('10.32.0.0') && ipToInt(ip) < ipToInt('10.48.0.0');

/** Peer nicknames listed by `weave status peers` (top-level lines end in "(nickname)"). */
function peerNicks(out: string): string[] {
  return out.split('\n').filter((l) => /^\S/.test(l)).map((l) => /\(([^)]*)\)$/.exec(l)?.[1] ?? l).sort();
}

/** `weave status ipam` as sorted "nickname IPs" pairs, plus whether any owner is unreachable. */
function ipamView(text: string): { owners: string; unreachable: boolean } {
  const owners: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\S+\((\w+)\)\s+(\d+) IPs/.exec(line);
    if (m) owners.push(`${m[1]}=${m[2]}`);
  }
  return { owners: owners.sort().join(' '), unreachable: text.includes('unreachable') };
}

interface ReportEntry { Token: string; Size: number; Nickname: string }

/** The ring as `/report` lists it: every range with its start, size and owner. */
async function ringEntries(h: Host): Promise<string> {
  const r = await h.exec('curl', ['-sf', '--max-time', '5', 'http://127.0.0.1:6784/report']);
  if (r.code !== 0) return `(no report from ${h.label})`;
  const entries = (JSON.parse(r.stdout) as { IPAM?: { Entries: ReportEntry[] | null } }).IPAM?.Entries ?? [];
  return entries.map((e) => `${e.Token}+${e.Size}:${e.Nickname}`).join(' ');
}

/** The IPv4 address on the container's ethwe, as the kernel holds it. */
async function ethweAddress(c: Container): Promise<string> {
  const r = await c.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', 'ethwe']);
  const m = /inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(r.stdout);
  assert.ok(m, `${c.host.label}/${c.name} has an IPv4 address on ethwe: ${r.stdout}${r.stderr}`);
  return m[1];
}

async function attachAuto(h: Host, names: string[]): Promise<Container[]> {
  const out: Container[] = [];
  for (const name of names) {
    const c = await h.addContainer(name);
    await mustWeave(h, ['attach', '--netns', c.netnsPath]);
    out.push(c);
  }
  return out;
}

test('partition {h1} | {h2,h3}: both sides allocate, no address twice, the ring agrees after healing', { timeout: 180_000 }, async () => {
  await withWeaveBed(3, async (bed) => {
    const [a, b, c] = bed.hosts;
    await launchFullMesh(bed.hosts);
    // One automatic attach per host: the first waits for consensus, so the ring exists everywhere afterwards.
    const before = await Promise.all(bed.hosts.map((h) => attachAuto(h, ['first'])));
    const ringBefore = await pollUntil(async () => {
      const views = await Promise.all(bed.hosts.map(async (h) => ipamView(await mustWeave(h, ['status', 'ipam'])).owners));
      return views.every((v) => v.split(' ').length === 3 && v === views[0]);
    }, 30_000, 250);
    assert.ok(ringBefore, 'every router owns part of the ring before the partition');

    await bed.cutLink(a, b);
    await bed.cutLink(a, c);
    // Wait until h1 has really lost h2 and h3 (and they it), so allocation happens in a detected partition.
    await pollWeave(a, ['status', 'peers'], (out) => peerNicks(out).join(' ') === 'h1', { timeoutMs: CUT_DETECT_MS, intervalMs: 1000, what: 'h1 alone' });
    for (const h of [b, c]) {
      await pollWeave(h, ['status', 'peers'], (out) => peerNicks(out).join(' ') === 'h2 h3', { timeoutMs: CUT_DETECT_MS, intervalMs: 1000, what: 'only h2 and h3' });
    }

    const names = Array.from({ length: PER_HOST_IN_PARTITION }, (_, i) => `p${i}`);
    const during = await Promise.all(bed.hosts.map((h) => attachAuto(h, names)));

    await bed.healLink(a, b);
    await bed.healLink(a, c);
    for (const h of bed.hosts) {
      await pollWeave(h, ['status', 'peers'], (out) => peerNicks(out).join(' ') === 'h1 h2 h3', { timeoutMs: HEAL_MS, intervalMs: 500, what: 'lists h1, h2 and h3 again' });
    }

    const containers = [...before.flat(), ...during.flat()];
    const ips = await Promise.all(containers.map(ethweAddress));
    assert.equal(ips.length, 3 * (1 + PER_HOST_IN_PARTITION));
    assert.equal(new Set(ips).size, ips.length, `no address is held twice: ${ips.join(' ')}`);
    for (const ip of ips) assert.ok(inUniverse(ip), `${ip} is inside 10.32.0.0/12`);

    // The three routers agree on owners and on the exact ranges, and none is unreachable.
    let views: { owners: string; unreachable: boolean }[] = [];
    let rings: string[] = [];
    const agreed = await pollUntil(async () => {
      views = await Promise.all(bed.hosts.map(async (h) => ipamView(await mustWeave(h, ['status', 'ipam']))));
      rings = await Promise.all(bed.hosts.map(ringEntries));
      return views.every((v) => !v.unreachable && v.owners.split(' ').length === 3 && v.owners === views[0].owners)
        && rings.every((r) => r.length > 0 && r === rings[0]);
    }, 30_000, 250);
    assert.ok(agreed, `status ipam agrees on all hosts:\n${views.map((v) => v.owners).join('\n')}\n${rings.join('\n')}`);
    const total = views[0].owners.split(' ').reduce((n, kv) => n + Number(kv.split('=')[1]), 0);
    assert.equal(total, 1 << 20, 'the three owners still share the whole range');
  });
});
