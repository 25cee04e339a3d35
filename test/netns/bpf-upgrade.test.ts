// Upgrading over pinned maps: a datapath opened over the pins of a build whose
// map shapes differ (here: the counters map of a build with fewer counters)
// replaces just those maps and reuses the others with their state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createTestbed } from './lib/index.js';
import { BpfFastDatapath } from '../../dataplane/bpf/fastdp.js';
import { COUNTER_NAMES } from '../../dataplane/bpf/maps.js';
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

    const second = await BpfFastDatapath.open({ localShortId: 1, pinDir, netns, log: (m) => notes.push(m) });
    try {
      assert.deepEqual(second.replacedPins, ['weave_counters']);
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
