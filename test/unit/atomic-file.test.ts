// The one temp+rename writer of state files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../controlplane/atomic-file.js';

function withDir(fn: (dir: string) => void): () => void {
  return () => {
    const dir = mkdtempSync(join(tmpdir(), 'atomic-file-'));
    try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
}

test('writes, then replaces whole, leaving no temporary', withDir((dir) => {
  const file = join(dir, 'state.json');
  writeFileAtomic(file, 'first', { durable: true });
  assert.equal(readFileSync(file, 'utf8'), 'first');
  writeFileAtomic(file, new TextEncoder().encode('second, longer'), { durable: false });
  assert.equal(readFileSync(file, 'utf8'), 'second, longer');
  writeFileAtomic(file, 'x', { durable: false, perProcessTemp: true });
  assert.equal(readFileSync(file, 'utf8'), 'x');
  assert.deepEqual(readdirSync(dir), ['state.json']);
}));

test('an explicit mode is exact whatever the umask', withDir((dir) => {
  const old = process.umask(0o077);
  try {
    writeFileAtomic(join(dir, 'tool'), '#!/bin/sh\n', { durable: false, mode: 0o755 });
    writeFileAtomic(join(dir, 'secret'), 's', { durable: true, mode: 0o600 });
  } finally {
    process.umask(old);
  }
  assert.equal(statSync(join(dir, 'tool')).mode & 0o777, 0o755);
  assert.equal(statSync(join(dir, 'secret')).mode & 0o777, 0o600);
}));

test('a failed rename leaves the old content and no temporary', withDir((dir) => {
  const target = join(dir, 'busy');
  mkdirSync(join(target, 'child'), { recursive: true });
  assert.throws(() => writeFileAtomic(target, 'data', { durable: true }), /EISDIR|ENOTEMPTY|EEXIST/);
  assert.deepEqual(readdirSync(dir), ['busy']);
  assert.throws(() => writeFileAtomic(join(dir, 'missing', 'file'), 'data', { durable: false }), /ENOENT/);
}));
