// `weave launch` argument rewriting (user-surface spec §1.1 step 6, §4.4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WEAVER_NODE_FLAGS, weaverEnvironment } from '../../controlplane/cli/daemon.js';
import { planLaunch } from '../../controlplane/cli/launch-plan.js';
import { UsageError } from '../../controlplane/cli/usage.js';

test('password leaves argv for the environment; port, state dir and WEAVE_* map to flags', () => {
  const plan = planLaunch(
    ['--password', 's3cret', '--port=7000', '--state-dir', '/tmp/x', '--no-restart', '--iprange', '10.0.0.0/16', '--nickname', 'mine', '10.1.1.1'],
    { WEAVE_MTU: '1400', WEAVE_NO_FASTDP: '1', WEAVE_HTTP_ADDR: '127.0.0.1:9999' },
    'hostA',
  );
  assert.equal(plan.stateDir, '/tmp/x');
  assert.equal(plan.httpAddr, '127.0.0.1:9999');
  assert.deepEqual(plan.routerEnv, { WEAVE_PASSWORD: 's3cret' });
  assert.ok(!plan.routerArgs.some((a) => a.includes('s3cret')), 'the password never appears in argv');
  assert.deepEqual(plan.routerArgs, [
    '--port', '7000', '--nickname', 'hostA', '--docker-bridge', 'docker0', '--weave-bridge', 'weave', '--datapath', 'datapath', '--mtu', '1400', '--no-fastdp',
    '--http-addr', '127.0.0.1:9999', '--status-addr', '127.0.0.1:6782', '--state-dir', '/tmp/x', '--plugin', '--proxy',
    '--resolv-conf', '/etc/resolv.conf', '--ipalloc-range', '10.0.0.0/16', '--nickname', 'mine', '10.1.1.1',
  ]);
});

test('the Docker plugin is on by default; --no-plugin and --plugin=false given later turn it off', () => {
  const on = planLaunch([], {}, 'h').routerArgs;
  assert.ok(on.includes('--plugin'));
  const off = planLaunch(['--no-plugin', '10.1.1.1'], {}, 'h').routerArgs;
  assert.ok(off.indexOf('--plugin=false') > off.indexOf('--plugin'), 'the user\'s choice comes after the default');
  assert.deepEqual(off.slice(-2), ['--plugin=false', '10.1.1.1']);
  const explicit = planLaunch(['--plugin=false'], {}, 'h').routerArgs;
  assert.ok(explicit.indexOf('--plugin=false') > explicit.indexOf('--plugin'));
});

test("weaveDNS forwards to the host's resolv.conf unless --resolv-conf names another", () => {
  const resolvConfOf = (args: string[]): string[] =>
    planLaunch(args, {}, 'h').routerArgs.flatMap((a, i, all) => (a === '--resolv-conf' ? [all[i + 1]] : []));
  assert.deepEqual(resolvConfOf([]), ['/etc/resolv.conf']);
  assert.deepEqual(resolvConfOf(['--resolv-conf', '/srv/r.conf']), ['/srv/r.conf']);
  const joined = planLaunch(['--resolv-conf=/srv/r.conf'], {}, 'h').routerArgs;
  assert.ok(joined.includes('--resolv-conf=/srv/r.conf') && !joined.includes('/etc/resolv.conf'), joined.join(' '));
});

test('the Docker API proxy is on by default; --no-proxy and --proxy=false given later turn it off', () => {
  assert.ok(planLaunch([], {}, 'h').routerArgs.includes('--proxy'));
  const off = planLaunch(['--no-proxy', '10.1.1.1'], {}, 'h').routerArgs;
  assert.ok(off.indexOf('--proxy=false') > off.indexOf('--proxy'), 'the user\'s choice comes after the default');
  assert.deepEqual(off.slice(-2), ['--proxy=false', '10.1.1.1']);
});

test('defaults: WEAVE_STATE_DIR, WEAVE_PORT, WEAVE_PASSWORD from the environment', () => {
  const plan = planLaunch(['-password=pw'], { WEAVE_STATE_DIR: '/srv/w', WEAVE_PORT: '6999' }, 'h');
  assert.equal(plan.stateDir, '/srv/w');
  assert.deepEqual(plan.routerArgs.slice(0, 2), ['--port', '6999']);
  assert.deepEqual(plan.routerEnv, { WEAVE_PASSWORD: 'pw' });
  assert.deepEqual(planLaunch([], { WEAVE_PASSWORD: 'env' }, 'h').routerEnv, { WEAVE_PASSWORD: 'env' });
  assert.equal(planLaunch([], {}, 'h').stateDir, '/var/lib/weave');
});

test('a missing value after --password/--port/--state-dir is a usage error', () => {
  for (const flag of ['--password', '--port', '--state-dir', '--ipalloc-range']) {
    assert.throws(() => planLaunch([flag], {}, 'h'), UsageError, flag);
  }
});

test('WEAVE_NO_BRIDGED_FASTDP and AWSVPC reach the router as flags it refuses; the plan from launch otherwise parses', async () => {
  const { parseWeaverFlags, FlagError } = await import('../../weaver/flags.js');
  const plain = planLaunch(['--db-prefix=/var/lib/weave/weave'], {}, 'h');
  assert.equal(parseWeaverFlags(plain.routerArgs, {}).stateDir, '/var/lib/weave', '--db-prefix in the default state dir agrees with launch');
  for (const [env, re] of [
    [{ WEAVE_NO_BRIDGED_FASTDP: '1' }, /^--no-bridged-fastdp: /],
    [{ AWSVPC: '1' }, /^--awsvpc: /],
  ] as const) {
    const plan = planLaunch([], env, 'h');
    assert.throws(() => parseWeaverFlags(plan.routerArgs, {}), (e: unknown) => e instanceof FlagError && re.test(e.message));
  }
});

test('the router starts with two malloc arenas and without the extra CA bundle, unless it talks TLS to Docker', () => {
  const caller = { NODE_EXTRA_CA_CERTS: '/etc/ssl/certs/ca-certificates.crt', PATH: '/usr/bin' };
  const plain = planLaunch(['10.1.1.1'], {}, 'hostA');
  const env = weaverEnvironment({ ...caller, ...plain.routerEnv }, plain.routerArgs);
  assert.equal(env.MALLOC_ARENA_MAX, '2');
  assert.equal(env.PATH, '/usr/bin');
  assert.ok('NODE_EXTRA_CA_CERTS' in env && env.NODE_EXTRA_CA_CERTS === undefined, 'set to undefined, so a merge over another environment unsets it too');
  // What spawn hands the child: undefined values are left out.
  assert.ok(!Object.entries(env).some(([k, v]) => k === 'NODE_EXTRA_CA_CERTS' && v !== undefined));
  assert.equal(weaverEnvironment({ MALLOC_ARENA_MAX: '8' }, []).MALLOC_ARENA_MAX, '8', "the caller's setting wins");

  for (const tlsFlag of ['--tls', '--tlsverify']) {
    const tls = planLaunch([tlsFlag, '10.1.1.1'], {}, 'hostA');
    assert.ok(tls.routerArgs.includes(tlsFlag));
    assert.equal(weaverEnvironment({ ...caller }, tls.routerArgs).NODE_EXTRA_CA_CERTS, caller.NODE_EXTRA_CA_CERTS, `kept with ${tlsFlag}`);
  }
});

test('every way of starting the router passes the same Node flags as weave launch', () => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const flags = WEAVER_NODE_FLAGS.join(' ');
  const shebang = readFileSync(`${root}bin/weaver`, 'utf8').split('\n')[0]!;
  assert.equal(shebang, `#!/usr/bin/env -S node ${flags}`, 'bin/weaver');
  const plugin = readFileSync(`${root}scripts/build-net-plugin.sh`, 'utf8');
  assert.ok(plugin.includes(`exec /bin/node ${flags} /weave/dist/weaver/start.cjs`), 'the plugin image entry point (scripts/build-net-plugin.sh)');
});
