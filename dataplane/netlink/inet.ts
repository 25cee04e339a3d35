// Text <-> bytes for the address forms rtnl speaks: IPv4 addresses, IPv4
// prefixes ("10.32.0.1/12") and Ethernet MAC addresses.

export function parseIPv4(text: string): Buffer {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new RangeError(`invalid IPv4 address ${JSON.stringify(text)} (expected a.b.c.d)`);
  }
  return Buffer.from(parts.map(Number));
}

export function formatIPv4(bytes: Uint8Array): string {
  if (bytes.length !== 4) throw new RangeError(`IPv4 address must be 4 bytes, got ${bytes.length}`);
  return Array.from(bytes).join('.');
}

export interface IPv4Prefix {
  address: string;
  prefixLen: number;
}

/** Parses "a.b.c.d/len"; a bare address means /32. */
export function parseIPv4Prefix(text: string): IPv4Prefix {
  const [addr, len, extra] = text.split('/');
  if (extra !== undefined) throw new RangeError(`invalid IPv4 prefix ${JSON.stringify(text)}`);
  parseIPv4(addr);
  const prefixLen = len === undefined ? 32 : Number(len);
  if (!/^\d{1,2}$/.test(len ?? '32') || prefixLen > 32) {
    throw new RangeError(`invalid prefix length in ${JSON.stringify(text)} (expected 0..32)`);
  }
  return { address: addr, prefixLen };
}

export function parseMac(text: string): Buffer {
  const parts = text.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new RangeError(`invalid MAC address ${JSON.stringify(text)} (expected xx:xx:xx:xx:xx:xx)`);
  }
  return Buffer.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(':');
}
