// `weave attach-bridge [bridge]` (user-surface spec §1.13), run by the CLI
// without the router:
//
//   node dist/weaver/attach-bridge.js <weave bridge> <other bridge>
//
// Prints nothing on success; exit 1 with the reason otherwise.
import { attachBridge } from '../dataplane/host/index.js';
import { Rtnl } from '../dataplane/netlink/index.js';

const [weaveBridge, other] = process.argv.slice(2);
if (!weaveBridge || !other) {
  process.stderr.write('usage: attach-bridge <weave bridge> <other bridge>\n');
  process.exitCode = 2;
} else {
  const rtnl = Rtnl.open();
  try {
    await attachBridge(rtnl, weaveBridge, other);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    rtnl.close();
  }
}
