// IPAM's user surface: launch flags, `weave status ipam` text, metrics, and the
// HTTP endpoints of wire spec §10.4 driven through the API server's inject.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpApi } from '../../controlplane/api/http-app.js';
import {
  Allocator, gobStreamCodec, parseCIDR, parseIpallocInit, parseIpamOptions, parsePeerNameText, registerIpamRoutes,
  renderStatusIpam, renderIpamSummary, ipamMetrics, formatCIDR, type AllocatorStatusData, type PeerName,
} from '../../controlplane/ipam/index.js';

const A: PeerName = 0x8a3e3e3e3e3en;
const B: PeerName = 0xea2db2e6e4f5n;
const C: PeerName = 0xee3833a7d971n;

test('--ipalloc-init and range flags parse with Weave\'s messages', () => {
  assert.deepEqual(parseIpallocInit(''), { mode: 'consensus' });
  assert.deepEqual(parseIpallocInit('consensus=3'), { mode: 'consensus', count: 3 });
  assert.deepEqual(parseIpallocInit('seed=::1,::2'), { mode: 'seed', seeds: [1n, 2n] });
  assert.deepEqual(parseIpallocInit('observer'), { mode: 'observer' });
  assert.throws(() => parseIpallocInit('consensus=x'), /^Error: Unable to parse --ipalloc-init: bad consensus parameter$/);
  assert.throws(() => parseIpallocInit('seed='), /seed mode requires peer name list/);
  assert.throws(() => parseIpallocInit('observer=1'), /observer mode takes no parameter/);
  assert.throws(() => parseIpallocInit('bogus'), /unknown mode: bogus/);
  assert.equal(parsePeerNameText('0a:00:00:00:00:01'), 0x0a0000000001n);
  assert.equal(parsePeerNameText('::1'), 1n);
  assert.equal(parseIpamOptions('', '', ''), undefined);
  assert.throws(() => parseIpamOptions('', '10.0.0.0/8', ''), /--ipalloc-default-subnet specified without --ipalloc-range\./);
  assert.throws(() => parseIpamOptions('', '', 'observer'), /--ipalloc-init specified without --ipalloc-range\./);
  assert.throws(() => parseIpamOptions('10.32.0.0/12', '192.168.0.0/16', ''),
    /IP address allocation default subnet 192\.168\.0\.0\/16 does not overlap with allocation range 10\.32\.0\.0\/12/);
  assert.throws(() => parseIpamOptions('10.32.0.1/12', '', ''), /did you mean 10\.32\.0\.0\/12/);
  const ok = parseIpamOptions('10.32.0.0/12', '10.32.1.0/24', 'consensus=2')!;
  assert.equal(formatCIDR(ok.defaultSubnet), '10.32.1.0/24');
});

function statusData(reachable: Set<PeerName>): AllocatorStatusData {
  const base = parseCIDR('10.32.0.0/12');
  const s = base.addr;
  return {
    ourName: A, universe: base, defaultSubnet: base,
    ring: { start: s, end: s + 2 ** 20, peer: A, seeds: [A, B, C], entries: [
      { token: s, peer: A, version: 0, free: 0 }, { token: s + 2 ** 19, peer: B, version: 0, free: 0 },
      { token: s + 3 * 2 ** 18, peer: C, version: 0, free: 0 }] },
    ringRanges: [
      { peer: A, range: { start: s, end: s + 2 ** 19 }, version: 0 },
      { peer: B, range: { start: s + 2 ** 19, end: s + 3 * 2 ** 18 }, version: 0 },
      { peer: C, range: { start: s + 3 * 2 ** 18, end: s + 2 ** 20 }, version: 0 },
    ],
    nicknames: new Map([[A, 'nicknamington'], [B, 'host2'], [C, 'host3']]),
    isKnownPeer: (p) => reachable.has(p),
    activeIPs: 2, paxos: undefined, observerPriming: false, consensusRunning: false, pendingClaims: [], pendingAllocates: [],
  };
}

test('`weave status ipam` matches the user surface §2.6 example', () => {
  assert.equal(renderStatusIpam(statusData(new Set([B]))),
    '8a:3e:3e:3e:3e:3e(nicknamington)        524288 IPs (50.0% of total) (2 active)\n' +
    'ea:2d:b2:e6:e4:f5(host2)                262144 IPs (25.0% of total) \n' +
    'ee:38:33:a7:d9:71(host3)                262144 IPs (25.0% of total) - unreachable!\n');
  assert.equal(renderIpamSummary(statusData(new Set([B, C]))),
    '        Service: ipam\n         Status: ready\n          Range: 10.32.0.0/12\n  DefaultSubnet: 10.32.0.0/12\n');
  const m = ipamMetrics(statusData(new Set([B])));
  assert.equal(m.find((g) => g.name === 'weave_ipam_unreachable_count')!.samples[0]!.value, 1);
  assert.equal(m.find((g) => g.name === 'weave_ipam_unreachable_percentage')!.samples[0]!.value, 25);
});

test('HTTP endpoints allocate, claim, look up, release and take over', async () => {
  const alloc = new Allocator({
    name: A, uid: 1n, nickname: 'h', universe: parseCIDR('10.32.0.0/12'), init: { mode: 'seed', seeds: [A] },
    isKnownPeer: () => true, codec: gobStreamCodec,
  });
  const app = new HttpApi();
  registerIpamRoutes(app, alloc, { tracker: '' });
  try {
    const post = await app.inject({ method: 'POST', url: '/ip/c1' });
    assert.equal(post.statusCode, 200);
    assert.equal(post.body, '10.32.0.1/12');
    assert.equal((await app.inject({ method: 'POST', url: '/ip/c1' })).body, '10.32.0.1/12', 'idempotent');
    const sub = await app.inject({ method: 'POST', url: '/ip/c2/10.32.5.0/24' });
    assert.equal(sub.body, '10.32.5.1/24');
    assert.equal((await app.inject({ method: 'POST', url: '/ip/c2/10.32.5.3/24' })).statusCode, 400);
    assert.equal((await app.inject({ method: 'PUT', url: '/ip/c3/10.32.7.7/12?check-alive=false' })).statusCode, 204);
    const conflict = await app.inject({ method: 'PUT', url: '/ip/c4/10.32.7.7/12' });
    assert.equal(conflict.statusCode, 400);
    assert.match(conflict.body, /^Unable to claim: .*already owned by c3/);
    assert.equal((await app.inject({ method: 'GET', url: '/ip/c3' })).body, '10.32.7.7/12');
    assert.deepEqual(JSON.parse((await app.inject({ method: 'GET', url: '/ip' })).body).owned[0], { containerid: 'c1', addrs: ['10.32.0.1/12'] });
    assert.equal((await app.inject({ method: 'DELETE', url: '/ip/c3/10.32.7.7' })).statusCode, 204);
    assert.equal((await app.inject({ method: 'DELETE', url: '/ip/c3/10.32.7.7' })).statusCode, 400);
    assert.equal((await app.inject({ method: 'DELETE', url: '/ip/c1' })).statusCode, 204);
    assert.equal((await app.inject({ method: 'DELETE', url: '/ip/c1' })).statusCode, 400);
    assert.equal((await app.inject({ method: 'GET', url: '/ring' })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/ipinfo/defaultsubnet' })).body, '10.32.0.0/12');
    assert.equal((await app.inject({ method: 'GET', url: '/ipinfo/tracker' })).body, '\n');
    assert.equal((await app.inject({ method: 'DELETE', url: '/peer/ghost' })).body, '0 IPs taken over from ghost\n');
  } finally {
    await app.close();
  }
});
