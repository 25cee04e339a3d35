// Running commands for the simulated-hosts testbed: one call shape for "run it
// and tell me what happened", never throwing on a non-zero exit (tests assert
// on the code), but throwing when a set-up step the testbed itself needs fails.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Kill the command after this many milliseconds (default 30 s); the code is then 124. */
  timeoutMs?: number;
  /** Extra environment variables, merged over this process's environment; undefined removes one. */
  env?: Record<string, string | undefined>;
  /** Text written to the command's standard input. */
  input?: string;
  cwd?: string;
}

const defaultTimeoutMs = 30_000;

/** Runs `cmd args` to completion and collects its output. Never rejects for a non-zero exit. */
export function execCommand(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? defaultTimeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: stderr + `${cmd}: ${err.message}\n` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        resolve({ code: 124, stdout, stderr: stderr + `${cmd}: killed after ${opts.timeoutMs ?? defaultTimeoutMs} ms\n` });
      } else {
        resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
      }
    });
    child.stdin.on('error', () => { /* the command may exit without reading its input */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like execCommand, but a non-zero exit is an error naming the command and its stderr. */
export async function mustExec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const r = await execCommand(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`testbed: '${[cmd, ...args].join(' ')}' exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r;
}

/** Synchronous variant for process-exit handlers, where nothing asynchronous runs any more. */
export function execCommandSync(cmd: string, args: readonly string[]): ExecResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** A long-running process started in a namespace; the testbed kills it at teardown. */
export interface SpawnedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything printed so far on stdout and stderr (kept for diagnostics). */
  output(): string;
  /** Resolves with the exit code (or 128+signal) once the process has ended. */
  exited: Promise<number>;
  kill(signal?: NodeJS.Signals): void;
}

export function spawnTracked(cmd: string, args: readonly string[], opts: ExecOptions = {}): SpawnedProcess {
  const child = spawn(cmd, args, {
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const exited = new Promise<number>((resolve) => {
    child.on('error', (err) => { out += `${cmd}: ${err.message}\n`; resolve(127); });
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  if (child.pid === undefined) {
    // spawn failed synchronously (e.g. ENOENT): surface it through `exited`.
    return { child, pid: -1, output: () => out, exited, kill: () => undefined };
  }
  const pid = child.pid;
  return {
    child,
    pid,
    output: () => out,
    exited,
    kill: (signal: NodeJS.Signals = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Polls `check` until it returns true or the deadline passes; returns whether it became true. */
export async function pollUntil(check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
