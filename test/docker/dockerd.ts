// A private Docker daemon for tests: its own data root, exec root and socket under /tmp, no
// iptables rules, no default bridge and no IP forwarding, so it touches nothing outside its
// folder. Start it with startDockerd(), always stop() it (tests do so in `after`).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
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
  /** Stops the daemon (SIGTERM, as a service restart does) and starts it again on the same folder. */
  restart(): Promise<void>;
}

export interface DockerdOptions {
  startTimeoutMs?: number;
  /**
   * Network namespace (`ip netns` name) to run the daemon in: a simulated host, whose
   * containers then join that host's network (the plugin's veths are made there).
   */
  netns?: string;
  /**
   * A folder the daemon sees as /run/docker/plugins (bind-mounted in a private mount
   * namespace of its own), so each daemon on this machine finds its own host's plugin
   * sockets. dockerd has no flag for that directory.
   */
  pluginDir?: string;
  /** More daemon flags, e.g. TLS on a TCP address next to the unix socket. */
  extraArgs?: readonly string[];
}

/** Where dockerd looks for plugin sockets (fixed in dockerd). */
export const DOCKER_PLUGIN_DIR = '/run/docker/plugins';

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
  const started = Date.now();
  const daemonArgs = [
    '--storage-driver=vfs', '--iptables=false', '--ip-masq=false', '--ip-forward=false', '--bridge=none',
    `--data-root=${join(dir, 'data')}`, `--exec-root=${join(dir, 'exec')}`, `--pidfile=${join(dir, 'dockerd.pid')}`,
    `-H`, `unix://${socket}`, ...(opts.extraArgs ?? []),
  ];
  let command = ['dockerd', ...daemonArgs];
  if (opts.netns !== undefined || opts.pluginDir !== undefined) {
    // A private mount namespace: the plugin folder bound over /run/docker/plugins, and, since
    // `ip netns exec` mounts a fresh /sys (hiding the cgroup hierarchies dockerd needs), the
    // cgroup tree bound aside first and back into the new /sys afterwards.
    const pluginDir = opts.pluginDir ?? '';
    if (opts.pluginDir !== undefined) {
      mkdirSync(DOCKER_PLUGIN_DIR, { recursive: true });
      mkdirSync(opts.pluginDir, { recursive: true });
    }
    const stash = join(dir, 'cgroup');
    const inner = opts.netns !== undefined
      ? `exec ip netns exec "$n" sh -c 'mount --rbind "$0" /sys/fs/cgroup && exec dockerd "$@"' "$s" "$@"`
      : 'exec dockerd "$@"';
    const script = 'p=$0; s=$1; n=$2; shift 2; ' +
      '{ [ -z "$p" ] || mount --bind "$p" ' + DOCKER_PLUGIN_DIR + '; } && mkdir -p "$s" && mount --rbind /sys/fs/cgroup "$s" && ' + inner;
    command = ['unshare', '-m', '--propagation', 'private', 'sh', '-c', script, pluginDir, stash, opts.netns ?? '', ...daemonArgs];
  }
  // unshare, sh and `ip netns exec` all exec: the child's pid is dockerd's.
  const launch = (): ChildProcess => {
    const logFd = openSync(logPath, 'a');
    const c = spawn(command[0]!, command.slice(1), { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    return c;
  };
  let child = launch();
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

  const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
  const answered = (): Promise<unknown> => pollUntil(`dockerd to answer /_ping on ${socket}`, startTimeoutMs, async () => {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`dockerd exited (${child.exitCode ?? child.signalCode}) before answering; log:\n${tail(log())}`);
    }
    return (await ping(socket)) ? true : undefined;
  }, 100);
  const restart = async (): Promise<void> => {
    child.kill('SIGTERM');
    if (!(await waitForExit(child, 30_000))) {
      child.kill('SIGKILL');
      await waitForExit(child, 5_000);
    }
    child = launch();
    await answered();
  };
  try {
    await answered();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    await stop();
    throw new Error(`${msg}${msg.includes('log:') ? '' : `\ndockerd log:\n${tail(log())}`}`);
  }
  return { dir, socket, host, startMs: Date.now() - started, docker, log, stop, restart };
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
