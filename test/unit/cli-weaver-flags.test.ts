// Router flag parsing and validation (user-surface spec §4.1-4.2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlagError, parseWeaverFlags } from '../../weaver/flags.js';
import { formatPeerName } from '../../controlplane/mesh/wire/peer-name.js';
import { parsePeerName } from '../../weaver/peer-name.js';

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

test("Weave flags this router does not implement are refused with why and what to use instead, never ignored", () => {
  const refused: [string[], RegExp][] = [
    [['--no-bridged-fastdp'], /^--no-bridged-fastdp: .*not supported.*unset WEAVE_NO_BRIDGED_FASTDP/],
    [['--no-masq-local'], /^--no-masq-local: .*not supported.*NO_MASQ_LOCAL=0/],
    [['--awsvpc'], /^--awsvpc: AWS VPC .*not supported.*unset AWSVPC/],
    [['--token', 's3cret'], /^--token=<redacted>: Weave Cloud peer discovery .*weave connect/],
    [['--peer-discovery-url=https://cloud.weave.works/api/net'], /^--peer-discovery-url=https:\/\/cloud.weave.works\/api\/net: Weave Cloud/],
    [['--advertise-address', '10.0.0.1'], /^--advertise-address=10.0.0.1: Weave Cloud/],
    [['--pkt-debug'], /^--pkt-debug: per-packet logging is not supported: use --log-level=debug/],
    [['--profile', '/tmp/cpu.prof'], /^--profile=\/tmp\/cpu.prof: .*--cpu-prof/],
    [['--bufsz', '8'], /^--bufsz=8: .*pcap.*drop the flag/],
    [['--datapath', 'dp2'], /^--datapath=dp2: .*always named "datapath".*--no-fastdp/],
    [['--datapath='], /^--datapath=: /],
  ];
  for (const [argv, re] of refused) {
    assert.throws(() => parseWeaverFlags(argv, {}), (e: unknown) => e instanceof FlagError && re.test(e.message), argv.join(' '));
  }
  // The no-op spellings change nothing and are accepted (weave launch always passes --datapath datapath).
  for (const argv of [['--datapath', 'datapath'], ['--no-bridged-fastdp=false'], ['--awsvpc=false'], ['--pkt-debug=false'], ['--token='], ['--no-masq-local=false']]) {
    parseWeaverFlags(argv, {});
  }
});

test('--db-prefix: the state directory is the prefix\'s directory; --state-dir naming another is an error', () => {
  assert.equal(parseWeaverFlags(['--db-prefix=/host/var/lib/weave/weave'], { WEAVE_STATE_DIR: '/tmp/x' }).stateDir, '/host/var/lib/weave');
  assert.equal(parseWeaverFlags(['--db-prefix', '/weavedb/'], {}).stateDir, '/weavedb');
  assert.equal(parseWeaverFlags(['--state-dir', '/var/lib/weave/', '--db-prefix=/var/lib/weave/weave'], {}).stateDir, '/var/lib/weave/');
  assert.throws(() => parseWeaverFlags(['--state-dir', '/tmp/s', '--db-prefix=/weavedb/weave-net'], {}), /--db-prefix=\/weavedb\/weave-net keeps state in \/weavedb but --state-dir says \/tmp\/s/);
  assert.throws(() => parseWeaverFlags(['--db-prefix=weave'], {}), /--db-prefix: expected an absolute path/);
});

test('IPTABLES_BACKEND: nft, legacy, or unset for every iptables in use; anything else is an error', async () => {
  const { iptablesBackendFromEnv } = await import('../../dataplane/host/iptables-forward.js');
  assert.equal(iptablesBackendFromEnv({}), undefined);
  assert.equal(iptablesBackendFromEnv({ IPTABLES_BACKEND: '' }), undefined);
  assert.equal(iptablesBackendFromEnv({ IPTABLES_BACKEND: 'nft' }), 'nft');
  assert.equal(iptablesBackendFromEnv({ IPTABLES_BACKEND: 'legacy' }), 'legacy');
  assert.throws(() => iptablesBackendFromEnv({ IPTABLES_BACKEND: 'NFT' }), /IPTABLES_BACKEND=NFT is not an iptables backend/);
});

test("weave bridge-type's classification follows Weave's existing-state detection", async () => {
  const { classifyBridge } = await import('../../dataplane/host/bridge.js');
  assert.equal(classifyBridge('bridge', undefined), 'bridge');
  assert.equal(classifyBridge('bridge', 'openvswitch'), 'bridged_fastdp');
  assert.equal(classifyBridge('openvswitch', undefined), 'fastdp');
  assert.equal(classifyBridge(undefined, 'openvswitch'), undefined);
  assert.equal(classifyBridge('veth', undefined), undefined);
});

test('DNS flags parse once into the typed config; --no-dns leaves none; a bad duration names the flag', () => {
  assert.deepEqual(parseWeaverFlags(['--dns-listen-address', '172.17.0.1:53', '--dns-domain=weave.test.', '--dns-ttl', '30', '--dns-fallback-timeout', '500ms'], {}).dns, {
    listenAddress: '172.17.0.1:53', domain: 'weave.test.', ttl: 30, fallbackTimeoutMs: 500, resolvConf: undefined,
  });
  assert.equal(parseWeaverFlags(['--no-dns'], {}).dns, undefined);
  assert.deepEqual(parseWeaverFlags([], {}).dns, { listenAddress: undefined, domain: undefined, ttl: undefined, fallbackTimeoutMs: undefined, resolvConf: undefined });
  assert.throws(() => parseWeaverFlags(['--dns-fallback-timeout', '5 seconds'], {}), (e: unknown) => e instanceof FlagError && /--dns-fallback-timeout/.test(e.message));
});
