// IPsec key derivation (spec §7.3): the spec's test vector, and the property
// that both peers of a connection derive the same key for each direction.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { deriveConnectionKeys, deriveIPsecKey, ipsecKeyInfo, isValidIPsecSpi, newIPsecNonce } from '../../crypto/ipsec-keys.js';

const sessionKey = Buffer.from('56739a695eb5240b3f8c075736725a9b5e729ad6e4be9c0af91523fc18f63151', 'hex'); // spec §3.6
const countingNonce = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xa0 + i)); // a0 a1 … bf

test('spec §7.3 test vector: keymat for receiver 0a:00:00:00:00:01', () => {
  assert.deepEqual(ipsecKeyInfo(0x0a0000000001n), Buffer.from('00000a0000000001', 'hex'));
  const keymat = deriveIPsecKey(sessionKey, countingNonce, 0x0a0000000001n);
  assert.equal(keymat.toString('hex'), '107991b1cc4a84134d59b9b04f4dacade62538a5437db26fe4a8a360f6da85cf5afbd892');
  assert.equal(keymat.length, 36); // AES-256 key ‖ 4-byte RFC 4106 salt
});

test('both peers derive matching keys: my inbound is your outbound', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.bigInt({ min: 1n, max: 0xffffffffffffn }),
      fc.bigInt({ min: 1n, max: 0xffffffffffffn }),
      (key, nameL, nameR) => {
        fc.pre(nameL !== nameR);
        const nonceL = newIPsecNonce();
        const nonceR = newIPsecNonce();
        const l = deriveConnectionKeys({ sessionKey: key, localName: nameL, remoteName: nameR, localNonce: nonceL, remoteNonce: nonceR });
        const r = deriveConnectionKeys({ sessionKey: key, localName: nameR, remoteName: nameL, localNonce: nonceR, remoteNonce: nonceL });
        assert.deepEqual(l.inbound, r.outbound);
        assert.deepEqual(l.outbound, r.inbound);
        assert.notDeepEqual(l.inbound, l.outbound); // each direction has its own key
      },
    ),
    { numRuns: 50 },
  );
});

test('the key depends on the receiver name and the nonce', () => {
  const a = deriveIPsecKey(sessionKey, countingNonce, 1n);
  assert.notDeepEqual(a, deriveIPsecKey(sessionKey, countingNonce, 2n));
  assert.notDeepEqual(a, deriveIPsecKey(sessionKey, Buffer.alloc(32), 1n));
});

test('bad inputs are rejected with a clear error', () => {
  assert.throws(() => deriveIPsecKey(Buffer.alloc(31), countingNonce, 1n), /32-byte session key/);
  assert.throws(() => deriveIPsecKey(sessionKey, Buffer.alloc(16), 1n), /32-byte nonce/);
  assert.throws(() => ipsecKeyInfo(0n), /48-bit non-zero peer name/);
  assert.throws(() => ipsecKeyInfo(1n << 48n), /48-bit/);
  assert.equal(isValidIPsecSpi(0xff), false);
  assert.equal(isValidIPsecSpi(0x100), true);
  assert.equal(isValidIPsecSpi(0xffffffff), true);
  assert.equal(isValidIPsecSpi(2 ** 32), false);
});
