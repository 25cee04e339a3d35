// Our DNS names across a router restart (controlplane/dns/persistence.ts):
// saved after every change (one journal line each, the snapshot rewritten only
// when the journal outgrows it), restored before gossip is taken in (in slices,
// gossip held meanwhile), and a restored name wins over the copies peers still
// hold; a damaged file is reported by name.
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
import { DnsGossipData, MAX_HELD_PAYLOADS, NameserverGossiper } from '../../controlplane/dns/gossiper.js';
import { encodeGossipPayload } from '../../controlplane/dns/codec.js';

const US = 0x0a0000000001n;
const PEER = 0x0a0000000002n;
const NOW = 1_700_000_000;
const WEB = 0x0a200001;
const EXT = 0xc0000201;

async function withDir(body: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'weave-dns-persist-'));
  try {
    await body(dir);
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

test('names given before a restart come back live, those of dead containers as tombstones, and are announced', async () => {
  await withDir(async (dir) => {
    const before = router(dir);
    before.ns.add('web.weave.local.', '/run/netns/web', WEB);
    before.ns.add('gone.weave.local.', '/run/netns/gone', WEB + 1);
    before.ns.add('ext.weave.local.', 'weave:extern', EXT);
    before.ns.add('old.weave.local.', '/run/netns/web', WEB + 2);
    before.ns.delete({ hostname: 'old.weave.local.' });
    // What a peer still holds of our names: the same versions.
    const peerCopy = before.ns.entries().map((e) => ({ ...e }));

    const after = router(dir, NOW + 30);
    const restored = await after.ns.restore(() => after.store.load(), (id) => id !== '/run/netns/gone');
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

test('every change to our names is saved; peers\' names are not', async () => {
  await withDir(async (dir) => {
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

test('a damaged names file names the file, is moved aside, and the router starts without it', async () => {
  await withDir(async (dir) => {
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

test('a change appends one journal line; the snapshot is rewritten only once the journal outgrows it', async () => {
  await withDir(async (dir) => {
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

test('a journal of another generation (a crash between the two rewrites) is skipped; its lines are in the snapshot', async () => {
  await withDir(async (dir) => {
    const { ns } = router(dir);
    const journal = join(dir, DNS_JOURNAL_FILE);
    ns.add('web.weave.local.', 'c1', WEB);
    ns.delete({ hostname: 'web.weave.local.' }); // journal: web v1 tombstoned
    const stale = readFileSync(journal, 'utf8');
    ns.purgeTombstones(); // nothing old enough yet
    // A purge that removes entries rewrites both: then the old journal would name the old generation.
    const later = router(dir, NOW + 10_000);
    await later.ns.restore(() => later.store.load(), () => true);
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

test('a journal line cut short by a power loss is dropped; a damaged line keeps the changes before it and is reported', async () => {
  await withDir(async (dir) => {
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
    await after.restore(() => loaded, () => true);
    after.add('e.weave.local.', 'c5', WEB + 4);
    assert.deepEqual(new FileDnsEntryStore(dir, US).load().map((e) => e.hostname).sort(), ['a.weave.local.', 'e.weave.local.']);
  });
});

// --- restoring in slices: the router's startup path does not wait for a large table ---

/** A saved table of `n` names of ours, the even ones live, the odd ones tombstones. */
function savedTable(dir: string, n: number): void {
  const entries = Array.from({ length: n }, (_, i) => ({
    hostname: `n${i}.weave.local.`, containerId: `c${i}`, origin: US, addr: WEB + i, version: 3, tombstone: i % 2 === 0 ? 0 : NOW - 60,
  }));
  writeFileSync(join(dir, DNS_ENTRIES_FILE), serialiseDnsEntries(US, entries));
}

test('a restore in slices gives the event loop a turn between them and ends with the same table and file as one slice', async () => {
  await withDir(async (wholeDir) => {
    await withDir(async (slicedDir) => {
      for (const dir of [wholeDir, slicedDir]) savedTable(dir, 25);
      const whole = router(wholeDir, NOW + 30);
      await whole.ns.restore(() => whole.store.load(), () => true, 25);

      const sliced = router(slicedDir, NOW + 30);
      let loaded = false;
      let turnsDuringRestore = 0;
      // Another task on the event loop, one step per turn: it must get turns while the restore runs.
      const otherTask = (): void => {
        if (!sliced.ns.isRestoring()) return;
        turnsDuringRestore++;
        setImmediate(otherTask);
      };
      setImmediate(otherTask);
      const restoring = sliced.ns.restore(() => { loaded = true; return sliced.store.load(); }, () => true, 5);
      assert.equal(loaded, false, 'nothing is read before the caller gets on');
      assert.equal(sliced.ns.isRestoring(), true);
      const restored = await restoring;
      assert.equal(restored.length, 25);
      assert.equal(sliced.ns.isRestoring(), false);
      assert.ok(turnsDuringRestore >= 5, `another task ran between the 5 slices (${turnsDuringRestore} turns)`);
      const view = (ns: Nameserver): string[] => ns.entries().map((e) => `${e.hostname} v${e.version} ${e.tombstone}`);
      assert.deepEqual(view(sliced.ns), view(whole.ns));
      const snapshot = (dir: string): string[] => parseDnsEntries(readFileSync(join(dir, DNS_ENTRIES_FILE), 'utf8'), US).map((e) => `${e.hostname} v${e.version}`);
      assert.deepEqual(snapshot(slicedDir), snapshot(wholeDir), 'the snapshot written after the restore is the same');
      // The live names, bumped, are announced once gossip is attached.
      sliced.ns.setBroadcaster((p) => sliced.sent.push(p));
      assert.equal(sliced.sent[0]!.entries.length, 13);
    });
  });
});

test('gossip and deletions that come while restoring wait for the saved names; adds are refused until then', async () => {
  await withDir(async (dir) => {
    savedTable(dir, 10);
    const { ns, store, sent } = router(dir, NOW + 30);
    const gossiper = new NameserverGossiper(ns);
    gossiper.attach({ gossipBroadcast: (d) => sent.push((d as DnsGossipData).payload) });
    const restoring = ns.restore(() => store.load(), () => true, 3);

    // A neighbour's first gossip still holds our n0 as we saved it (version 3): without the saved table
    // step 3 of §9.3 would tombstone it.
    const stale = { hostname: 'n0.weave.local.', containerId: 'c0', origin: US, addr: WEB, version: 3, tombstone: 0 };
    const theirs = { hostname: 'db.weave.local.', containerId: 'd1', origin: PEER, addr: WEB + 100, version: 0, tombstone: 0 };
    assert.equal(gossiper.onGossip(encodeGossipPayload({ timestamp: NOW + 30, entries: [stale, theirs] })), undefined, 'held, nothing passed on yet');
    assert.deepEqual(ns.lookup('db.weave.local.'), [], 'not taken in while restoring');
    assert.deepEqual(ns.delete({ containerId: 'c2' }), [], 'a deletion waits');
    assert.throws(() => ns.add('new.weave.local.', 'c99', WEB + 99), /while saved names are being restored/);
    for (let i = 1; i < MAX_HELD_PAYLOADS + 5; i++) gossiper.onGossip(encodeGossipPayload({ timestamp: NOW + 30, entries: [theirs] }));
    assert.equal(gossiper.droppedWhileRestoring, 5, 'beyond MAX_HELD_PAYLOADS held, the newest are dropped and counted');
    // A new connection's full-state gossip goes out now, without the saved tombstones.
    assert.ok(gossiper.gossip() !== undefined);

    await restoring;
    await ns.whenRestored();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(ns.lookup('n0.weave.local.').map((e) => e.version), [4], 'our n0 is live, its restored version kept');
    assert.deepEqual(ns.lookup('db.weave.local.').map((e) => e.addr), [WEB + 100], 'the held gossip was taken in');
    assert.deepEqual(ns.lookup('n2.weave.local.'), [], 'the deletion was applied after the restore');
    const spread = sent.flatMap((p) => p.entries).filter((e) => e.hostname === 'db.weave.local.');
    assert.equal(spread.length, 1, 'what the held gossip brought is passed on once');
    const announced = new Set(sent.flatMap((p) => p.entries).filter((e) => e.origin === US).map((e) => `${e.hostname}${e.tombstone === 0 ? '' : ' dead'}`));
    assert.ok(announced.has('n1.weave.local. dead') && announced.has('n0.weave.local.'),
      'full state went out while restoring: the restore announces its tombstones too, not only the names it bumped');
    ns.add('new.weave.local.', 'c99', WEB + 99);
    assert.equal(ns.lookup('new.weave.local.').length, 1);
  });
});
