// `weave reset`'s host teardown (user-surface spec §1.3 step 6, §6.5), run by
// the CLI after the router has stopped:
//
//   node dist/weaver/host-reset.js --state-dir DIR
//
// Removes the data plane's kernel state, the bridge the router recorded in DIR
// (default `weave`), every vethwe* link, and the nftables table; deletes the endpoint registry.
// Prints nothing on success; exit 1 with the reason otherwise.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { teardownHost } from '../dataplane/host/index.js';
import { Rtnl } from '../dataplane/netlink/index.js';
import { ENDPOINTS_FILE, HOST_NETWORK_FILE, recordedBridge } from './host-wiring.js';
import { teardownDataPlane } from './datapath-wiring.js';

function stateDirArg(argv: string[]): string {
  const i = argv.indexOf('--state-dir');
  const dir = i >= 0 ? argv[i + 1] : undefined;
  if (dir === undefined || !dir.startsWith('/')) throw new Error('usage: host-reset --state-dir <absolute dir>');
  return dir;
}

try {
  const stateDir = stateDirArg(process.argv.slice(2));
  await teardownDataPlane();
  const rtnl = Rtnl.open();
  try {
    await teardownHost(rtnl, recordedBridge(stateDir));
  } finally {
    rtnl.close();
  }
  rmSync(join(stateDir, ENDPOINTS_FILE), { force: true });
  rmSync(join(stateDir, HOST_NETWORK_FILE), { force: true });
} catch (err) {
  process.stderr.write(`weave: reset: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
