// The CryptoInitSARemote body (spec §7.2) and the spec §7.5 marking rules as
// nft chains (in nft's text; test/netns/netlink-nftables checks the kernel's
// form against nft's).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CryptoInitSARemoteError,
  IPsecFirewallError,
  decodeCryptoInitSARemote,
  encodeCryptoInitSARemote,
  ipsecChains,
  type IPsecFirewallEntry,
} from '../../dataplane/ipsec/index.js';
import { renderNftChains, renderNftRule } from '../../dataplane/netlink/index.js';

const renderIPsecChains = (entries: IPsecFirewallEntry[]): string[] => renderNftChains(ipsecChains(entries));

const nonce = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xa0 + i));

test('CryptoInitSARemote is nonce ‖ SPI (u32 BE) ‖ 28 zero bytes', () => {
  const body = encodeCryptoInitSARemote({ nonce, spi: 0xc1a0b2c3 });
  assert.equal(body.length, 64);
  assert.deepEqual(body, Buffer.concat([nonce, Buffer.from('c1a0b2c3', 'hex'), Buffer.alloc(28)]));
  assert.deepEqual(decodeCryptoInitSARemote(body), { nonce, spi: 0xc1a0b2c3 });
});

test('CryptoInitSARemote round-trips and rejects other lengths and reserved SPIs', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0x100, max: 0xffffffff }), (n, spi) => {
      const back = decodeCryptoInitSARemote(encodeCryptoInitSARemote({ nonce: n, spi }));
      assert.deepEqual(back, { nonce: Buffer.from(n), spi });
    }),
  );
  for (const len of [0, 36, 63, 65, 96]) assert.throws(() => decodeCryptoInitSARemote(Buffer.alloc(len)), CryptoInitSARemoteError);
  const reserved = Buffer.concat([nonce, Buffer.from('000000ff', 'hex'), Buffer.alloc(28)]);
  assert.throws(() => decodeCryptoInitSARemote(reserved), /outside 0x100/);
  assert.throws(() => encodeCryptoInitSARemote({ nonce: Buffer.alloc(31), spi: 0x100 }), /32 bytes/);
});

test('nft chains carry each spec §7.5 rule for a connection', () => {
  const lines = renderIPsecChains([{ localIp: '10.1.0.1', remoteIp: '10.1.0.2', vxlanPort: 6784, spiIn: 0xabc }]).join('\n');
  assert.match(lines, /type filter hook input priority -150;[\s\S]*ip saddr 10\.1\.0\.2 ip daddr 10\.1\.0\.1 esp spi 0xabc meta mark set meta mark or 0x20000/);
  // Plain VXLAN from the peer is dropped whichever of our addresses it was sent to.
  assert.match(lines, /type filter hook input priority 0;[\s\S]*\n {4}ip saddr 10\.1\.0\.2 udp dport 6784 meta mark and 0x20000 != 0x20000 drop/);
  // VXLAN to the peer is marked whichever source address the kernel picks: from
  // another than the SA's, it then finds no policy and is dropped, never sent in clear.
  assert.match(lines, /type route hook output priority -150;[\s\S]*\n {4}ip daddr 10\.1\.0\.2 udp dport 6784 meta mark set meta mark or 0x20000/);
  assert.match(lines, /meta l4proto != esp rt ipsec missing meta mark and 0x20000 == 0x20000 drop/);
});

test('a frame that came in inside ESP and leaves to a trusted peer loses the mark first, then VXLAN to an encrypted peer is marked', () => {
  const outMark = ipsecChains([{ localIp: '10.1.0.1', remoteIp: '10.1.0.2', vxlanPort: 6784, spiIn: 0xabc }]).find((c) => c.name === 'ipsec-out-mark')!;
  assert.deepEqual(outMark.rules.map(renderNftRule), [
    'meta l4proto udp meta mark and 0x20000 == 0x20000 meta mark set meta mark and 0xfffdffff',
    'ip daddr 10.1.0.2 udp dport 6784 meta mark set meta mark or 0x20000',
  ]);
  assert.deepEqual(ipsecChains([]).find((c) => c.name === 'ipsec-out-mark')!.rules, [], 'no encrypted connection: no mark to take off');
});

test('nft rendering: duplicate marking rules are merged, bad input rejected', () => {
  const e = { localIp: '10.1.0.1', remoteIp: '10.1.0.2', vxlanPort: 6784, spiIn: 0x200 };
  const lines = renderIPsecChains([e, { ...e, vxlanPort: 6785 }]);
  assert.equal(lines.filter((l) => l.includes('esp spi 0x200')).length, 1);
  assert.equal(lines.filter((l) => l.includes('udp dport 6785')).length, 2);
  // Two connections to one peer from two of our addresses: one rule each way.
  const twoLocal = renderIPsecChains([e, { ...e, localIp: '10.1.0.3', spiIn: 0x201 }]);
  assert.equal(twoLocal.filter((l) => l.includes('udp dport 6784')).length, 2, twoLocal.join('\n'));
  assert.throws(() => renderIPsecChains([{ ...e, remoteIp: '10.1.0' }]), IPsecFirewallError);
  assert.throws(() => renderIPsecChains([{ ...e, spiIn: 5 }]), IPsecFirewallError);
});
