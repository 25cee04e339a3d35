// `weave reset`'s eBPF part (teardownBpfFastdp) removes the pinned maps whether
// the pin directory is a plain directory on a bpffs or a bpffs mount point of
// its own (a private bpffs per router, as tests and several routers per host
// use). That it removes every filter and device a closed datapath left
// forwarding is the compliance suite's check (datapath-compliance.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const DATAPATH_MODULE = fileURLToPath(new URL('../../dataplane/bpf/datapath/index.js', import.meta.url));
const PREFIX = `wtd${process.pid % 100000}`;

function teardownIn(ns: string, pinDir: string): void {
  execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e',
    `const m = await import(${JSON.stringify(DATAPATH_MODULE)}); await m.teardownBpfFastdp({ pinDir: ${JSON.stringify(pinDir)} });`]);
}

/** Runs the teardown inside a fresh namespace, so the tunnel device it deletes can only be that namespace's. */
function teardownInNamespace(pinDir: string): void {
  const ns = `${PREFIX}-ns`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    teardownIn(ns, pinDir);
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

test('teardown empties a pin directory that is a bpffs mount point and leaves the mount', () => {
  const mount = `/tmp/${PREFIX}-bpffs`;
  mkdirSync(mount, { recursive: true });
  execFileSync('mount', ['-t', 'bpf', 'bpf', mount]);
  try {
    mkdirSync(`${mount}/maps-of-a-run`);
    teardownInNamespace(mount);
    assert.ok(existsSync(mount), 'the mount point stays');
    const left = readdirSync(mount).filter((e) => !e.endsWith('.debug'));
    assert.deepEqual(left, [], 'only the kernel\'s own entries remain');
  } finally {
    execFileSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  }
});

test('teardown removes a plain pin directory whole', () => {
  const dir = `/tmp/${PREFIX}-pins`;
  mkdirSync(`${dir}/maps-of-a-run`, { recursive: true });
  try {
    teardownInNamespace(dir);
    assert.equal(existsSync(dir), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
