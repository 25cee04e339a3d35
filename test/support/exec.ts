// Running external commands from tests: one promise per command, and an error that names the
// command, its exit status and what it printed, so a failing test says what went wrong.
import { execFile } from 'node:child_process';

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  input?: string;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

const MAX_OUTPUT = 64 * 1024 * 1024;

/** Runs `file args...` and resolves with its output whatever its exit status. */
export function runCommand(file: string, args: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 120_000, maxBuffer: MAX_OUTPUT, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          // Not an exit status: the command could not start, or was killed (timeout).
          const why = err.killed ? `killed after ${opts.timeoutMs ?? 120_000} ms` : err.message;
          reject(new Error(`${describeCommand(file, args)}: ${why}${stderr ? `\n${tail(stderr)}` : ''}`));
          return;
        }
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs `file args...` and resolves with its stdout; rejects unless it exits 0. */
export async function mustRun(file: string, args: readonly string[], opts: CommandOptions = {}): Promise<string> {
  const r = await runCommand(file, args, opts);
  if (r.code !== 0) {
    throw new Error(`${describeCommand(file, args)} exited ${r.code}:\n${tail(r.stderr || r.stdout)}`);
  }
  return r.stdout;
}

export function describeCommand(file: string, args: readonly string[]): string {
  return [file, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The last `lines` lines of a text, for error messages. */
export function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** A short random suffix that makes names unique per test run (interfaces allow 15 chars). */
export function uniqueSuffix(length = 6): string {
  let s = '';
  while (s.length < length) s += Math.random().toString(36).slice(2);
  return s.slice(0, length);
}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function pollUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() >= deadline) {
      const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
