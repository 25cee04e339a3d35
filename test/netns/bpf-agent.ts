// A stand-alone loader process for the bpf fastdp tests: opens the datapath
// (reusing the pinned maps), applies a desired state, prints the counters as
// JSON and exits, leaving the programs forwarding. Used to prove that a
// restarted process does not interrupt forwarding.
//
//   node dist/test/netns/bpf-agent.js '{"options":{...},"state":{...}}'
import { BpfFastDatapath, type BpfFastDatapathOptions, type DesiredState } from '../../dataplane/bpf/fastdp.js';

interface AgentInput { options: BpfFastDatapathOptions; state: DesiredState }

const input = JSON.parse(process.argv[2] ?? '') as AgentInput;
const dp = await BpfFastDatapath.open(input.options);
await dp.apply(input.state);
process.stdout.write(JSON.stringify(dp.readCounters()) + '\n');
dp.close();
