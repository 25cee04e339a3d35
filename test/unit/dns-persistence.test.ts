// Our DNS names across a router restart (controlplane/dns/persistence.ts):
// saved after every change (one journal line each, the snapshot rewritten only
// when the journal outgrows it), restored before gossip starts, and a restored
// name wins over the copies peers still hold; a damaged file is reported by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Nameserver } from '../../controlplane/dns/nameserver.js';
import {
  DNS_ENTRIES_FILE, DNS_JOURNAL_FILE, DnsEntriesFileError, FileDnsEntryStore, JOURNAL_MIN_LINES, parseDnsEntries, serialiseDnsEntries,
} from '../../controlplane/dns/persistence.js';
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

function lineCount(path: string): number {
  return readFileSync(path, 'utf8').split('\n').length - 1;
}

test('a change appends one journal line; the snapshot is rewritten only once the journal outgrows it', () => {
  withDir((dir) => {
    const { ns } = router(dir);
    const snapshot = join(dir, DNS_ENTRIES_FILE);
    const journal = join(dir, DNS_JOURNAL_FILE);
    ns.add('web.weave.local.', 'c1', WEB); // the first change writes both files
    const written = statSync(snapshot).mtimeMs;
    const snapshotText = readFileSync(snapshot, 'utf8');
    assert.equal(lineCount(journal), 1, 'a fresh journal holds its header only');
    for (let i = 1; i <= 100; i++) {
      ns.add(`n${i}.weave.local.`, `c${i}`, WEB + i);
      if (i % 2 === 0) ns.delete({ containerId: `c${i}` });
    }
    ns.add('web.weave.local.', 'c1', WEB); // already live: nothing changed, nothing written
    assert.equal(lineCount(journal), 1 + 150, 'one line per changed entry');
    assert.equal(readFileSync(snapshot, 'utf8'), snapshotText, 'the snapshot is not rewritten per change');
    assert.equal(statSync(snapshot).mtimeMs, written);
    const reloaded = new FileDnsEntryStore(dir, US).load();
    assert.deepEqual(reloaded.map((e) => `${e.hostname} v${e.version} ${e.tombstone}`).sort(),
      ns.entries().map((e) => `${e.hostname} v${e.version} ${e.tombstone}`).sort(), 'snapshot + journal = the table');

    // Past JOURNAL_MIN_LINES lines (the snapshot is smaller) both are rewritten: the journal starts again.
    let longest = 0;
    for (let i = 0; lineCount(journal) > 1 || i === 0; i++) {
      longest = Math.max(longest, lineCount(journal) - 1);
      ns.add(`m${i}.weave.local.`, `d${i}`, WEB + 1000 + i);
    }
    assert.equal(longest, JOURNAL_MIN_LINES, 'the journal grows to JOURNAL_MIN_LINES changes, then both files are rewritten');
    assert.equal(parseDnsEntries(readFileSync(snapshot, 'utf8'), US).length, ns.entries().length, 'the new snapshot holds every entry');
  });
});

test('a journal of another generation (a crash between the two rewrites) is skipped; its lines are in the snapshot', () => {
  withDir((dir) => {
    const { ns } = router(dir);
    const journal = join(dir, DNS_JOURNAL_FILE);
    ns.add('web.weave.local.', 'c1', WEB);
    ns.delete({ hostname: 'web.weave.local.' }); // journal: web v1 tombstoned
    const stale = readFileSync(journal, 'utf8');
    ns.purgeTombstones(); // nothing old enough yet
    // A purge that removes entries rewrites both: then the old journal would name the old generation.
    const later = router(dir, NOW + 10_000);
    later.ns.restore(later.store.load(), () => true);
    assert.equal(later.ns.purgeTombstones(), 1);
    later.ns.add('web.weave.local.', 'c1', WEB); // version 0 again: the purged tombstone must not come back
    // The crash: a rewrite put the new snapshot in place, and the journal is still one from before it.
    later.store.save(later.ns.entries());
    writeFileSync(journal, stale);
    const restored = new FileDnsEntryStore(dir, US).load();
    assert.deepEqual(restored.map((e) => [e.hostname, e.version, e.tombstone]), [['web.weave.local.', 0, 0]],
      'the stale journal\'s tombstone (version 1) is not applied over the live name');
  });
});

test('a journal line cut short by a power loss is dropped; a damaged line keeps the changes before it and is reported', () => {
  withDir((dir) => {
    const { ns } = router(dir);
    const journal = join(dir, DNS_JOURNAL_FILE);
    ns.add('a.weave.local.', 'c1', WEB);
    ns.add('b.weave.local.', 'c2', WEB + 1);
    ns.add('c.weave.local.', 'c3', WEB + 2);
    const text = readFileSync(journal, 'utf8');
    const snapshotText = readFileSync(join(dir, DNS_ENTRIES_FILE), 'utf8');
    appendFileSync(journal, '{"hostname":"d.weave.local.","contai');
    const problems: DnsEntriesFileError[] = [];
    assert.deepEqual(new FileDnsEntryStore(dir, US).load((p) => problems.push(p)).map((e) => e.hostname).sort(),
      ['a.weave.local.', 'b.weave.local.', 'c.weave.local.']);
    assert.equal(problems.length, 0, 'a torn last append is not damage');
    // The next change does not append after the torn line (that would damage it): both files are rewritten.
    const resumed = new FileDnsEntryStore(dir, US);
    const kept = resumed.load();
    const d = { containerId: 'c4', origin: US, addr: WEB + 3, hostname: 'd.weave.local.', version: 0, tombstone: 0 };
    resumed.record([d], () => [...kept, d]);
    assert.deepEqual(new FileDnsEntryStore(dir, US).load((p) => problems.push(p)).map((e) => e.hostname).sort(),
      ['a.weave.local.', 'b.weave.local.', 'c.weave.local.', 'd.weave.local.']);
    assert.equal(problems.length, 0);
    writeFileSync(join(dir, DNS_ENTRIES_FILE), snapshotText);
    writeFileSync(journal, text);

    const lines = text.split('\n');
    // Line 1 is the header; a's entry went into the snapshot the first change wrote.
    assert.equal(lines.length, 4, text);
    lines[1] = '{"hostname":"b.weave.local.","containerId":"c2","addr":"10.32.0","version":0,"tombstone":0}';
    writeFileSync(journal, lines.join('\n'));
    const store = new FileDnsEntryStore(dir, US);
    const loaded = store.load((p) => problems.push(p));
    assert.deepEqual(loaded.map((e) => e.hostname).sort(), ['a.weave.local.'], 'the lines before the damaged one count');
    assert.equal(problems.length, 1);
    assert.ok(problems[0]!.message.startsWith(`${journal}: line 2: `) && problems[0]!.message.includes(`kept as ${journal}.damaged`), problems[0]!.message);
    assert.ok(existsSync(`${journal}.damaged`) && !existsSync(journal));
    // The next change writes a snapshot of what was restored and a fresh journal.
    const after = new Nameserver({ ourName: US, isKnownPeer: () => true, now: () => NOW, store });
    after.restore(loaded, () => true);
    after.add('e.weave.local.', 'c5', WEB + 4);
    assert.deepEqual(new FileDnsEntryStore(dir, US).load().map((e) => e.hostname).sort(), ['a.weave.local.', 'e.weave.local.']);
  });
});
