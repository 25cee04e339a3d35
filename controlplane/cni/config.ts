// The network configuration a runtime gives on stdin (CNI spec 1.1 "Network
// configuration"), with the keys Weave's plugin read (user-surface spec §7.4):
// bridge, mtu, hairpinMode, isGateway/ipMasq (refused), dns, and ipam
// {type, subnet, gateway, routes}. Every malformed value is a CNI error that
// names the key.
import { CniError, CniErrorCode } from './errors.js';
import { checkSupported, IMPLICIT_VERSION, type CniVersion } from './versions.js';
import { DEFAULT_BRIDGE } from '../well-known.js';

/** Where the plugin remembers which container ids it gave addresses to (for GC). */
export const DEFAULT_DATA_DIR = '/var/lib/cni/weave-net';

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface IpamConfig {
  /** Empty: Weave's own IPAM through the router; else a delegated plugin's name. */
  type: string;
  subnet?: string;
  gateway?: string;
  routes?: CniRoute[];
}

export interface Attachment {
  containerID: string;
  ifname: string;
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  bridge: string;
  /** 0: the bridge's MTU. */
  mtu: number;
  hairpinMode: boolean;
  dns?: CniDns;
  ipam: IpamConfig;
  dataDir: string;
  /** CHECK (and chained plugins): the result of the previous ADD, as given. */
  prevResult?: Record<string, unknown>;
  /** GC: `cni.dev/valid-attachments`. */
  validAttachments?: Attachment[];
  /** The bytes as received, for a delegated IPAM plugin. */
  raw: string;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

export function isIPv4Cidr(s: string): boolean {
  const i = s.indexOf('/');
  if (i < 0) return false;
  const len = s.slice(i + 1);
  return isIPv4(s.slice(0, i)) && /^\d{1,2}$/.test(len) && Number(len) <= 32;
}

function invalid(msg: string, details?: string): CniError {
  return new CniError(CniErrorCode.InvalidNetworkConfig, msg, details);
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(o: Obj, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid(`${where}${key} must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function optBool(o: Obj, key: string, dflt: boolean): boolean {
  const v = o[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw invalid(`${key} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function stringList(v: unknown, key: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw invalid(`dns.${key} must be a list of strings`);
  return v as string[];
}

function parseRoutes(v: unknown, where: string): CniRoute[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalid(`${where} must be a list of {"dst": CIDR, "gw": IP}`);
  return v.map((r, i) => {
    if (!isObject(r)) throw invalid(`${where}[${i}] must be an object`);
    const dst = optString(r, 'dst', `${where}[${i}].`);
    if (dst === undefined || !isIPv4Cidr(dst)) throw invalid(`${where}[${i}].dst must be an IPv4 CIDR, got ${JSON.stringify(r.dst)}`);
    const gw = optString(r, 'gw', `${where}[${i}].`);
    if (gw !== undefined && !isIPv4(gw)) throw invalid(`${where}[${i}].gw must be an IPv4 address, got ${JSON.stringify(gw)}`);
    return gw === undefined ? { dst } : { dst, gw };
  });
}

function parseDns(v: unknown): CniDns | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw invalid('dns must be an object');
  const out: CniDns = {};
  const nameservers = stringList(v.nameservers, 'nameservers');
  if (nameservers) out.nameservers = nameservers;
  const domain = optString(v, 'domain', 'dns.');
  if (domain !== undefined) out.domain = domain;
  const search = stringList(v.search, 'search');
  if (search) out.search = search;
  const options = stringList(v.options, 'options');
  if (options) out.options = options;
  return Object.keys(out).length > 0 ? out : undefined;
}

function parseIpam(v: unknown): IpamConfig {
  if (v === undefined || v === null) return { type: '' };
  if (!isObject(v)) throw invalid('ipam must be an object');
  const out: IpamConfig = { type: optString(v, 'type', 'ipam.') ?? '' };
  const subnet = optString(v, 'subnet', 'ipam.');
  if (subnet !== undefined) {
    if (!isIPv4Cidr(subnet)) throw invalid(`ipam.subnet must be an IPv4 CIDR, got ${JSON.stringify(subnet)}`);
    out.subnet = subnet;
  }
  const gateway = optString(v, 'gateway', 'ipam.');
  if (gateway !== undefined) {
    if (!isIPv4(gateway)) throw invalid(`ipam.gateway must be an IPv4 address, got ${JSON.stringify(gateway)}`);
    out.gateway = gateway;
  }
  const routes = parseRoutes(v.routes, 'ipam.routes');
  if (routes) out.routes = routes;
  return out;
}

function parseAttachments(v: unknown): Attachment[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw invalid('cni.dev/valid-attachments must be a list');
  return v.map((a, i) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') {
      throw invalid(`cni.dev/valid-attachments[${i}] must be {"containerID": string, "ifname": string}`);
    }
    return { containerID: a.containerID, ifname: a.ifname };
  });
}

/** Decodes stdin: bad JSON is a decoding failure (code 6), bad values are invalid config (code 7). */
export function decodeConfigObject(text: string): Obj {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CniError(CniErrorCode.DecodingFailure, `failed to load netconf: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw new CniError(CniErrorCode.DecodingFailure, 'failed to load netconf: expected a JSON object');
  return parsed;
}

/** The config's cniVersion (implicit 0.1.0), checked against what we speak. */
export function configVersion(o: Obj): CniVersion {
  const v = o.cniVersion;
  if (v === undefined || v === null || v === '') return IMPLICIT_VERSION;
  if (typeof v !== 'string') throw invalid(`cniVersion must be a string, got ${JSON.stringify(v)}`);
  return checkSupported(v);
}

export function parseNetConf(text: string): NetConf {
  const o = decodeConfigObject(text);
  const cniVersion = configVersion(o);
  // Weave's plugin refused these with exactly these messages (spec §7.4).
  if (optBool(o, 'isGateway', false)) throw new CniError(CniErrorCode.UnsupportedField, 'Gateway functionality not supported', 'isGateway: true');
  if (optBool(o, 'ipMasq', false)) throw new CniError(CniErrorCode.UnsupportedField, 'IP Masquerading functionality not supported', 'ipMasq: true');
  const bridge = optString(o, 'bridge', '') ?? DEFAULT_BRIDGE;
  if (!/^[^\s/:]{1,15}$/.test(bridge)) throw invalid(`bridge must be an interface name (1-15 characters, no spaces, '/' or ':'), got ${JSON.stringify(bridge)}`);
  const mtu = o.mtu ?? 0;
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 0 || mtu > 65535) throw invalid(`mtu must be an integer 0-65535 (0: the bridge's), got ${JSON.stringify(o.mtu)}`);
  const conf: NetConf = {
    cniVersion,
    name: optString(o, 'name', '') ?? '',
    type: optString(o, 'type', '') ?? '',
    bridge,
    mtu,
    hairpinMode: optBool(o, 'hairpinMode', true),
    ipam: parseIpam(o.ipam),
    dataDir: optString(o, 'dataDir', '') ?? DEFAULT_DATA_DIR,
    raw: text,
  };
  if (conf.dataDir !== '' && !conf.dataDir.startsWith('/')) throw invalid(`dataDir must be an absolute path, got ${JSON.stringify(conf.dataDir)}`);
  const dns = parseDns(o.dns);
  if (dns) conf.dns = dns;
  if (o.prevResult !== undefined && o.prevResult !== null) {
    if (!isObject(o.prevResult)) throw invalid('prevResult must be an object');
    conf.prevResult = o.prevResult;
  }
  const valid = parseAttachments(o['cni.dev/valid-attachments']);
  if (valid) conf.validAttachments = valid;
  return conf;
}
