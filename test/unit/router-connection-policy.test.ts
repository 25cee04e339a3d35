// The overlay switch's per-connection decisions: encryption (user-surface spec
// §8.4) and the remote's overlay UDP port (wire spec §0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encryptionWanted, remoteOverlayPort } from '../../controlplane/router/connection-policy.js';
import { TrustedSubnets } from '../../controlplane/router/trusted-subnets.js';

const trusted = new TrustedSubnets(['10.0.0.0/8']);
const none = new TrustedSubnets([]);

test('no password: never encrypted, trusted or not', () => {
  assert.equal(encryptionWanted(false, none, { remoteAddr: '192.168.1.2:6783', outbound: true, remoteTrustsUs: false }), false);
  assert.equal(encryptionWanted(false, trusted, { remoteAddr: '10.1.2.3:6783', outbound: false, remoteTrustsUs: true }), false);
});

test('with a password: encrypted unless both ends trust each other', () => {
  const at = (remoteAddr: string, remoteTrustsUs: boolean): boolean => encryptionWanted(true, trusted, { remoteAddr, outbound: true, remoteTrustsUs });
  assert.equal(at('10.1.2.3:6783', true), false, 'we trust 10/8 and the remote trusts us');
  assert.equal(at('10.1.2.3:6783', false), true, 'the remote does not trust us');
  assert.equal(at('192.168.1.2:6783', true), true, 'we do not trust the remote');
  assert.equal(at('::ffff:10.1.2.3:40000', true), false, 'an IPv4-mapped address is matched as IPv4');
  assert.equal(at('[::ffff:10.1.2.3]:40000', true), false, 'a bracketed IPv4-mapped address too');
  assert.equal(encryptionWanted(true, none, { remoteAddr: '10.1.2.3:6783', outbound: true, remoteTrustsUs: true }), true, 'no trusted subnets');
});

test('remote overlay port: outbound uses the port we dialled, inbound assumes ours; fastdp is mesh port + 1', () => {
  assert.equal(remoteOverlayPort('sleeve', { remoteAddr: '10.1.2.3:7000', outbound: true }, 6783), 7000);
  assert.equal(remoteOverlayPort('fastdp', { remoteAddr: '10.1.2.3:7000', outbound: true }, 6783), 7001);
  assert.equal(remoteOverlayPort('sleeve', { remoteAddr: '10.1.2.3:51234', outbound: false }, 6783), 6783);
  assert.equal(remoteOverlayPort('fastdp', { remoteAddr: '10.1.2.3:51234', outbound: false }, 6790), 6791);
  assert.equal(remoteOverlayPort('sleeve', { remoteAddr: '10.1.2.3', outbound: true }, 6783), 6783, 'no port in the address: ours');
  assert.equal(remoteOverlayPort('fastdp', { remoteAddr: '[fd00::2]:7000', outbound: true }, 6783), 7001, 'IPv6 in brackets');
});
