// Router flag parsing and validation (user-surface spec §4.1-4.2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlagError, parseWeaverFlags } from '../../weaver/flags.js';
import { formatPeerName, parsePeerName } from '../../weaver/peer-name.js';

test('defaults and values in both spellings; last duplicate wins; peers are positional', () => {
  const c = parseWeaverFlags(['--port=7000', '--nickname', 'a', '--nickname=b', '--no-discovery', '--conn-limit', '5', '--trusted-subnets', '10.0.0.0/8,192.168.1.0/24', '10.0.0.1', 'host2:6790'], {});
  assert.equal(c.port, 7000);
  assert.equal(c.nickname, 'b');
  assert.equal(c.discovery, false);
  assert.equal(c.connLimit, 5);
  assert.deepEqual(c.trustedSubnets, ['10.0.0.0/8', '192.168.1.0/24']);
  assert.deepEqual(c.peers, ['10.0.0.1', 'host2:6790']);
  const d = parseWeaverFlags([], { WEAVE_PASSWORD: 'pw', WEAVE_STATE_DIR: '/tmp/s' });
  assert.equal(d.port, 6783);
  assert.equal(d.connLimit, 200);
  assert.equal(d.password, 'pw');
  assert.equal(d.stateDir, '/tmp/s');
  assert.equal(d.httpAddr, '');
  assert.equal(parseWeaverFlags(['--no-fastdp=false'], {}).noFastdp, false);
});

test('bad input is rejected with a message naming the flag', () => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /^flag provided but not defined: --bogus$/],
    [['-port', '1'], /flag provided but not defined: -port/],
    [['--port', '0'], /--port: expected an integer from 1 to 65535/],
    [['--port=abc'], /--port/],
    [['--port'], /flag needs an argument: --port/],
    [['--conn-limit', '-1'], /--conn-limit/],
    [['--mtu', '100'], /--mtu/],
    [['--trusted-subnets', '10.0.0.0/33'], /^Unable to parse trusted subnets: invalid CIDR address: 10\.0\.0\.0\/33$/],
    [['--name', 'zz:00:00:00:00:01'], /--name: invalid peer name "zz:00:00:00:00:01"/],
    [['--min-protocol-version', '3'], /^--min-protocol-version must be in range \[1,2\]$/],
    [['--log-level', 'loud'], /--log-level/],
    [['--no-fastdp=maybe'], /invalid boolean value "maybe" for --no-fastdp/],
    [['--http-addr', 'nowhere'], /--http-addr/],
    [['--resume', '10.0.0.1'], /^You must not specify an initial peer list in conjunction with --resume$/],
    [['x:y'], /^invalid peer name "x:y", should be host\[:port\]$/],
    [['--state-dir', 'relative'], /--state-dir: expected an absolute path/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseWeaverFlags(argv, {}), (err: unknown) => err instanceof FlagError && re.test(err.message), argv.join(' '));
  }
});

test('peer names: full form, :: abbreviations, formatting round trip', () => {
  assert.equal(parsePeerName('0a:00:00:00:00:01'), 0x0a0000000001n);
  assert.equal(parsePeerName('::1'), 1n);
  assert.equal(parsePeerName('a:b::f'), 0x0a0b0000000fn);
  assert.equal(parsePeerName('a:b:c:d::'), 0x0a0b0c0d0000n);
  assert.equal(formatPeerName(parsePeerName('AA:b:c:d:e:f')), 'aa:0b:0c:0d:0e:0f');
  for (const bad of ['', '::', '1:2:3:4:5:6:7', '1:2:3:4:5', 'a::b::c', '123:0:0:0:0:0', '00:00:00:00:00:00']) {
    assert.throws(() => parsePeerName(bad), /invalid peer name/, bad);
  }
});
