// Starting and stopping weaver as a host daemon (user-surface spec §1.1
// steps 1-2 and 14, §1.2): no Docker, a pid file and a log file in the state
// directory.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { callRouter, RouterUnreachableError } from './api-client.js';
import type { LaunchPlan } from './launch-plan.js';
import { processAlive, runningPid } from './pid-file.js';
import { statePaths } from './state-paths.js';

/**
 * dist/controlplane/cli/daemon.js -> dist/weaver/start.cjs: the router's entry point, which loads the
 * router bundled in dist/router/ (scripts/bundle-router.mjs) after holding back its V8 flags
 * (weaver/v8-flags.cts), with V8's code cache for it (weaver/code-cache.cts).
 */
export const WEAVER_MAIN = fileURLToPath(new URL('../../weaver/start.cjs', import.meta.url));
/**
 * Node flags for the router process; bin/weaver, the plugin image's entry
 * point and the Kubernetes launcher pass the same.
 * - A 1 MiB young-generation semi-space (default 16) keeps an idle router's
 *   resident set ~15-20 MiB smaller; the router's hot paths allocate little,
 *   so the extra scavenges cost nothing measurable.
 * - The old generation may grow to 1.2x what survived the last full
 *   collection before the next one, instead of up to 4x on a host with this
 *   much memory. Under churn V8 otherwise let the heap swing by 5-10 MiB at
 *   a time: in a 30-minute soak one router's RSS stepped from 89 to 105 MiB
 *   (21 % over its level) while two beside it with this flag, or with a
 *   256 MiB old-space cap (which V8 also answers with a ~1.3x factor), stayed
 *   within 4.6 %, at the same CPU (200-204 s each). No cap, so no out-of-memory
 *   cliff for a router with a large state.
 * - Not --compact-on-every-full-gc: in an hour's soak it kept the old
 *   space's pages closer to what was live, but a compacting collection in a
 *   reconnection burst took RSS ~16 MiB over the level for a sample (worst
 *   drift 24-25 %, against 11.7 % for the router beside it without it).
 * - A function is optimised by TurboFan after 16x the bytecode V8 runs by
 *   default (interrupt budget 1056 KiB instead of 66 KiB). The router's work
 *   comes in bursts (a mesh forming, a reconnection) that made V8 optimise
 *   much code used for a moment: at 25 routers forming a mesh, TurboFan's
 *   thread took 16 % of all their CPU at V8's default. 4x the default cut the
 *   mesh of 25's CPU from 29.3-32.5 s to 22.9-28.4; at 50 routers TurboFan
 *   still took ~10 % of all CPU (perf), 112 compilations per router (median).
 *   16x: 40 compilations per router, and the mesh of 50 used a median of
 *   67 CPU s instead of 89 and connected in 31-47 s instead of 45-50 (five
 *   and six alternating runs); 64x was no better than 4x. Code that stays hot
 *   is still optimised within milliseconds (weaveDNS queries/s and sleeve
 *   throughput unchanged within noise).
 * The entry point sets them all back to V8's defaults while the modules load
 * and the router sets the run-time ones again (weaver/v8-flags.cts).
 */
export const WEAVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--heap-growing-percent=20', '--interrupt-budget=1081344'];
/**
 * Environment the router starts with unless the caller sets it: two malloc
 * arenas instead of glibc's eight per core. Each thread (libuv's pool, koffi's
 * async calls, the sleeve worker) would otherwise get an arena of its own,
 * each holding its own free memory; the soak measured 8 arenas holding 28 MB
 * for 11 MB in use, 2 arenas 23 MB for 10 MB. glibc reads it at process start,
 * so it cannot be set from inside the router.
 */
export const WEAVER_ENV_DEFAULTS: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * Removed from the router's environment: Node parses NODE_EXTRA_CA_CERTS at
 * every process start, before any module loads (Debian's bundle: 30-45 ms of
 * CPU and 1.6 MiB resident per router here), and the router opens no TLS
 * connection that would use it. The one it can open, to a Docker daemon over
 * TCP for the proxy's --tls flags, keeps it: a CA missing from ca.pem may be
 * trusted only through it.
 */
const UNUSED_BY_ROUTER = 'NODE_EXTRA_CA_CERTS';

/**
 * The environment the router starts with: WEAVER_ENV_DEFAULTS unless `env`
 * sets them, then `env`, with what the router never uses removed (set to
 * undefined, which child_process.spawn leaves out, so it also unsets a
 * variable when merged over another environment).
 */
export function weaverEnvironment(env: NodeJS.ProcessEnv, routerArgs: readonly string[]): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...WEAVER_ENV_DEFAULTS, ...env };
  const dockerTls = routerArgs.some((a) => a === '--tls' || a === '--tlsverify' || a.startsWith('--tls=') || a.startsWith('--tlsverify='));
  if (!dockerTls) out[UNUSED_BY_ROUTER] = undefined;
  return out;
}

export class LaunchError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

async function apiAnswers2xx(addr: string): Promise<boolean> {
  try {
    const res = await callRouter(addr, 'GET', '/status', { timeoutMs: 1000 });
    return res.code >= 200 && res.code < 300;
  } catch (err) {
    if (err instanceof RouterUnreachableError) return false;
    throw err;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The lines weaver wrote to stderr before dying (`weave: ...`), else the log's tail. */
function deathReason(logFile: string, fromByte: number): string {
  let text = '';
  try {
    text = readFileSync(logFile).subarray(fromByte).toString('utf8');
  } catch {
    return '';
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const own = lines.filter((l) => l.startsWith('weave: '));
  return (own.length > 0 ? own : lines.slice(-10)).join('\n');
}

export interface LaunchResult {
  pid: number;
}

/**
 * Start weaver detached and wait until GET /status answers 2xx (polling every
 * 0.1 s, spec §1.1 step 14) or the deadline passes.
 */
export async function launchDaemon(plan: LaunchPlan, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<LaunchResult> {
  const paths = statePaths(plan.stateDir);
  if (runningPid(paths.pidFile) !== undefined) {
    throw new LaunchError("weave is already running; you can stop it with 'weave stop'.", 3);
  }
  if (await apiAnswers2xx(plan.httpAddr)) throw new LaunchError('Weave Net is already running', 1);

  mkdirSync(paths.dir, { recursive: true });
  const logFd = openSync(paths.logFile, 'a');
  let logStart = 0;
  try {
    logStart = readFileSync(paths.logFile).length;
  } catch {
    // new file
  }
  const child = spawn(process.execPath, [...WEAVER_NODE_FLAGS, WEAVER_MAIN, ...plan.routerArgs], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: weaverEnvironment({ ...env, ...plan.routerEnv }, plan.routerArgs),
  });
  closeSync(logFd);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  child.unref();

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const early = await Promise.race([spawnError, delay(100).then(() => undefined)]);
    if (early) throw new LaunchError(`cannot start ${WEAVER_MAIN}: ${early.message}`, 1);
    if (exited) {
      const why = deathReason(paths.logFile, logStart);
      throw new LaunchError(`${why ? `${why}\n` : ''}The weave router has died. Consult the log file ${paths.logFile} for further details.`, 1);
    }
    if (await apiAnswers2xx(plan.httpAddr)) return { pid: child.pid ?? 0 };
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new LaunchError(
        `The weave router did not answer on http://${plan.httpAddr}/status within ${timeoutMs / 1000} s and was stopped. Consult the log file ${paths.logFile}.`,
        1,
      );
    }
  }
}

/** Sends `signal` to `pid`; false when there is no such process any more. */
function signalIfAlive(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

export type StopOutcome = 'stopped' | 'killed' | 'not-running';

/** SIGTERM the router, wait for it to exit (SIGKILL after the grace period), remove its pid file. */
export async function stopDaemon(stateDir: string, graceMs: number): Promise<StopOutcome> {
  const paths = statePaths(stateDir);
  const pid = runningPid(paths.pidFile);
  if (pid === undefined) {
    rmSync(paths.pidFile, { force: true });
    return 'not-running';
  }
  // It may exit between the pid-file check and the signal (ESRCH): then it is stopped already.
  if (!signalIfAlive(pid, 'SIGTERM')) {
    rmSync(paths.pidFile, { force: true });
    return 'stopped';
  }
  // The router is not our child, so there is no exit event to wait on: poll.
  const deadline = Date.now() + graceMs;
  while (processAlive(pid) && Date.now() < deadline) await delay(50);
  let outcome: StopOutcome = 'stopped';
  if (processAlive(pid)) {
    signalIfAlive(pid, 'SIGKILL');
    while (processAlive(pid)) await delay(20);
    outcome = 'killed';
  }
  rmSync(paths.pidFile, { force: true });
  return outcome;
}
