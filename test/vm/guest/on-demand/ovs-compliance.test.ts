// Runs INSIDE the kernel lab VM (the host kernel has no openvswitch module):
// the datapath compliance suite (test/netns/lib/datapath-compliance.ts) for
// the Open vSwitch fast datapath, the same checks the eBPF datapath and the
// sleeve pass in test/netns/datapath-compliance.test.ts.
//
// On demand, not in CI: under the VM's software emulation each agent process
// takes seconds to start and the whole suite minutes, more than the CI budget
// allows. Run it with
//   WEAVE_VM_GUEST_DIR=dist/test/vm/guest/on-demand node dist/test/run.js vm
import { after, before, describe, test } from 'node:test';
import { ovsDatapath } from '../../../../dataplane/ovs/descriptor.js';
import { datapathCompliance } from '../../../netns/lib/datapath-compliance.js';
import { loadOpenvswitch } from '../ovs-fastdp-setup.js';

loadOpenvswitch();
// Node and the kernel run several times slower under the VM's software emulation.
const suite = datapathCompliance(ovsDatapath, { slowdown: 4 });
describe(suite.name, () => {
  before(suite.setUp);
  after(suite.tearDown);
  for (const [name, check] of suite.checks) test(name, check);
});
