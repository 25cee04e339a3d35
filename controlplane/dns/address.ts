// IPv4 addresses as the nameserver stores them: a u32 (wire spec §9.1, `Addr`).

/** Parse dotted-quad IPv4 text to a u32; undefined when it is not one. */
export function parseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

/** Format a u32 as dotted-quad text. */
export function formatIPv4(addr: number): string {
  return [addr >>> 24, (addr >>> 16) & 0xff, (addr >>> 8) & 0xff, addr & 0xff].join('.');
}

/**
 * The address named by a reverse-lookup name such as `4.3.2.1.in-addr.arpa`
 * (with or without the trailing dot, any case); undefined for anything else.
 */
export function parseReverseName(name: string): number | undefined {
  const lower = name.toLowerCase().replace(/\.$/, '');
  const suffix = '.in-addr.arpa';
  if (!lower.endsWith(suffix)) return undefined;
  const octets = lower.slice(0, -suffix.length).split('.');
  if (octets.length !== 4) return undefined;
  return parseIPv4(octets.reverse().join('.'));
}
