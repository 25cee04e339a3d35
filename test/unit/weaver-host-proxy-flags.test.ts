// Router flags that only reach host networking and the Docker API proxy (user-surface spec §4.2, §8):
// --host-root and --proc-path choose where sysctls are written; --without-dns and --no-multicast-route
// reach the proxy's container rewriting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseWeaverFlags } from '../../weaver/flags.js';
import { hostPathsOf } from '../../weaver/host-wiring.js';
import { proxyConfigOf } from '../../weaver/proxy-wiring.js';

test('--proc-path is used as given; --host-root gives <root>/sys only where it holds a sysfs', () => {
  const root = mkdtempSync(join(tmpdir(), 'weave-host-root-'));
  try {
    assert.deepEqual(hostPathsOf(parseWeaverFlags([], {})), { proc: undefined, sys: undefined });
    assert.deepEqual(hostPathsOf(parseWeaverFlags(['--proc-path', '/host/proc'], {})), { proc: '/host/proc', sys: undefined });
    // A root without sys/class/net (not the host's sysfs) is not used for sysctls.
    assert.deepEqual(hostPathsOf(parseWeaverFlags(['--host-root', root], {})), { proc: undefined, sys: undefined });
    mkdirSync(join(root, 'sys', 'class', 'net'), { recursive: true });
    assert.deepEqual(hostPathsOf(parseWeaverFlags(['--host-root', root, '--proc-path=/host/proc'], {})), { proc: '/host/proc', sys: join(root, 'sys') });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('--without-dns and --no-multicast-route reach the proxy configuration; both default off', () => {
  const off = proxyConfigOf(parseWeaverFlags(['--proxy'], {}), {});
  assert.ok(off);
  assert.equal(off.withoutDns, false);
  assert.equal(off.noMulticastRoute, false);
  const on = proxyConfigOf(parseWeaverFlags(['--proxy', '--without-dns', '--no-multicast-route'], {}), {});
  assert.ok(on);
  assert.equal(on.withoutDns, true);
  assert.equal(on.noMulticastRoute, true);
  assert.equal(proxyConfigOf(parseWeaverFlags([], {}), {}), undefined, 'no proxy without --proxy');
});
