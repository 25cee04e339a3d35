// IPAM launch options (user surface §4.3): --ipalloc-range,
// --ipalloc-default-subnet and --ipalloc-init, with Weave's error texts.
import type { CIDR } from './addr.js';
import { cidrRange, overlaps, parseSubnet, formatCIDR } from './addr.js';
import type { IpamInit } from './allocator.js';
import type { PeerName } from './ring.js';

export const DEFAULT_IPALLOC_RANGE = '10.32.0.0/12';

/** A peer name in MAC form, also accepting the `::1` shorthand (zero groups omitted). */
export function parsePeerNameText(text: string): PeerName {
  let groups: string[];
  if (text.includes('::')) {
    const [left, right] = text.split('::', 2) as [string, string];
    const l = left === '' ? [] : left.split(':');
    const r = right === '' ? [] : right.split(':');
    if (l.length + r.length > 5) throw new Error(`invalid peer name "${text}"`);
    groups = [...l, ...Array<string>(6 - l.length - r.length).fill('0'), ...r];
  } else {
    groups = text.split(':');
  }
  if (groups.length !== 6 || !groups.every((g) => /^[0-9a-fA-F]{1,2}$/.test(g))) {
    throw new Error(`invalid peer name "${text}" (expected six hex bytes like 0a:00:00:00:00:01)`);
  }
  return BigInt('0x' + groups.map((g) => g.padStart(2, '0')).join(''));
}

/** Parse `--ipalloc-init` (user surface §4.3). Empty means consensus. */
export function parseIpallocInit(text: string): IpamInit {
  const fail = (why: string): never => { throw new Error(`Unable to parse --ipalloc-init: ${why}`); };
  if (text === '') return { mode: 'consensus' };
  const eq = text.indexOf('=');
  const mode = eq < 0 ? text : text.slice(0, eq);
  const param = eq < 0 ? undefined : text.slice(eq + 1);
  switch (mode) {
    case 'consensus': {
      if (param === undefined) return { mode: 'consensus' };
      if (!/^\d+$/.test(param) || Number(param) < 1) return fail('bad consensus parameter');
      return { mode: 'consensus', count: Number(param) };
    }
    case 'seed': {
      if (!param) return fail('seed mode requires peer name list');
      try {
        return { mode: 'seed', seeds: param.split(',').map(parsePeerNameText) };
      } catch (err) {
        return fail((err as Error).message);
      }
    }
    case 'observer':
      if (param !== undefined) return fail('observer mode takes no parameter');
      return { mode: 'observer' };
    default:
      return fail(`unknown mode: ${mode}`);
  }
}

export interface IpamOptions { universe: CIDR; defaultSubnet: CIDR; init: IpamInit }

/** Validate the three flags together; undefined when IPAM is disabled. */
export function parseIpamOptions(range: string, defaultSubnet: string, init: string): IpamOptions | undefined {
  if (range === '') {
    if (defaultSubnet !== '') throw new Error('--ipalloc-default-subnet specified without --ipalloc-range.');
    if (init !== '') throw new Error('--ipalloc-init specified without --ipalloc-range.');
    return undefined;
  }
  const universe = parseSubnet(range, '--ipalloc-range');
  const subnet = defaultSubnet === '' ? universe : parseSubnet(defaultSubnet, '--ipalloc-default-subnet');
  if (!overlaps(cidrRange(subnet), cidrRange(universe))) {
    throw new Error(`IP address allocation default subnet ${formatCIDR(subnet)} does not overlap with allocation range ${formatCIDR(universe)}`);
  }
  return { universe, defaultSubnet: subnet, init: parseIpallocInit(init) };
}
