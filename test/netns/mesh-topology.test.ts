// Mesh topology on simulated hosts (wire spec §2.5, §4.5-4.7, §4.10): routers
// run as separate `weave launch` daemons, one per network namespace, each with
// its own state directory. Chains, peer discovery, multi-hop routes, a link
// cut, a partition and its healing, password refusals, and a SIGKILLed router
// rejoining. Detecting a silently cut TCP path takes the 60 s read timeout of
// spec §2.3, so the two tests that need it run concurrently.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createTestbed, mustWeave, pollUntil, stopRouters, weave, weaveStateDir, type Host, type Testbed,
} from './lib/index.js';

/** Convergence over working links: topology gossip is delayed 1 s per hop (spec §4.5). */
const CONVERGE_MS = 30_000;
/** A cut link is noticed only by the 60 s read timeout (spec §2.3), then the peer is garbage-collected. */
const CUT_DETECT_MS = 100_000;

interface ReportConnection { Address: string; Outbound: boolean; State: string; Info: string }
interface ReportPeer { Name: string; NickName: string; UID: number; Connections: { Name: string; Established: boolean }[] }
interface RouterReport {
  Name: string;
  NickName: string;
  Peers: ReportPeer[];
  UnicastRoutes: { Dest: string; Via: string }[] | null;
  Connections: ReportConnection[] | null;
}

const beds: Testbed[] = [];
after(async () => {
  for (const bed of beds) {
    await stopRouters(bed.hosts);
    await bed.teardown();
  }
});

async function newBed(hosts: number): Promise<Testbed> {
  const bed = await createTestbed({ hosts, underlay: 'bridge' });
  beds.push(bed);
  return bed;
}

/** The router's report, read straight from its API (cheaper than a CLI process per poll). */
async function report(h: Host): Promise<RouterReport | undefined> {
  const r = await h.exec('curl', ['-sf', '--max-time', '5', 'http://127.0.0.1:6784/report']);
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { Router: RouterReport }).Router;
}

function nicksOf(rep: RouterReport | undefined): string[] {
  return (rep?.Peers ?? []).map((p) => p.NickName).sort();
}

function establishedCount(rep: RouterReport | undefined): number {
  return (rep?.Connections ?? []).filter((c) => c.State === 'established').length;
}

/** `weave status peers` names exactly these nicknames. */
async function statusPeerNicks(h: Host): Promise<string[]> {
  const out = await mustWeave(h, ['status', 'peers']);
  return out.split('\n').filter((l) => /^\S/.test(l)).map((l) => /\(([^)]*)\)$/.exec(l)?.[1] ?? l).sort();
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, detail: () => Promise<string>): Promise<number> {
  const t0 = Date.now();
  const ok = await pollUntil(check, timeoutMs, 500);
  assert.ok(ok, `${what} within ${timeoutMs / 1000} s:\n${await detail()}`);
  return Date.now() - t0;
}

async function describeHosts(hosts: readonly Host[]): Promise<string> {
  const parts: string[] = [];
  for (const h of hosts) {
    parts.push(`${h.label}: peers [${nicksOf(await report(h)).join(' ')}]\n${(await weave(h, ['status', 'connections'])).stdout}`);
  }
  return parts.join('\n');
}

/** Every host lists exactly `nicks` as peers. */
async function waitForPeers(hosts: readonly Host[], nicks: string[], timeoutMs: number): Promise<number> {
  const want = [...nicks].sort().join(' ');
  return waitFor(
    `${hosts.map((h) => h.label).join(',')} list exactly [${want}]`,
    async () => {
      for (const h of hosts) if (nicksOf(await report(h)).join(' ') !== want) return false;
      return true;
    },
    timeoutMs,
    () => describeHosts(hosts),
  );
}

/** Launches host i (1-based) with nickname n<i>, given only the previous host as its peer. */
async function launchChain(bed: Testbed, extra: string[] = []): Promise<void> {
  for (const h of bed.hosts) {
    const prev = h.index > 1 ? [bed.host(h.index - 1).address] : [];
    await mustWeave(h, ['launch', '--nickname', nick(h), ...extra, ...prev]);
  }
}

function nick(h: Host): string {
  return `n${h.index}`;
}

function peerName(rep: RouterReport | undefined, nickName: string): string {
  const p = rep?.Peers.find((x) => x.NickName === nickName);
  assert.ok(p, `peer ${nickName} is known`);
  return p.Name;
}

function routeVia(rep: RouterReport | undefined, dest: string): string | undefined {
  return rep?.UnicastRoutes?.find((r) => r.Dest === dest)?.Via;
}

describe('mesh topology', { concurrency: true }, () => {
  test('a chain without discovery stays a chain and routes go multi-hop', async () => {
    const bed = await newBed(5);
    const all = bed.hosts.map(nick);
    await launchChain(bed, ['--no-discovery']);
    const ms = await waitForPeers(bed.hosts, all, CONVERGE_MS);
    process.stdout.write(`# 5-router chain without discovery: full view after ${ms} ms\n`);
    for (const h of bed.hosts) assert.deepEqual(await statusPeerNicks(h), all, `weave status peers on ${h.label}`);
    // Only the neighbours are connected: the ends have one connection, the middle ones two.
    for (const h of bed.hosts) {
      const want = h.index === 1 || h.index === 5 ? 1 : 2;
      assert.equal(establishedCount(await report(h)), want, `${h.label} keeps only its chain connections`);
    }
    const a = await report(bed.host(1));
    const [b, e] = [peerName(a, 'n2'), peerName(a, 'n5')];
    assert.equal(routeVia(a, e), b, 'n1 reaches n5 through n2');
    const c = await report(bed.host(3));
    assert.equal(routeVia(c, peerName(c, 'n1')), peerName(c, 'n2'), 'n3 reaches n1 through n2');
    assert.equal(routeVia(c, peerName(c, 'n5')), peerName(c, 'n4'), 'n3 reaches n5 through n4');
  });

  test('a chain with discovery becomes a full mesh; cutting n1-n5 routes n1 to n5 via others', async () => {
    const bed = await newBed(5);
    const [h1, , , , h5] = bed.hosts as [Host, Host, Host, Host, Host];
    await launchChain(bed);
    await waitForPeers(bed.hosts, bed.hosts.map(nick), CONVERGE_MS);
    const ms = await waitFor(
      'every router connects directly to the other four',
      async () => {
        for (const h of bed.hosts) if (establishedCount(await report(h)) !== 4) return false;
        return true;
      },
      CONVERGE_MS,
      () => describeHosts(bed.hosts),
    );
    process.stdout.write(`# 5-router chain with discovery: full mesh ${ms} ms after the full view\n`);
    const before = await report(h1);
    const e = peerName(before, 'n5');
    assert.equal(routeVia(before, e), e, 'n1 reaches n5 directly');

    await bed.cutLink(h1, h5);
    const t0 = Date.now();
    await waitFor(
      'n1 routes to n5 through another peer',
      async () => {
        const v = routeVia(await report(h1), e);
        return v !== undefined && v !== e;
      },
      CUT_DETECT_MS,
      () => describeHosts([h1, h5]),
    );
    const after = await report(h1);
    const via = routeVia(after, e);
    assert.ok(['n2', 'n3', 'n4'].includes(after?.Peers.find((p) => p.Name === via)?.NickName ?? ''), `n1 -> n5 goes via n2, n3 or n4, not ${via}`);
    assert.deepEqual(nicksOf(after), bed.hosts.map(nick), 'n1 still knows all five peers');
    process.stdout.write(`# n1-n5 cut: rerouted after ${Date.now() - t0} ms (read timeout 60 s)\n`);
  });

  test('a partition {n1,n2} | {n3,n4,n5} keeps both sides working and heals', async () => {
    const bed = await newBed(5);
    const left = bed.hosts.slice(0, 2);
    const right = bed.hosts.slice(2);
    await launchChain(bed);
    await waitFor(
      'every router connects directly to the other four',
      async () => {
        for (const h of bed.hosts) if (establishedCount(await report(h)) !== 4) return false;
        return true;
      },
      CONVERGE_MS + CONVERGE_MS,
      () => describeHosts(bed.hosts),
    );
    for (const a of left) for (const b of right) await bed.cutLink(a, b);
    const t0 = Date.now();
    // Each side keeps its own peers; the unreachable others are garbage-collected (spec §4.7).
    await Promise.all([
      waitForPeers(left, left.map(nick), CUT_DETECT_MS),
      waitForPeers(right, right.map(nick), CUT_DETECT_MS),
    ]);
    process.stdout.write(`# partition: both sides dropped the other after ${Date.now() - t0} ms\n`);
    for (const h of left) assert.equal(establishedCount(await report(h)), 1, `${h.label} keeps its connection inside its side`);
    for (const h of right) assert.equal(establishedCount(await report(h)), 2, `${h.label} keeps its connections inside its side`);
    for (const h of right) assert.deepEqual(await statusPeerNicks(h), right.map(nick), `weave status peers on ${h.label}`);

    for (const a of left) for (const b of right) await bed.healLink(a, b);
    const healed = Date.now();
    await waitForPeers(bed.hosts, bed.hosts.map(nick), CONVERGE_MS + CONVERGE_MS);
    process.stdout.write(`# partition healed: every router lists all 5 peers after ${Date.now() - healed} ms\n`);
    for (const h of bed.hosts) assert.deepEqual(await statusPeerNicks(h), bed.hosts.map(nick), `weave status peers on ${h.label}`);
  });

  test('a wrong password and no password are refused by a password-protected mesh, which says why', async () => {
    const bed = await newBed(3);
    const [h1, h2, h3] = bed.hosts as [Host, Host, Host];
    await mustWeave(h1, ['launch', '--nickname', 'n1', '--password', 'the-right-one']);
    await mustWeave(h2, ['launch', '--nickname', 'n2', '--password', 'a-wrong-one', h1.address]);
    await mustWeave(h3, ['launch', '--nickname', 'n3', h1.address]);
    const refusedWithReason = (text: string, dir: string, addr: string): boolean =>
      text.split('\n').some((l) => l.startsWith(`${dir} ${addr}:`) && /\s(failed|retrying)\s/.test(l) && /password/.test(l));
    let connections = '';
    await waitFor(
      'n1 shows both refused inbound attempts with a password reason',
      async () => {
        connections = (await weave(h1, ['status', 'connections'])).stdout;
        return refusedWithReason(connections, '<-', h2.address) && refusedWithReason(connections, '<-', h3.address);
      },
      CONVERGE_MS,
      async () => connections,
    );
    for (const h of [h2, h3]) {
      const out = (await weave(h, ['status', 'connections'])).stdout;
      assert.ok(refusedWithReason(out, '->', h1.address), `${h.label}'s target n1 failed with a password reason:\n${out}`);
      assert.doesNotMatch(out, /established/);
    }
    assert.doesNotMatch(connections, /established/);
    assert.deepEqual(await statusPeerNicks(h1), ['n1'], 'n1 let nobody in');
    const log = readFileSync(join(weaveStateDir(h1), 'weaver.log'), 'utf8');
    assert.match(log, /error during handshake: .*password/, 'n1 logs the refusal with its reason');
  });

  test('a SIGKILLed router rejoins with the same name; weave stop cleans up', async () => {
    const bed = await newBed(3);
    const [h1, h2, h3] = bed.hosts as [Host, Host, Host];
    await mustWeave(h1, ['launch', '--nickname', 'n1']);
    await mustWeave(h2, ['launch', '--nickname', 'n2', h1.address]);
    await mustWeave(h3, ['launch', '--nickname', 'n3', h1.address]);
    await waitForPeers(bed.hosts, ['n1', 'n2', 'n3'], CONVERGE_MS);
    const seen = await report(h1);
    const name3 = peerName(seen, 'n3');
    const uid3 = seen?.Peers.find((p) => p.NickName === 'n3')?.UID;

    const pidFile = join(weaveStateDir(h3), 'weaver.pid');
    process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    // The kernel closes the dead router's sockets, so the others notice at once.
    await waitForPeers([h1, h2], ['n1', 'n2'], CONVERGE_MS);

    await mustWeave(h3, ['launch', '--nickname', 'n3', h1.address]);
    const ms = await waitForPeers(bed.hosts, ['n1', 'n2', 'n3'], CONVERGE_MS);
    process.stdout.write(`# SIGKILLed router rejoined after ${ms} ms\n`);
    const rejoined = await report(h1);
    assert.equal(peerName(rejoined, 'n3'), name3, 'same peer name after the restart');
    assert.notEqual(rejoined?.Peers.find((p) => p.NickName === 'n3')?.UID, uid3, 'a new incarnation (UID)');

    // A graceful stop closes the connections: the others drop the peer without waiting for a timeout.
    await mustWeave(h3, ['stop']);
    assert.equal(existsSync(pidFile), false, 'stop removes the pid file');
    const ports = await h3.exec('ss', ['-Htln']);
    assert.doesNotMatch(ports.stdout, /:678[34]\b/, 'stop closes the mesh and API ports');
    await waitForPeers([h1, h2], ['n1', 'n2'], 10_000);
  });
});
