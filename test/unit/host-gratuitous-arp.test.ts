// The gratuitous ARP frame sent for a container's new address (user-surface
// spec §1.8): an ARP request for the address itself, broadcast.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gratuitousArpFrame } from '../../dataplane/host/gratuitous-arp.js';

test('gratuitous ARP: broadcast request with sender and target address both the new address', () => {
  const f = gratuitousArpFrame('aa:bb:cc:00:11:22', '10.32.0.7');
  assert.equal(f.length, 42);
  assert.equal(f.subarray(0, 6).toString('hex'), 'ffffffffffff', 'broadcast destination');
  assert.equal(f.subarray(6, 12).toString('hex'), 'aabbcc001122', 'from the container MAC');
  assert.equal(f.readUInt16BE(12), 0x0806, 'ARP ethertype');
  assert.equal(f.subarray(14, 22).toString('hex'), '0001080006040001', 'Ethernet/IPv4, request');
  assert.equal(f.subarray(22, 28).toString('hex'), 'aabbcc001122', 'sender MAC');
  assert.deepEqual([...f.subarray(28, 32)], [10, 32, 0, 7], 'sender address');
  assert.deepEqual([...f.subarray(38, 42)], [10, 32, 0, 7], 'target address is the same');
});

test('a malformed MAC is refused', () => {
  assert.throws(() => gratuitousArpFrame('aa:bb', '10.32.0.7'), RangeError);
});
