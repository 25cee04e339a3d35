// A private Docker daemon for tests: its own data root, exec root and socket under /tmp, no
// iptables rules, no default bridge and no IP forwarding, so it touches nothing outside its
// folder. Start it with startDockerd(), always stop() it (tests do so in `after`).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { mustRun, runCommand, tail, pollUntil } from '../support/exec.js';
import type { CommandOptions } from '../support/exec.js';
import { busyboxRootfsTarball } from '../support/busybox-image.js';

export const BUSYBOX_IMAGE = 'weave-test/busybox:latest';

export interface Dockerd {
  /** The run's folder: data/, exec/, docker.sock, dockerd.pid, dockerd.log. */
  dir: string;
  socket: string;
  /** Value for `docker -H` / DOCKER_HOST. */
  host: string;
  /** How long the daemon took to answer /_ping. */
  startMs: number;
  /** Runs the docker CLI against this daemon; resolves with stdout, rejects on non-zero exit. */
  docker(args: readonly string[], opts?: CommandOptions): Promise<string>;
  /** The daemon's log so far (for failure messages). */
  log(): string;
  /** Removes all containers, stops the daemon and deletes its folder. Safe to call twice. */
  stop(): Promise<void>;
}

export interface DockerdOptions {
  startTimeoutMs?: number;
  /** Run the daemon inside this named network namespace, e.g. a testbed host's. */
  netns?: string;
  /** More daemon flags, e.g. TLS on a TCP address next to the unix socket. */
  extraArgs?: readonly string[];
}

function requireDockerd(): void {
  for (const bin of ['/usr/sbin/dockerd', '/usr/bin/dockerd']) if (existsSync(bin)) return;
  throw new Error('dockerd is not installed: run scripts/install-deps.sh (or apt-get install docker.io)');
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => { body += d; });
      res.on('end', () => resolve(res.statusCode === 200 && body === 'OK'));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
    req.end();
  });
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => { clearTimeout(timer); resolve(true); });
  });
}

/** Mount points at or below `dir`, deepest first (dockerd leaves netns and shm mounts behind). */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
}

export async function startDockerd(opts: DockerdOptions = {}): Promise<Dockerd> {
  requireDockerd();
  const dir = mkdtempSync('/tmp/weave-dockerd-');
  const socket = join(dir, 'docker.sock');
  const logPath = join(dir, 'dockerd.log');
  const logFd = openSync(logPath, 'a');
  const started = Date.now();
  const daemonArgs = [
    '--storage-driver=vfs', '--iptables=false', '--ip-masq=false', '--ip-forward=false', '--bridge=none',
    `--data-root=${join(dir, 'data')}`, `--exec-root=${join(dir, 'exec')}`, `--pidfile=${join(dir, 'dockerd.pid')}`,
    `-H`, `unix://${socket}`, ...(opts.extraArgs ?? []),
  ];
  // nsenter joins only the network namespace (`ip netns exec` would remount /sys and hide the
  // cgroup mounts dockerd needs), and execs dockerd, so the child is the daemon either way.
  const child = opts.netns === undefined
    ? spawn('dockerd', daemonArgs, { stdio: ['ignore', logFd, logFd] })
    : spawn('nsenter', [`--net=/run/netns/${opts.netns}`, 'dockerd', ...daemonArgs], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  // If the test process dies without stopping us, do not leave a daemon behind.
  const killOnExit = (): void => { child.kill('SIGKILL'); };
  process.once('exit', killOnExit);
  const log = (): string => (existsSync(logPath) ? readFileSync(logPath, 'utf8') : '');
  const host = `unix://${socket}`;
  const docker = (args: readonly string[], o: CommandOptions = {}): Promise<string> =>
    mustRun('docker', ['-H', host, ...args], { timeoutMs: 120_000, ...o });

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      const ids = await runCommand('docker', ['-H', host, 'ps', '-aq'], { timeoutMs: 20_000 }).catch(() => undefined);
      const list = ids?.code === 0 ? ids.stdout.split('\n').filter(Boolean) : [];
      if (list.length > 0) await runCommand('docker', ['-H', host, 'rm', '-f', ...list], { timeoutMs: 60_000 }).catch(() => undefined);
      child.kill('SIGTERM');
      if (!(await waitForExit(child, 30_000))) {
        child.kill('SIGKILL');
        await waitForExit(child, 5_000);
      }
    }
    process.removeListener('exit', killOnExit);
    for (const m of mountsUnder(dir)) await runCommand('umount', ['-l', m]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
    await pollUntil(`dockerd to answer /_ping on ${socket}`, startTimeoutMs, async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`dockerd exited (${child.exitCode ?? child.signalCode}) before answering; log:\n${tail(log())}`);
      }
      return (await ping(socket)) ? true : undefined;
    }, 100);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    await stop();
    throw new Error(`${msg}${msg.includes('log:') ? '' : `\ndockerd log:\n${tail(log())}`}`);
  }
  return { dir, socket, host, startMs: Date.now() - started, docker, log, stop };
}

/** Imports the busybox rootfs as `tag` (default weave-test/busybox:latest) into this daemon. */
export async function importBusybox(d: Dockerd, tag: string = BUSYBOX_IMAGE): Promise<string> {
  const tarball = await busyboxRootfsTarball();
  await d.docker(['import', tarball, tag]);
  return tag;
}

/** The host pid of a running container's first process. */
export async function containerPid(d: Dockerd, container: string): Promise<number> {
  const pid = Number((await d.docker(['inspect', '--format', '{{.State.Pid}}', container])).trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`container ${container} has no pid (is it running?)`);
  return pid;
}

/** The path of a running container's network namespace, as later tests attach containers. */
export async function containerNetnsPath(d: Dockerd, container: string): Promise<string> {
  return `/proc/${await containerPid(d, container)}/ns/net`;
}
