// Which bridge ports the eBPF datapath delivers to with bpf_redirect_peer: only
// a container veth (its other end in another namespace), never the host's own
// port or Weave's ports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isContainerPort, peerInOtherNetns } from '../../dataplane/bpf/datapath/bridge-ports.js';
import type { Link } from '../../dataplane/netlink/index.js';

function link(over: Partial<Link>): Link {
  return { index: 9, name: 'vethwepl1234', mtu: 1376, flags: 0, up: true, operstate: 'up', kind: 'veth', masterIndex: 3, ...over };
}

test('a container veth (peer in another namespace) is marked for redirect_peer', () => {
  assert.equal(peerInOtherNetns(link({ parentIndex: 2, parentNetnsId: 0 })), true);
});

test('a veth whose peer stays in this namespace (the host\'s own port) or a non-veth port is not', () => {
  assert.equal(peerInOtherNetns(link({ name: 'vethhost', parentIndex: 10 })), false);
  assert.equal(peerInOtherNetns(link({ kind: 'tun', name: 'tap0' })), false);
  assert.equal(peerInOtherNetns(link({ kind: undefined })), false);
});

test('Weave\'s own ports are never container ports', () => {
  assert.equal(isContainerPort(link({ name: 'vethwe-bridge', parentIndex: 10 }), 3), false);
  assert.equal(isContainerPort(link({ name: 'vethwe-pcap' }), 3), false);
  assert.equal(isContainerPort(link({}), 3), true);
  assert.equal(isContainerPort(link({ masterIndex: 4 }), 3), false);
});
