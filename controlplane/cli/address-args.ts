// The address argument grammar of attach/detach/expose/hide (user-surface
// spec §1 "Address argument grammar"): leading arguments that look like
// addresses are taken, `ip:` is stripped, `net:` forms need IPAM.

export type AddressArg = { kind: 'cidr'; cidr: string } | { kind: 'net'; subnet?: string };

const CIDR_TEXT = '\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}/\\d{1,2}';
const ADDRESS = new RegExp(`^(net:default|(ip:|net:)?${CIDR_TEXT})$`);

export class AddressError extends Error {}

function checkCidr(cidr: string): string {
  const [ip, len] = cidr.split('/');
  if (ip.split('.').some((o) => Number(o) > 255) || Number(len) > 32) {
    throw new AddressError(`invalid address ${cidr}: expected a.b.c.d/n with octets up to 255 and n up to 32`);
  }
  return cidr;
}

/** Splits leading address arguments from the rest. */
export function takeAddresses(args: readonly string[]): { addresses: AddressArg[]; rest: string[] } {
  const addresses: AddressArg[] = [];
  let i = 0;
  for (; i < args.length && ADDRESS.test(args[i]); i++) {
    const a = args[i];
    if (a === 'net:default') addresses.push({ kind: 'net' });
    else if (a.startsWith('net:')) addresses.push({ kind: 'net', subnet: checkCidr(a.slice(4)) });
    else addresses.push({ kind: 'cidr', cidr: checkCidr(a.startsWith('ip:') ? a.slice(3) : a) });
  }
  return { addresses, rest: args.slice(i) };
}

/** `10.32.0.2/12` -> `10.32.0.2` (what attach/expose print). */
export function ipOf(cidr: string): string {
  return cidr.split('/')[0];
}
