// Router flag parsing and validation (user-surface spec §4.1-4.2).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FlagError, parseWeaverFlags } from '../../weaver/flags.js';
import { formatPeerName } from '../../controlplane/mesh/wire/peer-name.js';
import { parsePeerName } from '../../weaver/peer-name.js';
import { formatCIDR } from '../../controlplane/ipam/addr.js';

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

test('IPAM flags parse once into the typed config; none leaves IPAM off; bad ones are flag errors with Weave\'s messages', () => {
  const c = parseWeaverFlags(['--ipalloc-range', '10.32.0.0/12', '--ipalloc-default-subnet=10.32.1.0/24', '--ipalloc-init', 'consensus=2'], {});
  assert.ok(c.ipam);
  assert.equal(formatCIDR(c.ipam.universe), '10.32.0.0/12');
  assert.equal(formatCIDR(c.ipam.defaultSubnet), '10.32.1.0/24');
  assert.deepEqual(c.ipam.init, { mode: 'consensus', count: 2 });
  assert.equal(formatCIDR(parseWeaverFlags(['--ipalloc-range=10.40.0.0/16'], {}).ipam!.defaultSubnet), '10.40.0.0/16', 'the default subnet defaults to the range');
  assert.equal(parseWeaverFlags([], {}).ipam, undefined);
  const cases: [string[], RegExp][] = [
    [['--ipalloc-default-subnet', '10.0.0.0/8'], /^--ipalloc-default-subnet specified without --ipalloc-range\.$/],
    [['--ipalloc-init', 'observer'], /^--ipalloc-init specified without --ipalloc-range\.$/],
    [['--ipalloc-range', '10.32.0.0/12', '--ipalloc-default-subnet', '192.168.0.0/16'], /^IP address allocation default subnet 192\.168\.0\.0\/16 does not overlap with allocation range 10\.32\.0\.0\/12$/],
    [['--ipalloc-range', '10.32.0.0/12', '--ipalloc-init', 'bogus'], /^Unable to parse --ipalloc-init: unknown mode: bogus$/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseWeaverFlags(argv, {}), (err: unknown) => err instanceof FlagError && re.test(err.message), argv.join(' '));
  }
});

test('host flags: --weave-bridge, --docker-bridge, --proc-path, --host-root, --expect-npc; bad interface names name the flag', () => {
  const d = parseWeaverFlags([], {});
  assert.equal(d.bridge, 'weave');
  assert.equal(d.dockerBridge, undefined);
  assert.equal(d.procPath, undefined);
  assert.equal(d.hostRoot, undefined);
  assert.equal(d.expectNpc, false);
  const c = parseWeaverFlags(['--weave-bridge', 'wv0', '--docker-bridge=docker0', '--proc-path', '/host/proc', '--host-root=/host', '--expect-npc'], {});
  assert.equal(c.bridge, 'wv0');
  assert.equal(c.dockerBridge, 'docker0');
  assert.equal(c.procPath, '/host/proc');
  assert.equal(c.hostRoot, '/host');
  assert.equal(c.expectNpc, true);
  const empty = parseWeaverFlags(['--weave-bridge=', '--docker-bridge=', '--proc-path=', '--host-root='], {});
  assert.deepEqual([empty.bridge, empty.dockerBridge, empty.procPath, empty.hostRoot], ['weave', undefined, undefined, undefined], 'empty means not given');
  for (const flag of ['weave-bridge', 'docker-bridge']) {
    assert.throws(() => parseWeaverFlags([`--${flag}`, 'a-name-far-too-long'], {}),
      (err: unknown) => err instanceof FlagError && err.message === `invalid value "a-name-far-too-long" for --${flag}: 1-15 characters, no spaces, '/' or ':'`);
    assert.throws(() => parseWeaverFlags([`--${flag}=a:b`], {}), FlagError);
  }
});

test('Docker flags: --docker-api as given (empty turns Docker off), the plugin sockets and multicast', () => {
  const d = parseWeaverFlags([], {});
  assert.equal(d.dockerApi, undefined);
  assert.deepEqual(d.plugin, { socket: undefined, meshSocket: undefined, multicast: false });
  assert.equal(parseWeaverFlags(['--docker-api='], {}).dockerApi, '');
  const c = parseWeaverFlags(['--docker-api', 'unix:///tmp/d.sock', '--plugin-socket=/run/p.sock', '--plugin-mesh-socket', '/run/m.sock', '--plugin-v2-multicast'], {});
  assert.equal(c.dockerApi, 'unix:///tmp/d.sock');
  assert.deepEqual(c.plugin, { socket: '/run/p.sock', meshSocket: '/run/m.sock', multicast: true });
});

test('proxy flags: -H repeats in order; TLS paths as given; hostname rewriting defaults to identity', () => {
  const d = parseWeaverFlags([], {}).proxyFlags;
  assert.deepEqual(d, {
    listen: [], tls: false, tlsverify: false, tlscacert: undefined, tlscert: undefined, tlskey: undefined,
    rewrite: {
      noDefaultIpalloc: false, noRewriteHosts: false, withoutDns: false, noMulticastRoute: false, rewriteInspect: false,
      hostnameFromLabel: '', hostnameMatch: '(.*)', hostnameReplacement: '$1',
    },
  });
  const c = parseWeaverFlags([
    '-H', 'unix:///run/weave.sock', '-H=tcp://0.0.0.0:12375', '--tlsverify', '--tls', '--tlscacert', '/c/ca.pem', '--tlscert=/c/cert.pem', '--tlskey', '/c/key.pem',
    '--no-default-ipalloc', '--no-rewrite-hosts', '--rewrite-inspect', '--hostname-from-label', 'name', '--hostname-match', '^aws-(.*)', '--hostname-replacement=$1.local',
  ], {}).proxyFlags;
  assert.deepEqual(c, {
    listen: ['unix:///run/weave.sock', 'tcp://0.0.0.0:12375'], tls: true, tlsverify: true, tlscacert: '/c/ca.pem', tlscert: '/c/cert.pem', tlskey: '/c/key.pem',
    rewrite: {
      noDefaultIpalloc: true, noRewriteHosts: true, withoutDns: false, noMulticastRoute: false, rewriteInspect: true,
      hostnameFromLabel: 'name', hostnameMatch: '^aws-(.*)', hostnameReplacement: '$1.local',
    },
  });
});

test('the startup log\'s command line: every flag as given, sorted, secrets redacted', () => {
  const c = parseWeaverFlags(['--port=7000', '--password', 's3cret', '--token=', '-H', 'a', '-H', 'b', '--no-dns'], {});
  assert.equal(c.commandLine, 'map[H:[a b] no-dns:true password:<redacted> port:7000 token:<redacted>]');
  // Byte order, as Go prints a map: upper case before lower case (a locale collation puts `dns-domain` first).
  assert.equal(parseWeaverFlags(['--dns-domain=weave.local.', '-H', 'a'], {}).commandLine, 'map[H:[a] dns-domain:weave.local.]');
});
