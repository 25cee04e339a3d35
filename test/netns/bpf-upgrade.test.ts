// Upgrading over pinned maps: a datapath opened over the pins of a build whose
// map shapes differ (here: the counters map of a build with fewer counters and
// a peer table without tunnel sources) replaces just those maps and reuses the
// others with their state; the old peer table still reads back first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createTestbed } from './lib/index.js';
import { BpfFastDatapath } from '../../dataplane/bpf/fastdp.js';
import { COUNTER_NAMES, DatapathMaps, MAX_SHORT_ID, ipv4ToHostU32 } from '../../dataplane/bpf/maps.js';
import * as c from '../../dataplane/bpf/libbpf.js';

test('pinned maps of another build are replaced, compatible ones keep their state', async () => {
  const bed = await createTestbed({ hosts: 1, underlay: 'bridge' });
  const mount = join('/tmp', `${bed.prefix}-bpffs`);
  const pinDir = join(mount, 'h1');
  mkdirSync(mount, { recursive: true });
  execFileSync('mount', ['-t', 'bpf', 'bpf', mount]);
  const netns = bed.host(1).namespace;
  const notes: string[] = [];
  try {
    const first = await BpfFastDatapath.open({ localShortId: 1, pinDir, netns, log: (m) => notes.push(m) });
    first.maps.setRemoteMac('02:77:00:00:00:42', 7);
    first.close();
    assert.deepEqual(first.replacedPins, [], 'a fresh pin directory has nothing to replace');

    // What an older build left: a counters map with fewer entries.
    rmSync(join(pinDir, 'weave_counters'));
    const old = c.mapCreate(c.BPF_MAP_TYPE_PERCPU_ARRAY, 'weave_counters', 4, 8, COUNTER_NAMES.length - 2, null);
    assert.ok(old >= 0, `create the old-shape map (errno ${-old})`);
    try {
      assert.equal(c.objPin(old, join(pinDir, 'weave_counters')), 0);
    } finally {
      c.close(old);
    }

    // And a peer table of a build before the tunnel source: 8-byte entries (address, flags).
    rmSync(join(pinDir, 'weave_peers'));
    const oldPeers = c.mapCreate(c.BPF_MAP_TYPE_ARRAY, 'weave_peers', 4, 8, MAX_SHORT_ID + 1, null);
    assert.ok(oldPeers >= 0, `create the old-shape peer table (errno ${-oldPeers})`);
    try {
      const key = Buffer.alloc(4);
      key.writeUInt32LE(5, 0);
      const value = Buffer.alloc(8);
      value.writeUInt32LE(ipv4ToHostU32('172.31.9.5'), 0);
      assert.equal(c.mapUpdateElem(oldPeers, key, value, c.BPF_ANY), 0);
      assert.equal(c.objPin(oldPeers, join(pinDir, 'weave_peers')), 0);
    } finally {
      c.close(oldPeers);
    }
    // What a restarting router reads before it loads (restart tolerance across the upgrade).
    const pinned = DatapathMaps.openPinned(pinDir);
    try {
      assert.deepEqual([...pinned.listPeerEntries()], [[5, { underlayIp: '172.31.9.5', receiveOnly: false }]], 'the old peer table reads back');
    } finally {
      pinned.close();
    }

    const second = await BpfFastDatapath.open({ localShortId: 1, pinDir, netns, log: (m) => notes.push(m) });
    try {
      assert.deepEqual([...second.replacedPins].sort(), ['weave_counters', 'weave_peers']);
      assert.match(notes.join('\n'), /weave_counters is from another build \(maxEntries \d+ -> \d+\)/);
      const counters = second.readCounters();
      assert.deepEqual(Object.keys(counters), [...COUNTER_NAMES], 'every counter of this build is readable');
      const learned = second.listLearnedMacs().find((m) => m.mac === '02:77:00:00:00:42');
      assert.equal(learned?.peerShortId, 7, 'the learned MACs (a compatible map) survived the upgrade');
    } finally {
      await second.destroy();
    }
  } finally {
    await bed.teardown();
    execFileSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  }
});
