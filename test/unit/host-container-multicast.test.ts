// The nft script for a container's multicast rules (dataplane/host/container-multicast.ts);
// the rules' effect is tested on the kernel in test/netns/compat-subnets.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FirewallError, renderContainerMulticast } from '../../dataplane/host/index.js';

test('one accept rule per subnet of the addresses (duplicates once, overlapping subnets each), then the drop', () => {
  const script = renderContainerMulticast('ethwe', ['10.2.1.1/24', '10.2.1.7/24', '10.0.0.5/8']);
  const rules = script.split('\n').filter((l) => l.includes('iifname'));
  assert.deepEqual(rules.map((l) => l.trim().replace(/ comment .*/, '')), [
    'iifname "ethwe" ip saddr 10.2.1.0/24 ip daddr 224.0.0.0/4 accept',
    'iifname "ethwe" ip saddr 10.0.0.0/8 ip daddr 224.0.0.0/4 accept',
    'iifname "ethwe" ip daddr 224.0.0.0/4 drop',
  ]);
  assert.match(script, /^table ip weave \{\}\ndelete table ip weave\ntable ip weave \{\n/, 'replaces the table in one transaction');
});

test('no addresses: the table goes; an interface name nft cannot quote is refused', () => {
  assert.equal(renderContainerMulticast('eth0', []), 'table ip weave {}\ndelete table ip weave\n');
  assert.throws(() => renderContainerMulticast('eth0"; flush ruleset', ['10.2.1.1/24']), FirewallError);
});
