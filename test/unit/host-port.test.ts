// host:port splitting's edge cases: IPv6 brackets, bare IPv6, missing and bad ports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIPv6Literal, joinHostPort, plainHost, splitHostPort } from '../../controlplane/host-port.js';

test('host:port and [v6]:port split into host and port', () => {
  assert.deepEqual(splitHostPort('10.0.0.1:6783'), { host: '10.0.0.1', port: 6783 });
  assert.deepEqual(splitHostPort('peer.example:1'), { host: 'peer.example', port: 1 });
  assert.deepEqual(splitHostPort('[fe80::1]:6783'), { host: 'fe80::1', port: 6783 });
  assert.deepEqual(splitHostPort('[::ffff:10.0.0.1]:5000'), { host: '::ffff:10.0.0.1', port: 5000 });
  assert.deepEqual(splitHostPort(':53'), { host: '', port: 53 });
  assert.deepEqual(splitHostPort('[::]:0'), { host: '::', port: 0 });
  assert.deepEqual(splitHostPort('0.0.0.0:65535'), { host: '0.0.0.0', port: 65535 });
});

test('a missing port is absent, and a bare IPv6 literal is all host', () => {
  assert.deepEqual(splitHostPort('10.0.0.1'), { host: '10.0.0.1' });
  assert.deepEqual(splitHostPort('[fe80::1]'), { host: 'fe80::1' });
  assert.deepEqual(splitHostPort('fe80::1'), { host: 'fe80::1' });
  assert.deepEqual(splitHostPort('::'), { host: '::' });
  // Not an IPv6 literal as a whole: the last colon separates the port.
  assert.deepEqual(splitHostPort('::ffff:10.0.0.1:5000'), { host: '::ffff:10.0.0.1', port: 5000 });
});

test('bad ports and brackets are undefined, never NaN', () => {
  for (const bad of ['10.0.0.1:', '10.0.0.1:x', '10.0.0.1:65536', '10.0.0.1:-1', '10.0.0.1:123456', '10.0.0.1: 80',
    '[fe80::1', '[fe80::1]x', '[fe80::1]:', '[fe80::1]:http', 'fe80::1]:80', 'a:b:c']) {
    assert.equal(splitHostPort(bad), undefined, bad);
  }
});

test('joinHostPort brackets IPv6 literals and round-trips', () => {
  assert.equal(joinHostPort('10.0.0.1', 6783), '10.0.0.1:6783');
  assert.equal(joinHostPort('fe80::1', 6783), '[fe80::1]:6783');
  for (const text of ['10.0.0.1:6783', '[fe80::1]:80', 'host.example:1']) {
    const hp = splitHostPort(text)!;
    assert.equal(joinHostPort(hp.host, hp.port!), text);
  }
});

test('plainHost: no slash, and colons only inside brackets', () => {
  assert.equal(plainHost('docker.example:2375', 'docker.example'), true);
  assert.equal(plainHost('[fd00::1]:2375', 'fd00::1'), true);
  assert.equal(plainHost('a:b:2375', 'a:b'), false);
  assert.equal(plainHost('a/b:2375', 'a/b'), false);
});

test('isIPv6Literal: IPv6 literals only, whatever the form; IPv4, names and host:port are not', () => {
  for (const v6 of ['::', '::1', 'fe80::1', '2001:db8::ff00:42:8329', '::ffff:10.0.0.1']) assert.equal(isIPv6Literal(v6), true, v6);
  for (const other of ['', '10.0.0.1', 'peer.example', '10.0.0.1:6783', '[fe80::1]', 'a:b:c']) assert.equal(isIPv6Literal(other), false, other);
});
