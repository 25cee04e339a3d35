// weaver's pid file: written at start, removed on a clean exit. A stale file
// left by a killed router is recognised by its process no longer existing.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

/** A zombie has exited but is not reaped yet (its parent may be gone): count it as dead. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/** The pid recorded in the file if that process still runs, else undefined. */
export function runningPid(pidFile: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8').trim();
  } catch {
    return undefined;
  }
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return processAlive(pid) ? pid : undefined;
}

/** Claim the pid file for this process; throws if another live router holds it. */
export function claimPidFile(pidFile: string, dir: string): void {
  const other = runningPid(pidFile);
  if (other !== undefined && other !== process.pid) {
    throw new Error(`another router (pid ${other}) is using the state directory ${dir}; stop it with 'weave stop' or pass a different --state-dir`);
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(pidFile, `${process.pid}\n`);
}

/** Remove the pid file if it is still ours. */
export function releasePidFile(pidFile: string): void {
  try {
    if (readFileSync(pidFile, 'utf8').trim() === String(process.pid)) rmSync(pidFile, { force: true });
  } catch {
    // already gone
  }
}
