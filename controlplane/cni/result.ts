// ADD results in the shape each CNI version defines (CNI spec 1.1 "Success"
// and the earlier specs): one model, printed as 0.1.0/0.2.0 (`ip4`),
// 0.3.x/0.4.0 (`interfaces`/`ips` with "version"), 1.0.0 (no "version") and
// 1.1.0 (interfaces also carry their MTU).
import type { CniDns, CniRoute } from './config.js';
import { compareDottedVersions } from '../dotted-version.js';
import type { CniVersion } from './versions.js';

export interface ResultInterface {
  name: string;
  /** Absent for the host end (nobody needs it, and reading it costs a call). */
  mac?: string;
  /** The container's namespace path; absent for the host end. */
  sandbox?: string;
  mtu?: number;
}

export interface ResultIp {
  /** CIDR, e.g. 10.32.0.2/12. */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

/** One ADD result, version-free. */
export interface CniResult {
  interfaces: ResultInterface[];
  ips: ResultIp[];
  routes: CniRoute[];
  dns?: CniDns;
}

function routesOut(routes: readonly CniRoute[]): CniRoute[] {
  return routes.map((r) => (r.gw === undefined ? { dst: r.dst } : { dst: r.dst, gw: r.gw }));
}

/** The result as version `v` prints it. */
export function formatResult(result: CniResult, v: CniVersion): Record<string, unknown> {
  if (compareDottedVersions(v, '0.3.0') < 0) {
    // 0.1.0/0.2.0: one IPv4 config, no interfaces.
    const ip = result.ips[0];
    const out: Record<string, unknown> = { cniVersion: v };
    if (ip) {
      const ip4: Record<string, unknown> = { ip: ip.address };
      if (ip.gateway !== undefined) ip4.gateway = ip.gateway;
      ip4.routes = routesOut(result.routes);
      out.ip4 = ip4;
    }
    out.dns = result.dns ?? {};
    return out;
  }
  const withVersion = compareDottedVersions(v, '1.0.0') < 0;
  const withMtu = compareDottedVersions(v, '1.1.0') >= 0;
  const out: Record<string, unknown> = { cniVersion: v };
  if (result.interfaces.length > 0) {
    out.interfaces = result.interfaces.map((i) => {
      const o: Record<string, unknown> = { name: i.name };
      if (i.mac !== undefined) o.mac = i.mac;
      if (withMtu && i.mtu !== undefined) o.mtu = i.mtu;
      if (i.sandbox !== undefined) o.sandbox = i.sandbox;
      return o;
    });
  }
  out.ips = result.ips.map((ip) => {
    const o: Record<string, unknown> = {};
    if (withVersion) o.version = '4';
    if (ip.interface !== undefined) o.interface = ip.interface;
    o.address = ip.address;
    if (ip.gateway !== undefined) o.gateway = ip.gateway;
    return o;
  });
  if (result.routes.length > 0) out.routes = routesOut(result.routes);
  out.dns = result.dns ?? {};
  return out;
}

/** The addresses (CIDRs) a previous result of any version names, for CHECK. */
export function addressesOf(prev: Record<string, unknown>): string[] {
  const out: string[] = [];
  const ips = prev.ips;
  if (Array.isArray(ips)) {
    for (const ip of ips) {
      if (typeof ip === 'object' && ip !== null && typeof (ip as { address?: unknown }).address === 'string') out.push((ip as { address: string }).address);
    }
  }
  const ip4 = prev.ip4;
  if (typeof ip4 === 'object' && ip4 !== null && typeof (ip4 as { ip?: unknown }).ip === 'string') out.push((ip4 as { ip: string }).ip);
  return out;
}
