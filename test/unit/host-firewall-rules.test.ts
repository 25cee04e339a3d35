// The host firewall's rules as data (dataplane/host/firewall.ts over
// netlink/nft-rules.ts): what each config puts in the table, in nft's text, and
// the input the encoder refuses. test/netns/netlink-nftables checks that the
// kernel's form of the same rules is what nft makes of this text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeReplaceTable, NftRuleError, renderNftRule, renderReplaceChains } from '../../dataplane/netlink/index.js';
import { firewallChains, renderFirewall, type FirewallConfig } from '../../dataplane/host/firewall.js';
import { ipsecChains } from '../../dataplane/ipsec/index.js';

const base: FirewallConfig = { bridge: 'weave', exposed: [] };

test('the table holds the spec §6.3 forward rules in order, and the control port rule only when the API is on TCP', () => {
  const script = renderFirewall(base);
  assert.match(script, /^table inet weave \{\}\ndelete table inet weave\ntable inet weave \{\n/);
  assert.match(script, /chain forward \{\n {4}type filter hook forward priority 0; policy accept;\n {4}iifname "weave" oifname "weave" accept\n {4}oifname "weave" jump expose\n {4}iifname "weave" oifname != "weave" accept\n {4}oifname "weave" ct state established,related accept\n/);
  assert.match(script, /chain input \{\n {4}type filter hook input priority 0; policy accept;\n {2}\}/, 'no API address: an empty input chain');
  const withApi = renderFirewall({ ...base, controlApi: { address: '127.0.0.1', port: 6784 } });
  assert.match(withApi, /ip daddr 127\.0\.0\.1 tcp dport 6784 fib saddr type != local ct state ! established,related drop comment "Block non-local access to Weave Net control port"/);
});

test('exposed subnets: one accept each, NAT only for those with masquerade, the Docker bridge dropped into weave', () => {
  const config: FirewallConfig = {
    bridge: 'weave', dockerBridge: 'docker0',
    exposed: [{ cidr: '10.32.0.254/12', masquerade: true }, { cidr: '10.40.1.1/24', masquerade: false }, { cidr: '10.32.0.253/12', masquerade: true }],
  };
  const chains = firewallChains(config);
  const expose = chains.find((c) => c.name === 'expose')!;
  assert.deepEqual(expose.rules.map(renderNftRule), ['ip daddr 10.32.0.0/12 accept', 'ip daddr 10.40.1.0/24 accept']);
  const nat = chains.find((c) => c.name === 'postrouting')!;
  assert.deepEqual(nat.rules.map(renderNftRule), [
    'ip saddr 10.32.0.0/12 ip daddr 224.0.0.0/4 return',
    'ip daddr 10.32.0.0/12 ip saddr != 10.32.0.0/12 masquerade',
    'ip saddr 10.32.0.0/12 ip daddr != 10.32.0.0/12 masquerade',
  ]);
  assert.equal(renderNftRule(chains.find((c) => c.name === 'forward')!.rules[0]!), 'iifname "docker0" oifname "weave" drop');
  assert.equal(firewallChains({ ...config, dockerBridge: 'weave' }).find((c) => c.name === 'forward')!.rules.length, 4, 'the bridge itself is not dropped');
});

test('IPsec chains appear with the first encrypted connection, and their update replaces only them', () => {
  const entry = { localIp: '10.1.0.1', remoteIp: '10.1.0.2', vxlanPort: 6784, spiIn: 0x1234 };
  assert.equal(firewallChains(base).length, 4);
  assert.deepEqual(firewallChains({ ...base, ipsec: [entry] }).map((c) => c.name), ['input', 'forward', 'expose', 'postrouting', 'ipsec-in-mark', 'ipsec-in', 'ipsec-out-mark', 'ipsec-out']);
  const update = renderReplaceChains('inet', 'weave', ipsecChains([entry]), true);
  assert.match(update, /^table inet weave \{\n {2}chain ipsec-in-mark \{\n {4}type filter hook input priority -150; policy accept;\n {2}\}/);
  assert.match(update, /delete chain inet weave ipsec-in-mark\ndelete chain inet weave ipsec-in\ndelete chain inet weave ipsec-out-mark\ndelete chain inet weave ipsec-out\n/);
  assert.doesNotMatch(update, /chain forward/);
  assert.doesNotMatch(renderReplaceChains('inet', 'weave', ipsecChains([]), false), /esp spi/, 'no connections: the chains go');
});

test('names, ports and comments nft could not take are refused before anything is sent', () => {
  const bad: Array<[string, () => unknown]> = [
    ['an interface name with a space', () => encodeReplaceTable('inet', 'weave', firewallChains({ ...base, bridge: 'we ave' }))],
    ['an interface name of 16 bytes', () => encodeReplaceTable('inet', 'weave', firewallChains({ ...base, dockerBridge: 'a'.repeat(16) }))],
    ['a quote in a comment', () => renderNftRule({ match: [], action: { kind: 'accept' }, comment: 'say "hi"' })],
    ['a port past 65535', () => encodeReplaceTable('inet', 'weave', firewallChains({ ...base, controlApi: { address: '127.0.0.1', port: 70000 } }))],
    ['a ct state match naming no state', () => encodeReplaceTable('inet', 't', [{ name: 'c', rules: [{ match: [{ kind: 'ctState', states: [] }], action: { kind: 'accept' } }] }])],
  ];
  for (const [what, run] of bad) assert.throws(run, NftRuleError, what);
  assert.throws(() => encodeReplaceTable('inet', 'bad name', []), RangeError);
  assert.throws(() => encodeReplaceTable('inet', 'weave', firewallChains({ ...base, exposed: [{ cidr: '10.0.0.300/8', masquerade: true }] })));
});
