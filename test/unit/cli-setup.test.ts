// `weave setup`: the CNI plugin as `weave setup-cni`, and on a systemd host a
// weave.service unit that relaunches a router that died, checked with
// systemd's own `systemd-analyze verify` where it is installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runCli } from '../../controlplane/cli/run.js';
import { systemdRunning } from '../../controlplane/cli/systemd-unit.js';

function sink(): Writable & { text: string } {
  const w = new Writable({ write(chunk, _e, cb) { w.text += String(chunk); cb(); } }) as Writable & { text: string };
  w.text = '';
  return w;
}

async function setup(env: NodeJS.ProcessEnv, args: string[] = []): Promise<{ rc: number; out: string; err: string }> {
  const stdout = sink();
  const stderr = sink();
  const rc = await runCli(['setup', ...args], { stdout, stderr, env });
  return { rc, out: stdout.text, err: stderr.text };
}

function withDir(run: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weave-setup-'));
    try {
      await run(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

/** `systemd-analyze verify` on one unit file: its complaints, empty when systemd would load the unit as it is. */
function verify(unitPath: string): string {
  const r = spawnSync('systemd-analyze', ['verify', unitPath], { encoding: 'utf8' });
  return `${r.status === 0 ? '' : `exit ${r.status}\n`}${r.stderr}`.trim();
}

function envFor(dir: string): NodeJS.ProcessEnv {
  // The conflist is written only where the CNI configuration directory exists (spec §7.4).
  mkdirSync(join(dir, 'cni-conf'));
  return {
    WEAVE_CNI_PLUGIN_DIR: join(dir, 'cni-bin'),
    WEAVE_CNI_CONF_DIR: join(dir, 'cni-conf'),
    WEAVE_SYSTEMD_UNIT_DIR: join(dir, 'units'),
    WEAVE_SYSTEMD_ENV_FILE: join(dir, 'default', 'weave'),
    WEAVE_STATE_DIR: join(dir, 'state'),
  };
}

test('weave setup installs the CNI plugin and a weave.service that relaunches the router, with its settings file', withDir(async (dir) => {
  const env = envFor(dir);
  const r = await setup(env);
  assert.equal(r.rc, 0, r.err);
  const unitPath = join(dir, 'units', 'weave.service');
  assert.match(r.out, new RegExp(`^installed ${unitPath}$`, 'm'));
  assert.ok(existsSync(join(dir, 'cni-conf', '10-weave.conflist')), 'the CNI conflist, as weave setup-cni');
  const unit = readFileSync(unitPath, 'utf8');
  const lines = unit.split('\n');
  for (const want of [
    'Type=forking',
    `PIDFile=${join(dir, 'state', 'weaver.pid')}`,
    `Environment=WEAVE_STATE_DIR=${join(dir, 'state')}`,
    `EnvironmentFile=-${join(dir, 'default', 'weave')}`,
    'Restart=on-failure',
    'WantedBy=multi-user.target',
  ]) {
    assert.ok(lines.includes(want), `${want} in\n${unit}`);
  }
  const exec = lines.find((l) => l.startsWith('ExecStart='));
  assert.match(exec ?? '', /^ExecStart=\/\S+\/node \/\S+\/bin\/weave launch \$WEAVE_LAUNCH_ARGS \$WEAVE_PEERS$/);
  assert.match(lines.find((l) => l.startsWith('ExecStop=')) ?? '', /^ExecStop=\/\S+ \/\S+\/bin\/weave stop$/);
  const cli = /^ExecStart=\S+ (\S+)/.exec(exec ?? '')?.[1] ?? '';
  assert.ok(existsSync(cli), `the unit runs this installation's CLI (${cli})`);
  assert.match(readFileSync(env.WEAVE_SYSTEMD_ENV_FILE as string, 'utf8'), /^WEAVE_PEERS=""$/m);

  // A user's settings survive a second setup; the unit is rewritten.
  writeFileSync(env.WEAVE_SYSTEMD_ENV_FILE as string, 'WEAVE_PEERS="10.0.0.2"\n');
  const again = await setup(env);
  assert.equal(again.rc, 0, again.err);
  assert.match(again.out, /kept existing .*default\/weave/);
  assert.equal(readFileSync(env.WEAVE_SYSTEMD_ENV_FILE as string, 'utf8'), 'WEAVE_PEERS="10.0.0.2"\n');
  assert.equal(readFileSync(unitPath, 'utf8'), unit);
}));

test('systemd-analyze verify accepts the unit and rejects a broken one', { skip: !hasSystemdAnalyze && 'systemd-analyze is not installed' }, withDir(async (dir) => {
  assert.equal((await setup(envFor(dir))).rc, 0);
  const unitPath = join(dir, 'units', 'weave.service');
  assert.equal(verify(unitPath), '', 'systemd loads the unit without a complaint');
  // The check can fail: a unit whose command does not exist is reported.
  const broken = join(dir, 'units', 'weave-broken.service');
  writeFileSync(broken, readFileSync(unitPath, 'utf8').replace(/^ExecStart=\S+/m, 'ExecStart=/nonexistent/node').replace('Type=forking', 'Type=forkin'));
  const complaints = verify(broken);
  assert.match(complaints, /forkin/);
  assert.match(complaints, /\/nonexistent\/node/);
}));

test('weave setup without systemd installs no unit and says so; unknown arguments are refused', { skip: systemdRunning() && 'systemd runs this machine' }, withDir(async (dir) => {
  const env: NodeJS.ProcessEnv = { ...envFor(dir), WEAVE_SYSTEMD_UNIT_DIR: '' };
  const r = await setup(env);
  assert.equal(r.rc, 0, r.err);
  assert.match(r.out, /systemd is not running on this host: no weave\.service installed/);
  assert.ok(!existsSync(join(dir, 'units')));
  assert.ok(!existsSync(env.WEAVE_SYSTEMD_ENV_FILE as string));
  const bad = await setup(env, ['--bogus']);
  assert.equal(bad.rc, 1);
  assert.match(bad.err, /unknown argument --bogus/);
}));
