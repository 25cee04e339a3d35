// The router's command line (user-surface spec §4): `--flag value`,
// `--flag=value`, booleans as `--flag` or `--flag=false`; other arguments are
// the initial peers. Every value is validated here so a bad flag stops the
// router before it touches anything, with a message naming the flag.
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { parsePeerAddress } from '../controlplane/api/peer-address.js';
import { splitHostPort } from '../controlplane/host-port.js';
import { parsePeerName } from './peer-name.js';
import { refusedFlag } from './refused-flags.js';
import type { PeerName } from '../controlplane/mesh/types.js';
import { parseIpamOptions, type IpamOptions } from '../controlplane/ipam/config.js';
import { DEFAULT_BRIDGE, validInterfaceName } from '../dataplane/host/names.js';
import type { DnsOptions } from './dns-wiring.js';

export class FlagError extends Error {}

type Kind = 'bool' | 'string' | 'int' | 'list';

/**
 * Every router flag of spec §4.1-4.3 (so pass-through flags are accepted) plus
 * --state-dir and --fastdp (require a kernel fast datapath instead of quietly
 * running sleeve only).
 */
const FLAGS: Record<string, Kind> = {
  version: 'bool', 'print-peer-name': 'bool', host: 'string', port: 'int', 'min-protocol-version': 'int',
  resume: 'bool', name: 'string', nickname: 'string', password: 'string', 'trusted-subnets': 'string',
  'conn-limit': 'int', 'no-discovery': 'bool', 'log-level': 'string', 'pkt-debug': 'bool', profile: 'string',
  bufsz: 'int', token: 'string', 'peer-discovery-url': 'string', 'advertise-address': 'string',
  'db-prefix': 'string', 'host-root': 'string', 'proc-path': 'string',
  'weave-bridge': 'string', 'docker-bridge': 'string', datapath: 'string', mtu: 'int', 'no-fastdp': 'bool', fastdp: 'bool',
  'no-bridged-fastdp': 'bool', 'expect-npc': 'bool', 'no-masq-local': 'bool', awsvpc: 'bool',
  'http-addr': 'string', 'status-addr': 'string', 'metrics-addr': 'string', 'docker-api': 'string',
  'ipalloc-range': 'string', 'ipalloc-default-subnet': 'string', 'ipalloc-init': 'string', 'no-dns': 'bool',
  'dns-domain': 'string', 'dns-listen-address': 'string', 'dns-ttl': 'int', 'dns-fallback-timeout': 'string',
  'resolv-conf': 'string', plugin: 'bool', 'plugin-v2': 'bool', 'plugin-v2-multicast': 'bool',
  'plugin-socket': 'string', 'plugin-mesh-socket': 'string', proxy: 'bool', H: 'list',
  'hostname-from-label': 'string', 'hostname-match': 'string', 'hostname-replacement': 'string',
  'rewrite-inspect': 'bool', 'no-default-ipalloc': 'bool', 'no-rewrite-hosts': 'bool', 'without-dns': 'bool',
  'no-multicast-route': 'bool', tls: 'bool', tlsverify: 'bool', tlscacert: 'string', tlscert: 'string',
  tlskey: 'string', 'state-dir': 'string',
};

export const LOG_LEVELS = ['debug', 'info', 'warning', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface WeaverConfig {
  printVersion: boolean;
  printPeerName: boolean;
  /** Bind address for the TCP listener ('' = all). */
  host: string;
  port: number;
  minProtocolVersion: number;
  resume: boolean;
  name?: PeerName;
  nickname: string;
  /** From --password, else env WEAVE_PASSWORD; '' = no encryption. */
  password: string;
  trustedSubnets: string[];
  connLimit: number;
  discovery: boolean;
  logLevel: LogLevel;
  mtu: number;
  noFastdp: boolean;
  /** --fastdp: refuse to start without a kernel fast datapath (OVS or eBPF). */
  requireFastdp: boolean;
  httpAddr: string;
  statusAddr: string;
  metricsAddr: string;
  stateDir: string;
  peers: string[];
  /** --plugin-v2 runs the managed plugin, --plugin the host one (spec §7.2). */
  dockerPlugin: 'off' | 'host' | 'managed';
  /** --proxy: the Docker API proxy (spec §7.1). */
  proxy: boolean;
  /** The DNS flags; undefined with --no-dns (user surface §4.3). */
  dns?: DnsOptions;
  /** The IPAM flags; undefined without --ipalloc-range (IPAM off, user surface §4.3). */
  ipam?: IpamOptions;
  /** --weave-bridge: the bridge containers attach to. */
  bridge: string;
  /** --docker-bridge (Weave's launch passes docker0); undefined when not given. */
  dockerBridge?: string;
  /** --proc-path: where the host's /proc is; undefined: this process's /proc. */
  procPath?: string;
  /** --host-root: where the host's root is (its /sys is used when it holds a sysfs). */
  hostRoot?: string;
  /** --expect-npc: leave the containers' traffic to a network policy controller. */
  expectNpc: boolean;
  /** --docker-api as given: undefined means DOCKER_HOST or the default, '' turns Docker off. */
  dockerApi?: string;
  /** --plugin-socket, --plugin-mesh-socket (undefined: the default sockets) and --plugin-v2-multicast. */
  plugin: { socket?: string; meshSocket?: string; multicast: boolean };
  /** The Docker API proxy's flags (spec §7.1); used only with --proxy. */
  proxyFlags: ProxyFlags;
  /** The `Command line options: map[...]` startup log text: every flag as given, secrets redacted (spec §4.5). */
  commandLine: string;
}

/** The proxy's flags as given; proxy-wiring reads the certificates and Docker's address from them. */
export interface ProxyFlags {
  /** -H addresses in the order given; empty: the default address. */
  listen: string[];
  tls: boolean;
  tlsverify: boolean;
  /** Certificate paths; undefined: the file in DOCKER_CERT_PATH or ~/.docker. */
  tlscacert?: string;
  tlscert?: string;
  tlskey?: string;
  rewrite: ProxyRewriteFlags;
}

/** How the proxy changes the containers it creates (spec §7.1). */
export interface ProxyRewriteFlags {
  noDefaultIpalloc: boolean;
  noRewriteHosts: boolean;
  withoutDns: boolean;
  noMulticastRoute: boolean;
  rewriteInspect: boolean;
  hostnameFromLabel: string;
  hostnameMatch: string;
  hostnameReplacement: string;
}

export { DEFAULT_STATE_DIR } from '../controlplane/cli/state-paths.js';
import { DEFAULT_STATE_DIR } from '../controlplane/cli/state-paths.js';
import { DEFAULT_MESH_PORT } from '../controlplane/well-known.js';
import { compareOrdered } from '../controlplane/order.js';

function parseBool(flag: string, v: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  throw new FlagError(`invalid boolean value "${v}" for --${flag}: use --${flag} or --${flag}=false`);
}

/** Go duration text as `--dns-fallback-timeout` takes it (`5s`, `500ms`, `1m`), in milliseconds. */
function parseDurationMs(flag: string, text: string): number {
  const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  if (!m) throw new FlagError(`invalid value "${text}" for --${flag}: expected a duration such as 5s or 500ms`);
  return Number(m[1]) * units[m[2]];
}

function parseInt10(flag: string, v: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new FlagError(`invalid value "${v}" for --${flag}: expected an integer from ${min} to ${max}`);
  }
  return Number(v);
}

/** `a.b.c.d/n` or an IPv6 CIDR; returns it unchanged. */
export function validateCidr(text: string): string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const family = m ? isIP(m[1]) : 0;
  if (!m || family === 0 || Number(m[2]) > (family === 4 ? 32 : 128)) throw new Error(`invalid CIDR address: ${text}`);
  return text;
}

function validateListenAddr(flag: string, v: string): string {
  if (v === '' || v.startsWith('/')) return v;
  const hp = splitHostPort(v);
  if (hp?.port === undefined || (hp.host !== '' && isIP(hp.host) === 0 && hp.host !== 'localhost')) {
    throw new FlagError(`invalid value "${v}" for --${flag}: expected <ip>:<port> (e.g. 127.0.0.1:6784) or an absolute unix socket path`);
  }
  return v;
}

/** Split argv into flag values and positional peers; throws FlagError. */
function scan(argv: string[]): { raw: Map<string, string | boolean | string[]>; positional: string[] } {
  const raw = new Map<string, string | boolean | string[]>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const kind = FLAGS[name];
    // Long flags need two dashes; -H is the one single-letter flag (spec §4).
    const dashesOk = name.length === 1 ? arg.startsWith('-') : arg.startsWith('--');
    if (kind === undefined || !dashesOk) {
      throw new FlagError(`flag provided but not defined: ${arg.slice(0, arg.indexOf('=') < 0 ? undefined : arg.indexOf('='))}`);
    }
    let value: string | undefined = eq < 0 ? undefined : body.slice(eq + 1);
    if (kind === 'bool') {
      raw.set(name, value === undefined ? true : parseBool(name, value));
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: --${name}`);
      value = argv[++i];
    }
    if (kind === 'list') {
      const prev = raw.get(name);
      raw.set(name, [...(Array.isArray(prev) ? prev : []), value]);
    } else {
      raw.set(name, value);
    }
  }
  return { raw, positional };
}

/**
 * --state-dir, else the directory of Weave's --db-prefix (its `<prefix>data.db`
 * lived there; this router keeps its state as files in that directory), else
 * WEAVE_STATE_DIR or the default. Both flags naming different places is an error.
 */
function stateDirOf(raw: Map<string, string | boolean | string[]>, env: NodeJS.ProcessEnv): string {
  const flag = raw.get('state-dir');
  const prefix = raw.get('db-prefix');
  let fromPrefix: string | undefined;
  if (typeof prefix === 'string' && prefix !== '') {
    if (!prefix.startsWith('/')) throw new FlagError(`invalid value "${prefix}" for --db-prefix: expected an absolute path`);
    fromPrefix = prefix.endsWith('/') ? prefix.replace(/\/+$/, '') || '/' : dirname(prefix);
  }
  if (typeof flag === 'string' && fromPrefix !== undefined && resolve(flag) !== fromPrefix) {
    throw new FlagError(`--db-prefix=${String(prefix)} keeps state in ${fromPrefix} but --state-dir says ${flag}: give one of them`);
  }
  const stateDir = typeof flag === 'string' ? flag : fromPrefix ?? (env.WEAVE_STATE_DIR || DEFAULT_STATE_DIR);
  if (!stateDir.startsWith('/')) throw new FlagError(`invalid value "${stateDir}" for --state-dir: expected an absolute path`);
  return stateDir;
}

/** Parse the router's argv (without node and script) and the environment. */
export function parseWeaverFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): WeaverConfig {
  const { raw, positional } = scan(argv);
  const str = (k: string, d: string): string => {
    const v = raw.get(k);
    return typeof v === 'string' ? v : d;
  };
  const bool = (k: string): boolean => raw.get(k) === true;

  const port = parseInt10('port', str('port', String(DEFAULT_MESH_PORT)), 1, 65535);
  const minProtocolVersion = Number(str('min-protocol-version', '1'));
  if (!/^\d+$/.test(str('min-protocol-version', '1')) || minProtocolVersion < 1 || minProtocolVersion > 2) {
    throw new FlagError('--min-protocol-version must be in range [1,2]');
  }
  const logLevel = str('log-level', 'info');
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new FlagError(`invalid value "${logLevel}" for --log-level: use one of ${LOG_LEVELS.join(', ')}`);
  }
  let name: PeerName | undefined;
  if (raw.has('name')) {
    try {
      name = parsePeerName(str('name', ''));
    } catch (err) {
      throw new FlagError(`--name: ${(err as Error).message}`);
    }
  }
  const trustedText = str('trusted-subnets', '');
  let trustedSubnets: string[] = [];
  if (trustedText !== '') {
    try {
      trustedSubnets = trustedText.split(',').map((s) => validateCidr(s.trim()));
    } catch (err) {
      throw new FlagError(`Unable to parse trusted subnets: ${(err as Error).message}`);
    }
  }
  const mtu = parseInt10('mtu', str('mtu', '0'), 0, 65535);
  if (mtu !== 0 && mtu < 576) throw new FlagError(`invalid value "${mtu}" for --mtu: use 0 (automatic) or 576..65535`);
  const host = str('host', '');
  if (host !== '' && isIP(host) === 0) throw new FlagError(`invalid value "${host}" for --host: expected an IP address`);
  const stateDir = stateDirOf(raw, env);

  const refusal = refusedFlag(raw);
  if (refusal !== undefined) throw new FlagError(refusal);

  if (bool('fastdp') && bool('no-fastdp')) throw new FlagError('--fastdp and --no-fastdp contradict each other: give at most one');

  const resume = bool('resume');
  if (resume && positional.length > 0) {
    throw new FlagError('You must not specify an initial peer list in conjunction with --resume');
  }
  const peerErrors: string[] = [];
  for (const p of positional) {
    try {
      parsePeerAddress(p, port);
    } catch (err) {
      peerErrors.push((err as Error).message);
    }
  }
  if (peerErrors.length > 0) throw new FlagError(peerErrors.join('\n'));
  const optional = (k: string): string | undefined => {
    const v = raw.get(k);
    return typeof v === 'string' ? v : undefined;
  };
  const dnsTtl = optional('dns-ttl');
  const dnsFallback = optional('dns-fallback-timeout');
  let ipam: IpamOptions | undefined;
  try {
    ipam = parseIpamOptions(str('ipalloc-range', ''), str('ipalloc-default-subnet', ''), str('ipalloc-init', ''));
  } catch (err) {
    throw new FlagError((err as Error).message);
  }
  const interfaceName = (flag: string): string | undefined => {
    const v = optional(flag);
    if (v === undefined || v === '') return undefined;
    if (!validInterfaceName(v)) throw new FlagError(`invalid value "${v}" for --${flag}: 1-15 characters, no spaces, '/' or ':'`);
    return v;
  };
  const hs = raw.get('H');

  return {
    printVersion: bool('version'),
    printPeerName: bool('print-peer-name'),
    host,
    port,
    minProtocolVersion,
    resume,
    name,
    nickname: str('nickname', hostname()),
    password: str('password', '') || env.WEAVE_PASSWORD || '',
    trustedSubnets,
    connLimit: parseInt10('conn-limit', str('conn-limit', '200'), 0, 1_000_000),
    discovery: !bool('no-discovery'),
    logLevel: logLevel as LogLevel,
    mtu,
    noFastdp: bool('no-fastdp'),
    requireFastdp: bool('fastdp'),
    httpAddr: validateListenAddr('http-addr', str('http-addr', '')),
    statusAddr: validateListenAddr('status-addr', str('status-addr', '')),
    metricsAddr: validateListenAddr('metrics-addr', str('metrics-addr', '')),
    stateDir,
    peers: positional,
    dockerPlugin: bool('plugin-v2') ? 'managed' : bool('plugin') ? 'host' : 'off',
    proxy: bool('proxy'),
    dns: bool('no-dns') ? undefined : {
      listenAddress: optional('dns-listen-address'),
      domain: optional('dns-domain'),
      ttl: dnsTtl === undefined ? undefined : Number(dnsTtl),
      fallbackTimeoutMs: dnsFallback === undefined ? undefined : parseDurationMs('dns-fallback-timeout', dnsFallback),
      resolvConf: optional('resolv-conf'),
    },
    ipam,
    bridge: interfaceName('weave-bridge') ?? DEFAULT_BRIDGE,
    dockerBridge: interfaceName('docker-bridge'),
    procPath: optional('proc-path') || undefined,
    hostRoot: optional('host-root') || undefined,
    expectNpc: bool('expect-npc'),
    dockerApi: optional('docker-api'),
    plugin: { socket: optional('plugin-socket'), meshSocket: optional('plugin-mesh-socket'), multicast: bool('plugin-v2-multicast') },
    proxyFlags: {
      listen: Array.isArray(hs) ? hs : [],
      tls: bool('tls'),
      tlsverify: bool('tlsverify'),
      tlscacert: optional('tlscacert'),
      tlscert: optional('tlscert'),
      tlskey: optional('tlskey'),
      rewrite: {
        noDefaultIpalloc: bool('no-default-ipalloc'),
        noRewriteHosts: bool('no-rewrite-hosts'),
        withoutDns: bool('without-dns'),
        noMulticastRoute: bool('no-multicast-route'),
        rewriteInspect: bool('rewrite-inspect'),
        hostnameFromLabel: str('hostname-from-label', ''),
        hostnameMatch: str('hostname-match', '(.*)'),
        hostnameReplacement: str('hostname-replacement', '$1'),
      },
    },
    commandLine: describeFlags(raw),
  };
}

/** The `Command line options: map[...]` log text with secrets redacted (spec §4.5). */
function describeFlags(raw: ReadonlyMap<string, string | boolean | string[]>): string {
  const parts = [...raw.entries()]
    // Byte order, as Go prints a map's keys (and localeCompare would load ICU's collator at startup: ~9 ms).
    .sort(([a], [b]) => compareOrdered(a, b))
    .map(([k, v]) => `${k}:${k === 'password' || k === 'token' ? '<redacted>' : Array.isArray(v) ? `[${v.join(' ')}]` : String(v)}`);
  return `map[${parts.join(' ')}]`;
}
