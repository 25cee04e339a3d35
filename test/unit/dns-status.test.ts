// `weave status dns` text, the summary block and the API facade (user-surface spec §2.5, §2.1; wire spec §10.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderDnsStatus, dnsSummarySection, dnsReportSection } from '../../controlplane/dns/status.js';
import { Nameserver } from '../../controlplane/dns/nameserver.js';
import { DnsServer } from '../../controlplane/dns/server.js';
import { DnsInputError, DnsService } from '../../controlplane/dns/service.js';
import type { Entry } from '../../controlplane/dns/entries.js';

const P1 = 0x4a0ff6ec1c93n;
const P2 = 0x66c447c665bfn;
const e = (hostname: string, addr: number, containerId: string, origin: bigint, tombstone = 0): Entry =>
  ({ hostname, addr, containerId, origin, version: 0, tombstone });

test('status dns lines match the spec example, tombstones hidden, sub-domains kept', () => {
  const text = renderDnsStatus({
    domain: 'weave.local.',
    entries: [
      e('testexpose1.weave.local.', 0x0a200003, 'weave:expose', P1),
      e('one.weave.local.', 0x0a2bffff, '4fcec78d2a9b00112233', P2),
      e('ONE.weave.local.', 0x0a200001, 'eebd81120ee4aabbccdd', P1),
      e('gone.weave.local.', 0x0a200009, 'dead', P1, 1700000000),
      e('foo.sub1.weave.local.', 0x0a200004, 'f00', P1),
    ],
  });
  assert.equal(text, [
    'foo.sub1     10.32.0.4                f00 4a:0f:f6:ec:1c:93',
    'ONE          10.32.0.1       eebd81120ee4 4a:0f:f6:ec:1c:93',
    'one          10.43.255.255   4fcec78d2a9b 66:c4:47:c6:65:bf',
    'testexpose1  10.32.0.3       weave:expose 4a:0f:f6:ec:1c:93',
  ].map((l) => `${l}\n`).join(''));
});

test('summary block and report section', () => {
  const s = { domain: 'weave.local.', upstream: [], address: '172.17.0.1:53', ttl: 1,
    entries: [e('a.weave.local.', 1, 'c', P1), e('b.weave.local.', 2, 'c', P1, 5)] };
  assert.deepEqual(dnsSummarySection(s).fields, [['Domain', 'weave.local.'], ['Upstream', 'none'], ['TTL', '1'], ['Entries', '1']]);
  const report = dnsReportSection(s) as { Entries: { Tombstone: number; Origin: string }[] };
  assert.equal(report.Entries.length, 2, 'report includes tombstones');
  assert.equal(report.Entries[0].Origin, '4a:0f:f6:ec:1c:93');
});

test('facade: add ignores names outside the domain, check-alive tombstones, remove and lookup', async () => {
  const ns = new Nameserver({ ourName: P1, isKnownPeer: () => true });
  const server = new DnsServer({ names: ns, listenAddress: '127.0.0.1:0', domain: 'Foo.Bar' });
  await server.start();
  try {
    const alive = new Set(['c1']);
    const svc = new DnsService({ nameserver: ns, server, isContainerAlive: async (id) => alive.has(id) });
    assert.equal(svc.domain(), 'foo.bar.');
    assert.equal(svc.dnsAddressPort(), `127.0.0.1:${server.address().port}`);
    await svc.addName('c1', '10.32.0.1', 'web.foo.bar');
    await svc.addName('c1', '10.32.0.2', 'elsewhere.example');
    await svc.addName('c2', '10.32.0.3', 'dead.foo.bar', true);
    assert.deepEqual(svc.lookup('web'), ['10.32.0.1']);
    assert.deepEqual(svc.lookup('dead.foo.bar'), []);
    assert.equal(svc.namesJson().length, 2);
    await assert.rejects(svc.addName('c1', '10.32.0', 'x.foo.bar'), DnsInputError);
    assert.equal(svc.metrics()[0].samples[0]?.value, 1, 'one live name of ours: web');
    assert.equal(svc.removeNames({ containerId: 'c1', fqdn: 'web.foo.bar' }).length, 1);
    assert.deepEqual(svc.lookup('web.foo.bar.'), []);
    assert.match(svc.metrics()[0].name, /weave_dns_entries/);
    assert.equal(svc.metrics()[0].samples[0]?.value, 0, 'no live name of ours is left');
  } finally {
    await server.stop();
  }
});
