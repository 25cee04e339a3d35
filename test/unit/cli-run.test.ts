// `weave` dispatch and exit codes without a router (user-surface spec §0.3, §1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../controlplane/cli/run.js';

function sink(): Writable & { text: string } {
  const w = new Writable({ write(chunk, _e, cb) { w.text += String(chunk); cb(); } }) as Writable & { text: string };
  w.text = '';
  return w;
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ rc: number; out: string; err: string }> {
  const stdout = sink();
  const stderr = sink();
  const rc = await runCli(argv, { stdout, stderr, env });
  return { rc, out: stdout.text, err: stderr.text };
}

test('help, no command, unknown and removed commands', async () => {
  const help = await run(['help']);
  assert.equal(help.rc, 0);
  assert.match(help.err, /^Usage:/);
  assert.equal((await run([])).rc, 1);
  const unknown = await run(['frobnicate']);
  assert.equal(unknown.rc, 1);
  assert.match(unknown.err, /^Unknown weave command 'frobnicate'\n/);
  const local = await run(['--local', 'no-such-command']);
  assert.equal(local.rc, 1);
  assert.match(local.err, /^Unknown weave command 'no-such-command'/, '--local <cmd> is <cmd>');
  assert.equal((await run(['--local', 'help'])).rc, 0);
  const removed = await run(['launch-router']);
  assert.equal(removed.rc, 1);
  assert.equal(removed.err, "The 'weave launch-router' command has been removed as of Weave Net version 2.0\nPlease see release notes for further information\n");
});

test('usage errors exit 1 with the usage block', async () => {
  for (const argv of [['connect'], ['forget'], ['stop', 'now'], ['report', '-f'], ['report', '-x', 'y'], ['version', 'x'], ['reset', '--nope'], ['launch', '--password']]) {
    const r = await run(argv, { WEAVE_STATE_DIR: '/nonexistent-weave-test' });
    assert.equal(r.rc, 1, argv.join(' '));
    assert.match(r.err, /Usage:/, argv.join(' '));
  }
});

test('a router that is not running: status fails with a clear message, stop says so and succeeds', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weave-cli-'));
  try {
    const env = { WEAVE_HTTP_ADDR: `127.0.0.1:${await closedPort()}`, WEAVE_STATE_DIR: dir };
    const st = await run(['status'], env);
    assert.equal(st.rc, 1);
    assert.match(st.err, /^weave router is not running: cannot reach the router API at 127\.0\.0\.1:\d+: ECONNREFUSED\. Have you launched it\?/);
    const stop = await run(['stop'], env);
    assert.equal(stop.rc, 0);
    assert.equal(stop.err, 'Weave is not running (ignore on Kubernetes).\n');
    const version = await run(['version'], env);
    assert.equal(version.rc, 0);
    assert.equal(version.out, 'weave script 2.8.1\nweave 2.8.1\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('WEAVE_DEBUG traces the command and each router call on stderr, password redacted; off without it', async () => {
  const port = await closedPort();
  const env = { WEAVE_HTTP_ADDR: `127.0.0.1:${port}`, WEAVE_STATE_DIR: '/nonexistent-weave-test', WEAVE_DEBUG: '1' };
  const st = await run(['connect', '10.9.9.9'], env);
  assert.equal(st.rc, 1);
  assert.match(st.err, new RegExp(`^\\+ weave connect 10\\.9\\.9\\.9\\n\\+ POST 127\\.0\\.0\\.1:${port}/connect peer=10\\.9\\.9\\.9\\n`));
  const pw = await run(['launch', '--password'], env);
  assert.match(pw.err, /^\+ weave launch --password\n/);
  const pw2 = await run(['launch', '--password', 'hunter2', '--port'], env);
  assert.ok(!pw2.err.includes('hunter2') && pw2.err.startsWith('+ weave launch --password <redacted> --port\n'), pw2.err);
  const quiet = await run(['connect', '10.9.9.9'], { ...env, WEAVE_DEBUG: '' });
  assert.ok(!quiet.err.includes('+ '), quiet.err);
});
