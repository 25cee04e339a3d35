// The datapath compliance suite (lib/datapath-compliance.ts) for the kinds this
// kernel runs: the eBPF fast datapath and the sleeve. Open vSwitch runs it in
// the kernel lab VM, on demand (test/vm/guest/on-demand/ovs-compliance.test.ts).
import { after, before, describe, test } from 'node:test';
import { bpfDatapath } from '../../dataplane/bpf/descriptor.js';
import { sleeveDatapath } from '../../dataplane/sleeve/descriptor.js';
import { datapathCompliance } from './lib/datapath-compliance.js';

for (const suite of [datapathCompliance(bpfDatapath), datapathCompliance(sleeveDatapath)]) {
  describe(suite.name, () => {
    before(suite.setUp);
    after(suite.tearDown);
    for (const [name, check] of suite.checks) test(name, check);
  });
}
