// The composition root's datapath decision (weaver/datapath-wiring.ts) and the
// --fastdp flag: fastdp then sleeve when the kernel has one, sleeve only
// otherwise, and a clear refusal when --fastdp demands what the host lacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseDatapaths, fastdpKindWanted, FastdpRequiredError, type FastdpProbe } from '../../weaver/datapath-wiring.js';
import { FlagError, parseWeaverFlags } from '../../weaver/flags.js';
import type { Datapath } from '../../controlplane/router/datapath.js';

const NO_KERNEL_FASTDP: FastdpProbe = { unavailableReason: 'openvswitch kernel module not available; eBPF: bpffs cannot be mounted' };
const WITH_FASTDP: FastdpProbe = { create: () => Promise.reject(new Error('not created in unit tests')) as Promise<Datapath> };

test('a probe with fastdp: fastdp first, then sleeve; --fastdp is satisfied', () => {
  for (const requireFastdp of [false, true]) {
    const c = chooseDatapaths({ noFastdp: false, requireFastdp }, WITH_FASTDP);
    assert.deepEqual(c.overlays, ['fastdp', 'sleeve']);
    assert.equal(c.unavailable.size, 0);
  }
});

test('no kernel fast datapath without --fastdp: sleeve only, with the probe reason', () => {
  const c = chooseDatapaths({ noFastdp: false, requireFastdp: false }, NO_KERNEL_FASTDP);
  assert.deepEqual(c.overlays, ['sleeve']);
  assert.equal(c.unavailable.get('fastdp'), NO_KERNEL_FASTDP.unavailableReason);
});

test('--fastdp with a probe that finds neither OVS nor eBPF: refuses, naming why', () => {
  assert.throws(
    () => chooseDatapaths({ noFastdp: false, requireFastdp: true }, NO_KERNEL_FASTDP),
    (err: unknown) => {
      assert.ok(err instanceof FastdpRequiredError);
      assert.match(err.message, /--fastdp/);
      assert.match(err.message, /openvswitch kernel module not available/);
      assert.match(err.message, /without --fastdp/);
      return true;
    },
  );
  assert.throws(() => chooseDatapaths({ noFastdp: false, requireFastdp: true }, {}), /--fastdp was given but no kernel fast datapath can be used: no kernel fast datapath on this host/);
});

test('--fastdp is a router flag; together with --no-fastdp it is rejected', () => {
  assert.equal(parseWeaverFlags(['--fastdp'], {}).requireFastdp, true);
  assert.equal(parseWeaverFlags([], {}).requireFastdp, false);
  assert.throws(() => parseWeaverFlags(['--fastdp', '--no-fastdp'], {}), (err: unknown) => err instanceof FlagError && /--fastdp and --no-fastdp/.test(err.message));
});

test('WEAVE_FASTDP_DATAPATH picks the kernel datapath kind and rejects anything else', () => {
  assert.equal(fastdpKindWanted({}), 'auto');
  assert.equal(fastdpKindWanted({ WEAVE_FASTDP_DATAPATH: 'auto' }), 'auto');
  assert.equal(fastdpKindWanted({ WEAVE_FASTDP_DATAPATH: ' BPF ' }), 'bpf');
  assert.equal(fastdpKindWanted({ WEAVE_FASTDP_DATAPATH: 'ovs' }), 'ovs');
  assert.throws(() => fastdpKindWanted({ WEAVE_FASTDP_DATAPATH: 'xdp' }), /WEAVE_FASTDP_DATAPATH=xdp .*use ovs, bpf or auto/);
});
