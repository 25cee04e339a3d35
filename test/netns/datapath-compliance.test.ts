// The datapath compliance suite (lib/datapath-compliance.ts) for the kinds this
// kernel runs: the eBPF fast datapath and the sleeve. Open vSwitch runs it in
// the kernel lab VM (test/vm/guest/ovs-compliance.test.ts).
import { bpfDatapath } from '../../dataplane/bpf/descriptor.js';
import { sleeveDatapath } from '../../dataplane/sleeve/descriptor.js';
import { datapathCompliance } from './lib/datapath-compliance.js';

datapathCompliance(bpfDatapath);
datapathCompliance(sleeveDatapath);
