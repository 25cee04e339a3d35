// IPv4 address and CIDR arithmetic for IPAM (spec §8.1). Addresses are u32
// held in a JS number; a Range is half-open [start, end), so `end` may be 2^32.

export type Address = number;

/** Half-open address range [start, end) (spec §8.1). */
export interface Range { start: Address; end: number }

/** An address with a prefix length, e.g. 10.32.0.5/12. */
export interface CIDR { addr: Address; prefixLen: number }

const TWO_32 = 2 ** 32;

export function parseAddress(text: string): Address {
  const parts = text.trim().split('.');
  if (parts.length !== 4) throw new Error(`invalid IPv4 address "${text}" (expected a.b.c.d)`);
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) {
      throw new Error(`invalid IPv4 address "${text}" (each part must be 0-255)`);
    }
    value = value * 256 + Number(part);
  }
  return value;
}

export function formatAddress(addr: Address): string {
  const a = addr >>> 0;
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

export function parseCIDR(text: string): CIDR {
  const slash = text.indexOf('/');
  if (slash < 0) throw new Error(`invalid CIDR "${text}" (expected a.b.c.d/len)`);
  const addr = parseAddress(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,2}$/.test(lenText) || Number(lenText) > 32) {
    throw new Error(`invalid CIDR "${text}" (prefix length must be 0-32)`);
  }
  return { addr, prefixLen: Number(lenText) };
}

export function formatCIDR(c: CIDR): string {
  return `${formatAddress(c.addr)}/${c.prefixLen}`;
}

export function cidrSize(prefixLen: number): number {
  return 2 ** (32 - prefixLen);
}

/** The network range a CIDR belongs to (host bits cleared). */
export function cidrRange(c: CIDR): Range {
  const size = cidrSize(c.prefixLen);
  const start = Math.floor(c.addr / size) * size;
  return { start, end: start + size };
}

/** True when the CIDR names its network address (no host bits set). */
export function isNetworkCIDR(c: CIDR): boolean {
  return cidrRange(c).start === c.addr;
}

/**
 * Parse a subnet such as an --ipalloc-range value: host bits must be clear.
 * `what` names the thing in the error, e.g. "--ipalloc-range".
 */
export function parseSubnet(text: string, what: string): CIDR {
  const c = parseCIDR(text);
  if (!isNetworkCIDR(c)) {
    const net = { addr: cidrRange(c).start, prefixLen: c.prefixLen };
    throw new Error(`${what} ${text} has host bits set (did you mean ${formatCIDR(net)}?)`);
  }
  if (c.prefixLen > 30) throw new Error(`${what} ${text} is too small (minimum subnet size is 4 addresses, /30)`);
  return c;
}

/** Addresses usable by hosts: the subnet without network and broadcast address. */
export function hostRange(c: CIDR): Range {
  const r = cidrRange(c);
  return r.end - r.start > 2 ? { start: r.start + 1, end: r.end - 1 } : r;
}

export function rangeSize(r: Range): number {
  return Math.max(0, r.end - r.start);
}

export function rangeContains(r: Range, addr: Address): boolean {
  return addr >= r.start && addr < r.end;
}

export function intersect(a: Range, b: Range): Range | undefined {
  const start = Math.max(a.start, b.start);
  const end = Math.min(a.end, b.end);
  return start < end ? { start, end } : undefined;
}

export function overlaps(a: Range, b: Range): boolean {
  return intersect(a, b) !== undefined;
}

export function formatRange(r: Range): string {
  return `${formatAddress(r.start)}-${formatAddress(r.end - 1)}`;
}

/**
 * The range as a CIDR when it is exactly one aligned block, else undefined.
 */
export function rangeAsCIDR(r: Range): CIDR | undefined {
  const size = rangeSize(r);
  if (size === 0 || size > TWO_32) return undefined;
  const bits = Math.log2(size);
  if (!Number.isInteger(bits) || r.start % size !== 0) return undefined;
  return { addr: r.start, prefixLen: 32 - bits };
}

/** The largest CIDR-aligned blocks that exactly cover a range, in order. */
export function rangeToCIDRs(r: Range): Range[] {
  const out: Range[] = [];
  let start = r.start;
  while (start < r.end) {
    // Largest power of two that divides `start` and fits before `end`.
    let size = start === 0 ? TWO_32 : 2 ** Math.min(32, trailingZeros(start));
    while (size > r.end - start) size /= 2;
    out.push({ start, end: start + size });
    start += size;
  }
  return out;
}

function trailingZeros(n: number): number {
  let count = 0;
  while (n % 2 === 0 && count < 32) { n /= 2; count++; }
  return count;
}
