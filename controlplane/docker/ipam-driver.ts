// The `weavemesh` IPAM driver (user-surface spec §7.1): Docker's pools and addresses backed
// by weave IPAM. The pool id carries the subnet and the allocation range
// (`weave-<subnet>-<range>`), so later calls need no state; the "gateway" handed back is the
// subnet's own network address, which weave IPAM never allocates, so nothing is wasted.
import { cidrRange, formatAddress, formatCIDR, parseAddress, parseCIDR, type CIDR } from '../ipam/addr.js';
import {
  GATEWAY_DATA_KEY, GLOBAL_ADDRESS_SPACE, LEGACY_POOL_ID, LOCAL_ADDRESS_SPACE, PluginError,
  type ReleaseAddressRequest, type RequestAddressRequest, type RequestAddressResponse, type RequestPoolRequest, type RequestPoolResponse,
} from './plugin-protocol.js';

/** What the IPAM driver needs from weave IPAM (an anonymous ident: the address is its own owner). */
export interface PluginIpamPort {
  /** `GET /ipinfo/defaultsubnet`. */
  defaultSubnet(): CIDR;
  /** Allocate one address inside `range` (`POST /ip/_/<range>`); resolves with the address. */
  allocate(range: CIDR): Promise<number>;
  /** Claim exactly `cidr.addr` (`PUT /ip/_/<ip>/<len>`). */
  claim(cidr: CIDR): Promise<void>;
  /** Release the address recorded under its own text (`DELETE /ip/<ip>`). */
  release(ip: string): void;
}

const POOL_ID_PREFIX = 'weave';

/** The network a CIDR text names, host bits cleared (Go's net.ParseCIDR result). */
function networkOf(text: string, what: string): CIDR {
  let c: CIDR;
  try {
    c = parseCIDR(text);
  } catch (e) {
    throw new PluginError(`invalid ${what} "${text}": ${(e as Error).message}`);
  }
  return { addr: cidrRange(c).start, prefixLen: c.prefixLen };
}

export function poolIdOf(subnet: CIDR, range: CIDR): string {
  return [POOL_ID_PREFIX, formatCIDR(subnet), formatCIDR(range)].join('-');
}

export function splitPoolId(poolId: string): { subnet: CIDR; range: CIDR } {
  const parts = poolId.split('-');
  if (parts.length !== 3 || parts[0] !== POOL_ID_PREFIX) throw new PluginError(`Unrecognized pool ID: ${poolId}`);
  return { subnet: networkOf(parts[1]!, 'subnet in pool ID'), range: networkOf(parts[2]!, 'range in pool ID') };
}

export class IpamDriver {
  constructor(private readonly ipam: PluginIpamPort, private readonly log: (m: string) => void = () => undefined) {}

  capabilities(): { RequiresMACAddress: boolean; RequiresRequestReplay: boolean } {
    return { RequiresMACAddress: false, RequiresRequestReplay: false };
  }

  defaultAddressSpaces(): { LocalDefaultAddressSpace: string; GlobalDefaultAddressSpace: string } {
    return { LocalDefaultAddressSpace: LOCAL_ADDRESS_SPACE, GlobalDefaultAddressSpace: GLOBAL_ADDRESS_SPACE };
  }

  requestPool(req: RequestPoolRequest): RequestPoolResponse {
    this.log(`[ipam] RequestPool ${req.AddressSpace} ${req.Pool} ${req.SubPool}`);
    const subnet = req.Pool === '' ? this.ipam.defaultSubnet() : networkOf(req.Pool, 'pool');
    const range = req.SubPool === '' ? subnet : networkOf(req.SubPool, 'sub-pool');
    return { PoolID: poolIdOf(subnet, range), Pool: formatCIDR(subnet), Data: { [GATEWAY_DATA_KEY]: formatCIDR(subnet) } };
  }

  releasePool(poolId: string): Record<string, never> {
    this.log(`[ipam] ReleasePool ${poolId}`);
    return {};
  }

  async requestAddress(req: RequestAddressRequest): Promise<RequestAddressResponse> {
    this.log(`[ipam] RequestAddress ${req.PoolID} ${req.Address}`);
    if (req.PoolID === LEGACY_POOL_ID) {
      const subnet = this.ipam.defaultSubnet();
      const addr = await this.ipam.allocate(subnet);
      return { Address: formatCIDR({ addr, prefixLen: subnet.prefixLen }), Data: {} };
    }
    const { subnet, range } = splitPoolId(req.PoolID);
    if (req.Address !== '') {
      let addr: number;
      try {
        addr = parseAddress(req.Address);
      } catch (e) {
        throw new PluginError(`invalid address "${req.Address}": ${(e as Error).message}`);
      }
      const cidr = { addr, prefixLen: subnet.prefixLen };
      await this.ipam.claim(cidr);
      return { Address: formatCIDR(cidr), Data: {} };
    }
    // The range need not be a subnet; the address gets the pool's mask.
    const addr = await this.ipam.allocate(range);
    return { Address: formatCIDR({ addr, prefixLen: subnet.prefixLen }), Data: {} };
  }

  releaseAddress(req: ReleaseAddressRequest): Record<string, never> {
    this.log(`[ipam] ReleaseAddress ${req.PoolID} ${req.Address}`);
    const { subnet } = splitPoolId(req.PoolID);
    let addr: number;
    try {
      addr = parseAddress(req.Address);
    } catch (e) {
      throw new PluginError(`invalid address "${req.Address}": ${(e as Error).message}`);
    }
    // The gateway was never allocated: it is the subnet address handed out by requestPool.
    if (addr === subnet.addr) return {};
    this.ipam.release(formatAddress(addr));
    return {};
  }
}
