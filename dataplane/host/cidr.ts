// IPv4 CIDR arithmetic for host addresses ("10.32.0.5/12"): validation and
// the network a host address belongs to.
import { isIPv4 } from 'node:net';

export interface Cidr {
  /** The host address as written, e.g. 10.32.0.5. */
  ip: string;
  prefixLen: number;
}

/** Parses `a.b.c.d/len`; throws a RangeError naming the text otherwise. */
export function parseCidr(text: string): Cidr {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(text);
  if (!m || !isIPv4(m[1]) || Number(m[2]) > 32) {
    throw new RangeError(`invalid address ${JSON.stringify(text)}: expected an IPv4 CIDR such as 10.32.0.5/12`);
  }
  return { ip: m[1], prefixLen: Number(m[2]) };
}

export function formatCidr(c: Cidr): string {
  return `${c.ip}/${c.prefixLen}`;
}

function ipToNumber(ip: string): number {
  return ip.split('.').reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0);
}

function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

/** The network of a host CIDR: 10.32.0.254/12 -> 10.32.0.0/12. */
export function networkOf(text: string): string {
  const { ip, prefixLen } = parseCidr(text);
  const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  return `${numberToIp((ipToNumber(ip) & mask) >>> 0)}/${prefixLen}`;
}
