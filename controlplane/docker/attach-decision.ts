// Whether the Docker API proxy puts a container on the weave network, and with
// which addresses (user-surface spec §7.3.3): the network mode first, then the
// container's WEAVE_CIDR variable. Pure: the proxy supplies what it read from
// the create request.
import { AddressError, takeAddresses, type AddressArg } from '../cli/address-args.js';

export type AttachDecision =
  | { attach: true; addresses: AddressArg[] }
  | { attach: false; reason: string };

/** Network modes the proxy attaches to weave in addition to Docker's own network. */
const ATTACHED_MODES = new Set(['', 'default', 'bridge', 'none']);

const WEAVE_CIDR_PREFIX = 'WEAVE_CIDR=';

export class WeaveCidrError extends Error {}

/** The value of WEAVE_CIDR in a container's `Env` list; undefined when the variable is absent. */
export function weaveCidrOf(env: readonly unknown[] | undefined): string | undefined {
  for (const e of env ?? []) {
    if (typeof e === 'string' && e.startsWith(WEAVE_CIDR_PREFIX)) return e.slice(WEAVE_CIDR_PREFIX.length);
  }
  return undefined;
}

/**
 * The addresses of a WEAVE_CIDR value: space-separated `net:default`,
 * `net:<subnet>`, `ip:<cidr>` or `<cidr>`; empty = the default subnet.
 * Throws WeaveCidrError naming the bad token.
 */
export function parseWeaveCidr(value: string): AddressArg[] {
  const tokens = value.split(/\s+/).filter((t) => t !== '');
  if (tokens.length === 0) return [{ kind: 'net' }];
  let taken: { addresses: AddressArg[]; rest: string[] };
  try {
    taken = takeAddresses(tokens);
  } catch (err) {
    if (err instanceof AddressError) throw new WeaveCidrError(`invalid WEAVE_CIDR "${value}": ${err.message}`);
    throw err;
  }
  if (taken.rest.length > 0) {
    throw new WeaveCidrError(
      `invalid WEAVE_CIDR "${value}": "${taken.rest[0]}" is not one of none, net:default, net:<cidr>, ip:<cidr>, <cidr>`,
    );
  }
  return taken.addresses;
}

/** Whether a network mode leaves the container to Docker alone (`host`, `container:X`, user networks). */
export function networkModeAttaches(mode: string): boolean {
  return ATTACHED_MODES.has(mode);
}

export function decideAttach(networkMode: string, env: readonly unknown[] | undefined, noDefaultIpalloc: boolean): AttachDecision {
  if (!networkModeAttaches(networkMode)) {
    return { attach: false, reason: `Leaving container alone because the container has '--net=${networkMode}'` };
  }
  const cidr = weaveCidrOf(env);
  if (cidr === undefined) {
    return noDefaultIpalloc
      ? { attach: false, reason: 'Leaving container alone because it has no WEAVE_CIDR and --no-default-ipalloc is set' }
      : { attach: true, addresses: [{ kind: 'net' }] };
  }
  if (cidr.trim() === 'none') return { attach: false, reason: 'Leaving container alone because WEAVE_CIDR=none' };
  return { attach: true, addresses: parseWeaveCidr(cidr) };
}
