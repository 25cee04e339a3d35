// The IPv4 address of a host interface, read over netlink (Weave's
// `weaveutil bridge-ip`), run by `weave launch` for the docker bridge:
//
//   node dist/weaver/bridge-ip.js docker0
//
// Prints the first IPv4 address (no prefix) and exits 0; prints nothing when
// the interface has none or does not exist. Unlike os.networkInterfaces(),
// netlink reports the address of a bridge without carrier — docker0 on a
// fresh Docker host with no containers.
import { Rtnl } from '../dataplane/netlink/index.js';

const name = process.argv[2];
if (name === undefined || name === '') {
  process.stderr.write('usage: bridge-ip <interface>\n');
  process.exitCode = 2;
} else {
  const rtnl = Rtnl.open();
  try {
    const link = await rtnl.findLink(name);
    const addrs = link ? await rtnl.listAddresses(link.index) : [];
    const v4 = addrs.find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a.address));
    if (v4) process.stdout.write(`${v4.address}\n`);
  } catch (err) {
    process.stderr.write(`weave: bridge-ip ${name}: ${(err as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    rtnl.close();
  }
}
