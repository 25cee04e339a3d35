// Upstream servers from resolv.conf (user-surface spec §6.6): weaveDNS never
// forwards to itself, also when it listens on a wildcard address and the
// host's resolv.conf names a loopback or local address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ResolvConfWatcher } from '../../controlplane/dns/resolv-conf.js';

function upstreamsFor(lines: string[], listen: { address: string; port: number }): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'weave-resolv-'));
  try {
    const path = join(dir, 'resolv.conf');
    writeFileSync(path, lines.map((l) => `${l}\n`).join(''));
    return new ResolvConfWatcher(path, 53, listen).upstreams().map((s) => s.address);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a specific listen address is left out of the upstreams, others stay in file order', () => {
  assert.deepEqual(
    upstreamsFor(['nameserver 172.17.0.1', 'nameserver 192.0.2.53', 'nameserver 127.0.0.53'], { address: '172.17.0.1', port: 53 }),
    ['192.0.2.53', '127.0.0.53'],
  );
});

test('listening on 0.0.0.0:53, loopback and local addresses are ourselves', () => {
  const local = Object.values(networkInterfaces()).flatMap((l) => l ?? []).find((a) => a.family === 'IPv4')?.address ?? '127.0.0.1';
  assert.deepEqual(
    upstreamsFor(['nameserver 127.0.0.53', `nameserver ${local}`, 'nameserver 192.0.2.53', 'nameserver ::1'], { address: '0.0.0.0', port: 53 }),
    ['192.0.2.53'],
  );
});

test('a listener on another port leaves every upstream in', () => {
  assert.deepEqual(upstreamsFor(['nameserver 127.0.0.1'], { address: '0.0.0.0', port: 5353 }), ['127.0.0.1']);
});
