// `weave bridge-type` (user-surface spec §1.13): the type of the weave bridge
// as the kernel has it, run by the CLI without the router:
//
//   node dist/weaver/bridge-type.js weave
//
// Prints `bridge`, `fastdp` or `bridged_fastdp`, or nothing when there is no
// weave bridge; exits 0.
import { classifyBridge, ODP_DATAPATH } from '../dataplane/host/index.js';
import { Rtnl } from '../dataplane/netlink/index.js';

const name = process.argv[2];
if (name === undefined || name === '') {
  process.stderr.write('usage: bridge-type <bridge>\n');
  process.exitCode = 2;
} else {
  const rtnl = Rtnl.open();
  try {
    const [bridge, datapath] = await Promise.all([rtnl.findLink(name), rtnl.findLink(ODP_DATAPATH)]);
    const type = classifyBridge(bridge?.kind, datapath?.kind);
    if (type !== undefined) process.stdout.write(`${type}\n`);
  } catch (err) {
    process.stderr.write(`weave: bridge-type ${name}: ${(err as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    rtnl.close();
  }
}
