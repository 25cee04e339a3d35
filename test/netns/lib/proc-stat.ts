// CPU time of a process from /proc/PID/stat, for benches and soaks that
// measure what routers cost the host.
import { readFileSync } from 'node:fs';

/** /proc/PID/stat counts in USER_HZ ticks, 100 a second on Linux whatever the kernel's HZ. */
const USER_HZ = 100;

/**
 * User and system CPU seconds of process `pid` (fields 14 and 15, after the
 * parenthesised name); with `withChildren`, its finished children's too
 * (fields 16 and 17): a command the router runs (nft, ip) is CPU it costs the host.
 */
export function processCpuTimes(pid: number, withChildren = false): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  const user = f[11]! + (withChildren ? f[13]! : 0);
  const system = f[12]! + (withChildren ? f[14]! : 0);
  return { user: user / USER_HZ, system: system / USER_HZ };
}

/** User + system CPU seconds of process `pid` (processCpuTimes). */
export function processCpuSeconds(pid: number, withChildren = false): number {
  const { user, system } = processCpuTimes(pid, withChildren);
  return user + system;
}
