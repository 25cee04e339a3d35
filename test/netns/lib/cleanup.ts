// Cleaning up namespaces the testbed made, even when the test process fails.
//
// Everything a testbed creates lives inside network namespaces whose names start
// with the run's prefix (veths and bridges die with their namespace), so removing
// those namespaces — after killing whatever still runs inside them — removes it
// all. Prefixes look like `wt<pid base 36>-<3 random chars>`, which lets
// sweepStale() recognise leftovers of runs whose process no longer exists.
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execCommandSync } from './exec.js';

const prefixPattern = /^wt([0-9a-z]+)-([0-9a-z]{3})-/;

/** A fresh, unique-per-run namespace name prefix, e.g. `wt2n9c-k3f`. */
export function newRunPrefix(): string {
  const rand = Array.from(randomBytes(3), (b) => (b % 36).toString(36)).join('');
  return `wt${process.pid.toString(36)}-${rand}`;
}

/** Names of all network namespaces (from `ip netns list`). */
export function listNamespaces(): string[] {
  const r = execCommandSync('ip', ['netns', 'list']);
  if (r.code !== 0) return [];
  // Lines look like "name" or "name (id: 3)".
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n.length > 0);
}

/** Kills every process inside the namespace, then deletes it. Synchronous so exit handlers can use it. */
export function deleteNamespaceSync(name: string): void {
  const pids = execCommandSync('ip', ['netns', 'pids', name]);
  for (const pid of pids.stdout.split(/\s+/).filter((p) => /^\d+$/.test(p))) {
    try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
  }
  execCommandSync('ip', ['netns', 'del', name]);
}

/** Deletes every namespace whose name starts with `prefix + '-'`; returns the names removed. */
export function deleteNamespacesWithPrefixSync(prefix: string): string[] {
  const victims = listNamespaces().filter((n) => n.startsWith(`${prefix}-`));
  // Containers first, underlay last: order does not matter to the kernel, but
  // removing leaves before the bridge keeps `ip` from printing link-gone noise.
  for (const ns of victims.reverse()) deleteNamespaceSync(ns);
  return victims;
}

/** Unmounts every mount point at or below `dir`, deepest first. */
function unmountUnder(dir: string): void {
  let mounts: string;
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return;
  }
  const points = mounts.split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m === dir || m.startsWith(`${dir}/`));
  for (const m of points.sort((a, b) => b.length - a.length)) execCommandSync('umount', [m]);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes leftovers of crashed runs. With a prefix: every namespace under it.
 * Without: every testbed namespace whose owning process (encoded in the name) is dead.
 */
export function sweepStale(prefix?: string): string[] {
  const stale = (name: string): boolean => {
    if (prefix !== undefined) return name.startsWith(`${prefix}-`);
    const m = prefixPattern.exec(name);
    if (!m || m[1] === undefined) return false;
    const pid = parseInt(m[1], 36);
    return pid !== process.pid && !pidAlive(pid);
  };
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    if (!stale(ns)) continue;
    deleteNamespaceSync(ns);
    removed.push(ns);
  }
  // Scratch directories are named `<prefix>-XXXXXX` in the temp directory; a run killed
  // mid-way may leave file systems mounted in them (the eBPF testbeds' bpffs pin dirs).
  for (const entry of readdirSync(tmpdir())) {
    if (!stale(entry)) continue;
    const dir = join(tmpdir(), entry);
    unmountUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  return removed;
}

// --- process-wide safety net ------------------------------------------------

interface LiveRun { prefix: string; dir: string; killProcesses(): void }
const liveRuns = new Map<string, LiveRun>();
let handlersInstalled = false;

function cleanupAllSync(): void {
  for (const run of liveRuns.values()) {
    run.killProcesses();
    deleteNamespacesWithPrefixSync(run.prefix);
    rmSync(run.dir, { recursive: true, force: true });
  }
  liveRuns.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // 'exit' also fires after an uncaught exception or process.exit(); signals do
  // not, so they clean up and then exit with the conventional 128+signal code.
  process.on('exit', cleanupAllSync);
  const onSignal = (signal: NodeJS.Signals, code: number) => () => {
    process.stderr.write(`testbed: ${signal} received, removing test namespaces\n`);
    cleanupAllSync();
    process.exit(code);
  };
  process.once('SIGINT', onSignal('SIGINT', 130));
  process.once('SIGTERM', onSignal('SIGTERM', 143));
  process.once('SIGHUP', onSignal('SIGHUP', 129));
}

/** Registers a run so that its namespaces go away however this process ends. */
export function registerRun(run: LiveRun): void {
  installHandlers();
  liveRuns.set(run.prefix, run);
}

export function unregisterRun(prefix: string): void {
  liveRuns.delete(prefix);
}
