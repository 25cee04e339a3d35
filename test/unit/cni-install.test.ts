// `weave setup-cni` (user-surface spec §7.4 "Install"): bundle, wrapper and
// symlinks in the CNI bin dir, the conflist written once and never over a
// user's file, the legacy single-plugin config removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONFLIST_NAME, installCni, wrapperScript } from '../../controlplane/cni/install.js';
import { pluginKindOf } from '../../controlplane/cni/main.js';
import { runCli } from '../../controlplane/cli/run.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('install: wrapper, weave-net/weave-ipam symlinks replacing a legacy file, conflist 1.0.0 with portmap; a second run changes nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weave-cni-install-'));
  try {
    const binDir = join(dir, 'bin');
    const confDir = join(dir, 'net.d');
    mkdirSync(binDir);
    mkdirSync(confDir);
    writeFileSync(join(binDir, 'weave-net'), 'an old weave 1.x binary');
    writeFileSync(join(confDir, '10-weave.conf'), '{}');
    const opts = { binDir, confDir, version: '2.8.1', sourceRoot: ROOT, nodeBinary: process.execPath, copyNode: false, hairpinMode: false };
    const first = installCni(opts);
    assert.equal(readlinkSync(join(binDir, 'weave-net')), 'weave-plugin-2.8.1');
    assert.equal(readlinkSync(join(binDir, 'weave-ipam')), 'weave-plugin-2.8.1');
    assert.equal(lstatSync(join(binDir, 'weave-plugin-2.8.1')).mode & 0o777, 0o755);
    assert.ok(existsSync(join(binDir, '.weave-net-ts-2.8.1', 'weave-cni.js')));
    assert.ok(!existsSync(join(confDir, '10-weave.conf')), 'legacy config removed');
    assert.deepEqual(first.removed, [join(confDir, '10-weave.conf')]);
    assert.deepEqual(JSON.parse(readFileSync(join(confDir, CONFLIST_NAME), 'utf8')), {
      cniVersion: '1.0.0',
      name: 'weave',
      plugins: [
        { name: 'weave', type: 'weave-net', hairpinMode: false },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    });
    const second = installCni(opts);
    assert.deepEqual(second.written, [], 'nothing rewritten');
    assert.equal(second.keptConflist, join(confDir, CONFLIST_NAME));

    writeFileSync(join(confDir, CONFLIST_NAME), '{"user":"edited"}');
    installCni({ ...opts, hairpinMode: true });
    assert.equal(readFileSync(join(confDir, CONFLIST_NAME), 'utf8'), '{"user":"edited"}', "a user's conflist is never clobbered");
    assert.deepEqual(readdirSorted(binDir), ['.weave-net-ts-2.8.1', 'weave-ipam', 'weave-net', 'weave-plugin-2.8.1']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('install over an earlier layout of the same version: the bundle and its wrapper are replaced, and the plugin runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weave-cni-upgrade-'));
  try {
    const binDir = join(dir, 'bin');
    const confDir = join(dir, 'net.d');
    const bundle = join(binDir, '.weave-net-ts-2.8.1');
    // As builds before the one-file plugin laid it out: a copy of dist/controlplane, the wrapper naming its entry.
    mkdirSync(join(bundle, 'dist', 'controlplane', 'cni'), { recursive: true });
    mkdirSync(confDir);
    writeFileSync(join(bundle, 'package.json'), '{"type":"module"}\n');
    const oldEntry = join(bundle, 'dist', 'controlplane', 'cni', 'entry.js');
    writeFileSync(oldEntry, 'process.exit(3);\n');
    writeFileSync(join(binDir, 'weave-plugin-2.8.1'), wrapperScript(process.execPath, oldEntry), { mode: 0o755 });
    const report = installCni({ binDir, confDir, version: '2.8.1', sourceRoot: ROOT, nodeBinary: process.execPath, copyNode: false, hairpinMode: true });
    assert.ok(report.written.includes(bundle), 'the bundle is replaced');
    assert.ok(report.written.includes(join(binDir, 'weave-plugin-2.8.1')), 'the wrapper is rewritten');
    assert.deepEqual(readdirSorted(bundle), ['package.json', 'weave-cni.js']);
    assert.equal(readFileSync(join(binDir, 'weave-plugin-2.8.1'), 'utf8'), wrapperScript(process.execPath, join(bundle, 'weave-cni.js')));
    const version = spawnSync(join(binDir, 'weave-net'), [], { input: '{}', env: { ...process.env, CNI_COMMAND: 'VERSION' }, encoding: 'utf8' });
    assert.equal(version.status, 0, version.stderr);
    assert.equal((JSON.parse(version.stdout) as { cniVersion: string }).cniVersion, '1.1.0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A directory's entries, sorted; leftovers of atomic writes would show as *.tmp-<pid>. */
function readdirSorted(d: string): string[] {
  return readdirSync(d).sort();
}

test('dispatch by the name run as, and a wrapper that passes it on quoted', () => {
  assert.equal(pluginKindOf('/opt/cni/bin/weave-net'), 'net');
  assert.equal(pluginKindOf('/opt/cni/bin/weave-ipam'), 'ipam');
  assert.equal(pluginKindOf('weave-plugin-2.8.1'), undefined);
  assert.equal(wrapperScript("/x/it's/node", '/e.js'), `#!/bin/sh\n# weave-net / weave-ipam CNI plugin: one program, chosen by the name it runs as.\nexec '/x/it'\\''s/node' '/e.js' "$0"\n`);
});

test('weave setup-cni: dirs from WEAVE_CNI_PLUGIN_DIR / WEAVE_CNI_CONF_DIR, HAIRPIN_MODE=false, a line per file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weave-setup-cni-'));
  try {
    mkdirSync(join(dir, 'net.d'));
    let out = '';
    let err = '';
    const io = {
      stdout: { write: (s: string) => { out += s; return true; } } as unknown as NodeJS.WritableStream,
      stderr: { write: (s: string) => { err += s; return true; } } as unknown as NodeJS.WritableStream,
      env: { WEAVE_CNI_PLUGIN_DIR: join(dir, 'bin'), WEAVE_CNI_CONF_DIR: join(dir, 'net.d'), HAIRPIN_MODE: 'false' },
    };
    assert.equal(await runCli(['setup-cni'], io), 0, err);
    assert.match(out, new RegExp(`^installed ${join(dir, 'net.d', CONFLIST_NAME)}$`, 'm'));
    assert.match(out, /^installed .*\/bin\/weave-net$/m);
    const conf = JSON.parse(readFileSync(join(dir, 'net.d', CONFLIST_NAME), 'utf8')) as { plugins: { hairpinMode?: boolean }[] };
    assert.equal(conf.plugins[0]?.hairpinMode, false);
    assert.equal(await runCli(['setup-cni', '--bogus'], io), 1);
    assert.match(err, /unknown argument --bogus/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
