// runInVm: run one command inside the kernel lab VM (test/vm/kernel-lab.sh), whose Debian
// kernel has the openvswitch datapath and ESP that the build machines' kernel lacks.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

export interface VmOptions {
  /** Seconds before the VM is killed (default 600). */
  timeoutS?: number;
  /** Guest memory (default 2048). */
  memMb?: number;
  /** Guest vCPUs (default 2). */
  cpus?: number;
  /** Host folder mounted read-write at /out in the guest (default: a throwaway folder). */
  outDir?: string;
  /** Directory the command runs in, on host and guest alike (default: the project root). */
  cwd?: string;
}

export interface VmResult {
  /** The command's exit status; VM_NO_STATUS when the guest never reported one. */
  code: number;
  /** The command's stdout and stderr, merged. */
  stdout: string;
  /** The harness's own messages: first-run setup and, on boot failure, the console tail. */
  stderr: string;
  durationMs: number;
}

/** Exit status of kernel-lab.sh when the guest reported none (did not boot, or timed out). */
export const VM_NO_STATUS = 99;

// dist/test/vm/kernel-lab.js -> <root>/test/vm/kernel-lab.sh
export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const script = join(projectRoot, 'test', 'vm', 'kernel-lab.sh');

// Extra time the host allows beyond the guest timeout, for the first run's kernel download.
const SETUP_ALLOWANCE_S = 300;

export function runInVm(command: readonly string[], opts: VmOptions = {}): Promise<VmResult> {
  if (command.length === 0) return Promise.reject(new Error('runInVm: empty command (pass at least the program to run)'));
  // The guest reads its argv one line per argument.
  const bad = command.find((a) => a.includes('\n'));
  if (bad !== undefined) return Promise.reject(new Error(`runInVm: argument ${JSON.stringify(bad)} contains a newline (pass it in a file under outDir instead)`));
  const timeoutS = opts.timeoutS ?? 600;
  const args = ['-t', String(timeoutS), '-m', String(opts.memMb ?? 2048), '-c', String(opts.cpus ?? 2)];
  if (opts.outDir) args.push('-o', opts.outDir);
  args.push('--', ...command);
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(script, args, { cwd: opts.cwd ?? projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const killer = setTimeout(() => {
      stderr += `\nrunInVm: ${script} still running ${timeoutS + SETUP_ALLOWANCE_S} s after start; killed\n`;
      child.kill('SIGKILL');
    }, (timeoutS + SETUP_ALLOWANCE_S) * 1000);
    child.on('error', (e) => { clearTimeout(killer); reject(new Error(`runInVm: cannot start ${script}: ${e.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolvePromise({ code: code ?? (signal ? VM_NO_STATUS : 0), stdout, stderr, durationMs: Date.now() - started });
    });
  });
}
