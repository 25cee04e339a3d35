// --trusted-subnets (user-surface spec §4.1): peers whose address lies in one
// of these CIDRs are told, in the handshake's `Trusted` feature, that we do
// not need the data plane encrypted towards them (wire spec §1.5).
import { BlockList, isIP } from 'node:net';

export class TrustedSubnets {
  private readonly list = new BlockList();

  /** `cidrs` are already validated by the flag parser (a.b.c.d/n or an IPv6 CIDR). */
  constructor(readonly cidrs: readonly string[]) {
    for (const c of cidrs) {
      const [addr, len] = c.split('/') as [string, string];
      this.list.addSubnet(addr, Number(len), isIP(addr) === 6 ? 'ipv6' : 'ipv4');
    }
  }

  /** Whether the remote address (as a socket reports it, IPv4-mapped or not) is trusted. */
  contains(address: string | undefined): boolean {
    if (!address || this.cidrs.length === 0) return false;
    const plain = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
    const family = isIP(plain);
    if (family === 0) return false;
    return this.list.check(plain, family === 6 ? 'ipv6' : 'ipv4');
  }
}
