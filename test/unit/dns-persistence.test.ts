// Our DNS names across a router restart (controlplane/dns/persistence.ts):
// saved after every change, restored before gossip starts, and a restored name
// wins over the copies peers still hold; a damaged file is reported by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Nameserver } from '../../controlplane/dns/nameserver.js';
import { DnsEntriesFileError, FileDnsEntryStore, parseDnsEntries, serialiseDnsEntries } from '../../controlplane/dns/persistence.js';
import type { GossipPayload } from '../../controlplane/dns/gossip-payload.js';

const US = 0x0a0000000001n;
const PEER = 0x0a0000000002n;
const NOW = 1_700_000_000;
const WEB = 0x0a200001;
const EXT = 0xc0000201;

function withDir(body: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'weave-dns-persist-'));
  try {
    body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function router(dir: string, now = NOW): { ns: Nameserver; store: FileDnsEntryStore; sent: GossipPayload[] } {
  const store = new FileDnsEntryStore(dir, US);
  const ns = new Nameserver({ ourName: US, isKnownPeer: () => true, now: () => now, store });
  const sent: GossipPayload[] = [];
  return { ns, store, sent };
}

test('names given before a restart come back live, those of dead containers as tombstones, and are announced', () => {
  withDir((dir) => {
    const before = router(dir);
    before.ns.add('web.weave.local.', '/run/netns/web', WEB);
    before.ns.add('gone.weave.local.', '/run/netns/gone', WEB + 1);
    before.ns.add('ext.weave.local.', 'weave:extern', EXT);
    before.ns.add('old.weave.local.', '/run/netns/web', WEB + 2);
    before.ns.delete({ hostname: 'old.weave.local.' });
    // What a peer still holds of our names: the same versions.
    const peerCopy = before.ns.entries().map((e) => ({ ...e }));

    const after = router(dir, NOW + 30);
    const restored = after.ns.restore(after.store.load(), (id) => id !== '/run/netns/gone');
    assert.equal(restored.length, 4);
    const live = after.ns.entries().filter((e) => e.tombstone === 0).map((e) => e.hostname).sort();
    assert.deepEqual(live, ['ext.weave.local.', 'web.weave.local.']);
    assert.deepEqual(after.ns.lookup('gone.weave.local.'), []);
    // Nothing is sent before gossip is attached; then every changed name at once.
    after.ns.setBroadcaster((p) => after.sent.push(p));
    assert.equal(after.sent.length, 1);
    assert.deepEqual(after.sent[0]!.entries.map((e) => `${e.hostname}${e.tombstone === 0 ? '' : ' dead'}`).sort(),
      ['ext.weave.local.', 'gone.weave.local. dead', 'web.weave.local.']);

    // A peer's copy (older version) neither revives nor removes anything; we would not tombstone our live names.
    const { delta } = after.ns.receive({ timestamp: NOW + 30, entries: peerCopy });
    assert.deepEqual(delta, []);
    assert.deepEqual(after.ns.entries().filter((e) => e.tombstone === 0).map((e) => e.hostname).sort(), live);
    // A peer applying our announcement takes the restored state over its copy.
    const peer = new Nameserver({ ourName: PEER, isKnownPeer: () => true, now: () => NOW + 30 });
    peer.receive({ timestamp: NOW, entries: peerCopy });
    peer.receive(after.sent[0]!);
    assert.deepEqual(peer.entries().filter((e) => e.tombstone === 0).map((e) => e.hostname).sort(), live);
  });
});

test('without the file a restarted router tombstones its names that peers still gossip (why the file exists)', () => {
  const ns = new Nameserver({ ourName: US, isKnownPeer: () => true, now: () => NOW });
  const theirs = [{ containerId: 'c', origin: US, addr: WEB, hostname: 'web.weave.local.', version: 0, tombstone: 0 }];
  ns.receive({ timestamp: NOW, entries: theirs });
  assert.deepEqual(ns.lookup('web.weave.local.'), []);
  assert.equal(ns.entries()[0]!.tombstone, NOW);
});

test('every change to our names is saved; peers\' names are not', () => {
  withDir((dir) => {
    const { ns, store } = router(dir);
    ns.add('web.weave.local.', 'c1', WEB);
    ns.receive({ timestamp: NOW, entries: [{ containerId: 'p', origin: PEER, addr: 7, hostname: 'p.weave.local.', version: 0, tombstone: 0 }] });
    assert.deepEqual(store.load().map((e) => [e.hostname, e.tombstone]), [['web.weave.local.', 0]]);
    ns.containerDied('c1');
    assert.deepEqual(store.load().map((e) => [e.hostname, e.tombstone]), [['web.weave.local.', NOW]]);
    // Entries saved under another peer name belong to an identity we no longer have.
    assert.deepEqual(new FileDnsEntryStore(dir, PEER).load(), []);
  });
});

test('a damaged names file names the file, is moved aside, and the router starts without it', () => {
  withDir((dir) => {
    const file = join(dir, 'dns-entries.json');
    const good = serialiseDnsEntries(US, [{ containerId: 'c', origin: US, addr: WEB, hostname: 'web.weave.local.', version: 3, tombstone: 0 }]);
    assert.equal(parseDnsEntries(good, US)[0]!.version, 3);
    for (const damaged of [good.slice(0, good.length / 2), '', '{"format":"other"}', good.replace('10.32.0.1', '10.32.0'), good.replace('"version":3', '"version":-1')]) {
      writeFileSync(file, damaged);
      assert.throws(() => new FileDnsEntryStore(dir, US).load(), (err) => err instanceof DnsEntriesFileError
        && err.message.startsWith(`${file}: `) && err.message.includes(`kept as ${file}.damaged`), damaged);
      assert.ok(!existsSync(file));
      assert.equal(readFileSync(`${file}.damaged`, 'utf8'), damaged);
    }
  });
});
