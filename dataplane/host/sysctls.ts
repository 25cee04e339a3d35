// The sysctls Weave sets on its interfaces (user-surface spec §6.2), written
// through /proc/sys. /proc/sys/net resolves against the calling thread's
// network namespace, so inside withNetns() these reach the container's copy.
// Every write is read-compare-write: applying twice changes nothing.
import { readFileSync, writeFileSync } from 'node:fs';

export interface SysctlSetting {
  /** Path below /proc/sys, with '/' separators: net/ipv4/neigh/ethwe/ucast_solicit. */
  key: string;
  value: string;
  /** True when the key may be absent (e.g. IPv6 disabled) and that is fine. */
  optional?: boolean;
}

export class SysctlError extends Error {}

/**
 * Where the host's /proc and /sys are. A router inside a container (the managed Docker
 * plugin) gets a read-only /proc/sys and /sys, and the host's bound at /host/proc and
 * /host/sys instead (`--proc-path`, `--host-root`); /proc/sys/net still shows the calling
 * thread's namespace through either.
 */
const hostPaths = { procSys: '/proc/sys', sysClassNet: '/sys/class/net' };

export function useHostPaths(paths: { proc?: string; sys?: string }): void {
  if (paths.proc !== undefined) hostPaths.procSys = `${paths.proc.replace(/\/$/, '')}/sys`;
  if (paths.sys !== undefined) hostPaths.sysClassNet = `${paths.sys.replace(/\/$/, '')}/class/net`;
}

/** Sets one sysctl if it differs; returns true when it wrote. Synchronous (safe inside withNetns). */
export function setSysctl(setting: SysctlSetting): boolean {
  const path = `${hostPaths.procSys}/${setting.key}`;
  let current: string;
  try {
    current = readFileSync(path, 'utf8').trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && setting.optional) return false;
    throw new SysctlError(`cannot read sysctl ${setting.key}: ${code ?? (e as Error).message} (is the interface present in this namespace?)`);
  }
  if (current === setting.value) return false;
  try {
    writeFileSync(path, setting.value);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SysctlError(`cannot set sysctl ${setting.key}=${setting.value}: ${code ?? (e as Error).message} (needs root with CAP_NET_ADMIN)`);
  }
  return true;
}

export function applySysctls(settings: readonly SysctlSetting[]): void {
  for (const s of settings) setSysctl(s);
}

/** No IPv6 router advertisements on Weave's interfaces (spec §6.2). */
export function noRouterAdvertisements(ifname: string): SysctlSetting[] {
  return [{ key: `net/ipv6/conf/${ifname}/accept_ra`, value: '0', optional: true }];
}

/** Fast ARP re-resolution, so a container that moves or restarts is found again quickly (spec §6.2). */
export function arpTuning(ifname: string): SysctlSetting[] {
  return [
    { key: `net/ipv4/neigh/${ifname}/base_reachable_time`, value: '5' },
    { key: `net/ipv4/neigh/${ifname}/delay_first_probe_time`, value: '2' },
    { key: `net/ipv4/neigh/${ifname}/ucast_solicit`, value: '1' },
  ];
}

/**
 * Kubernetes (spec §6.2): frames bridged between pods pass iptables, so
 * kube-proxy's translation and the policy chains (--expect-npc) see them.
 * Absent until br_netfilter is loaded.
 */
export const BRIDGE_NF_CALL_IPTABLES: SysctlSetting = { key: 'net/bridge/bridge-nf-call-iptables', value: '1' };

/** Settings for the `weave` bridge. */
export function bridgeSysctls(bridge: string): SysctlSetting[] {
  return [...noRouterAdvertisements(bridge), ...arpTuning(bridge)];
}

/** Settings for a container's `ethwe` (run inside the container's namespace). */
export function containerInterfaceSysctls(ifname: string): SysctlSetting[] {
  return [...noRouterAdvertisements(ifname), ...arpTuning(ifname)];
}

/** Settings for the host end of a veth Weave creates. */
export function hostVethSysctls(ifname: string): SysctlSetting[] {
  return noRouterAdvertisements(ifname);
}

/** Hairpin on a bridge port (spec §1.8 step 4), so a container can reach itself via an exposed address. */
export function setHairpin(port: string): void {
  const path = `${hostPaths.sysClassNet}/${port}/brport/hairpin_mode`;
  try {
    if (readFileSync(path, 'utf8').trim() !== '1') writeFileSync(path, '1');
  } catch (e) {
    throw new SysctlError(`cannot enable hairpin mode on bridge port ${port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}
