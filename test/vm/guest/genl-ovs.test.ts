// Runs INSIDE the kernel lab VM (whose kernel has the openvswitch module):
// the four ODP generic netlink families resolve through dataplane/netlink/genl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { NETLINK_GENERIC, NetlinkSocket, resolveFamily } from '../../../dataplane/netlink/index.js';

let sock: NetlinkSocket;

before(() => {
  // The families appear once the module is loaded; loading twice is harmless.
  try {
    execFileSync('modprobe', ['openvswitch'], { stdio: 'ignore' });
  } catch {
    // built in, or already loaded: the resolves below tell
  }
  sock = NetlinkSocket.open(NETLINK_GENERIC);
});

after(() => sock?.close());

for (const name of ['ovs_datapath', 'ovs_vport', 'ovs_flow', 'ovs_packet']) {
  test(`generic netlink family ${name} resolves with an id and a version`, async () => {
    const f = await resolveFamily(sock, name);
    assert.equal(f.name, name);
    assert.ok(f.id >= 16, `${name} id ${f.id}`);
    assert.ok(f.version >= 1, `${name} version ${f.version}`);
    // ODP families carry struct ovs_header (int dp_ifindex) after genlmsghdr.
    assert.equal(f.hdrSize, 4, `${name} hdrsize`);
  });
}

test('ovs_vport exposes its multicast group (vport change notifications)', async () => {
  const vport = await resolveFamily(sock, 'ovs_vport');
  assert.ok(vport.multicastGroups.size >= 1, `ovs_vport groups: ${[...vport.multicastGroups.keys()].join(',')}`);
});
