// `weave <command> ...`: dispatch and the commands that talk to the router
// (user-surface spec §0.3, §1.1-1.10, §1.13). Returns the exit status.
import { hostname } from 'node:os';
import { rmdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WEAVE_VERSION } from '../api/version.js';
import { callRouter, relayResponse, RouterUnreachableError, type ApiResponse } from './api-client.js';
import { launchDaemon, LaunchError, stopDaemon } from './daemon.js';
import { DEFAULT_NETWORK_NAME } from '../docker/plugin-protocol.js';
import { DNS_ENTRIES_FILE, DNS_JOURNAL_FILE } from '../dns/persistence.js';
import { pluginOffReason, removePluginNetwork } from './plugin-network.js';
import { hostCommands } from './host-commands.js';
import { dnsCommands } from './dns-commands.js';
import { envCommands } from './env-commands.js';
import { dockerBridgeFromEnv, httpAddrFromEnv, planLaunch, stateDirFromEnv } from './launch-plan.js';
import { DEFAULT_BRIDGE } from '../well-known.js';
import { statePaths } from './state-paths.js';
import { REMOVED_COMMANDS, USAGE, UsageError } from './usage.js';
import { setupCniCommand } from '../cni/setup-command.js';
import { setupCommand } from './setup-command.js';

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

type Command = (args: string[], io: CliIo) => Promise<number>;

const LAUNCH_TIMEOUT_MS = 30_000;
/** dist/controlplane/cli/run.js -> dist/weaver/host-reset.js: removes the bridge, veths and firewall table. */
const HOST_RESET_MAIN = fileURLToPath(new URL('../../weaver/host-reset.js', import.meta.url));
/** dist/controlplane/cli/run.js -> dist/weaver/bridge-ip.js: an interface's IPv4 address over netlink. */
const BRIDGE_IP_MAIN = fileURLToPath(new URL('../../weaver/bridge-ip.js', import.meta.url));
/** dist/controlplane/cli/run.js -> dist/weaver/bridge-type.js: the weave bridge's type from the kernel's links. */
const BRIDGE_TYPE_MAIN = fileURLToPath(new URL('../../weaver/bridge-type.js', import.meta.url));
/** dist/controlplane/cli/run.js -> dist/weaver/attach-bridge.js: joins another bridge to the weave bridge. */
const ATTACH_BRIDGE_MAIN = fileURLToPath(new URL('../../weaver/attach-bridge.js', import.meta.url));
const STOP_GRACE_MS = 10_000;

/**
 * WEAVE_DEBUG non-empty: Weave's script ran under `set -x`; here each step
 * that reaches outside the CLI (the command, router calls, the router's
 * command line) is written to stderr the same way, `+ ` first.
 */
function trace(io: CliIo, text: string): void {
  if (io.env.WEAVE_DEBUG) io.stderr.write(`+ ${text}\n`);
}

/** argv with the value of -password/--password shown as <redacted>, as the router logs it (spec §4.5). */
function redactPassword(argv: string[]): string[] {
  return argv.map((a, i) => {
    if (/^--?password=/.test(a)) return `${a.slice(0, a.indexOf('=') + 1)}<redacted>`;
    return i > 0 && /^--?password$/.test(argv[i - 1]) ? '<redacted>' : a;
  });
}

/** A router call; an unreachable router is reported once, here, with exit 1. */
async function call(io: CliIo, method: string, path: string, opts: Parameters<typeof callRouter>[3] = {}): Promise<ApiResponse | number> {
  const addr = httpAddrFromEnv(io.env);
  trace(io, `${method} ${addr}${path}${opts.form ? ` ${new URLSearchParams(opts.form).toString()}` : ''}`);
  try {
    return await callRouter(addr, method, path, opts);
  } catch (err) {
    if (!(err instanceof RouterUnreachableError)) throw err;
    const pidFile = statePaths(stateDirFromEnv(io.env)).pidFile;
    io.stderr.write(`weave router is not running: ${err.message}. Have you launched it? (pid file ${pidFile})\n`);
    return 1;
  }
}

/**
 * The docker bridge's IPv4 address (DOCKER_BRIDGE, default docker0), where
 * weaveDNS listens (spec §4.4). Read over netlink by a weaver helper, as
 * Weave's `weaveutil bridge-ip`: a bridge without carrier still has it.
 */
function dockerBridgeIp(env: NodeJS.ProcessEnv): string | undefined {
  const r = spawnSync(process.execPath, [BRIDGE_IP_MAIN, dockerBridgeFromEnv(env)], { encoding: 'utf8' });
  const ip = r.status === 0 ? r.stdout.trim() : '';
  return ip === '' ? undefined : ip;
}

/** `weave docker-bridge-ip`: the docker bridge's IPv4 address, no newline (spec §1.13). */
const dockerBridgeIpCommand: Command = async (args, io) => {
  if (args.length > 0) throw new UsageError();
  const ip = dockerBridgeIp(io.env);
  if (ip === undefined) {
    io.stderr.write(`weave: the docker bridge ${dockerBridgeFromEnv(io.env)} has no IPv4 address (set DOCKER_BRIDGE to name another)\n`);
    return 1;
  }
  io.stdout.write(ip);
  return 0;
};

/** `weave bridge-type`: `bridge`, `fastdp` or `bridged_fastdp`, nothing without a weave bridge (spec §1.13). */
const bridgeType: Command = async (args, io) => {
  if (args.length > 0) throw new UsageError();
  const r = spawnSync(process.execPath, [BRIDGE_TYPE_MAIN, DEFAULT_BRIDGE], { encoding: 'utf8' });
  io.stdout.write(r.stdout);
  io.stderr.write(r.stderr);
  return r.status ?? 1;
};

/** `weave attach-bridge [bridge]` (spec §1.13): the bridge defaults to DOCKER_BRIDGE (docker0). */
const attachBridgeCommand: Command = async (args, io) => {
  if (args.length > 1) throw new UsageError();
  const r = spawnSync(process.execPath, [ATTACH_BRIDGE_MAIN, DEFAULT_BRIDGE, args[0] ?? dockerBridgeFromEnv(io.env)], { encoding: 'utf8' });
  io.stdout.write(r.stdout);
  io.stderr.write(r.stderr);
  return r.status ?? 1;
};

const launch: Command = async (args, io) => {
  const plan = planLaunch(args, io.env, hostname(), dockerBridgeIp(io.env));
  trace(io, `weaver ${plan.routerArgs.join(' ')}`);
  try {
    const { pid } = await launchDaemon(plan, io.env, Number(io.env.WEAVE_LAUNCH_TIMEOUT_MS ?? LAUNCH_TIMEOUT_MS));
    const off = await pluginOffReason(plan.routerArgs, io.env);
    if (off !== undefined) io.stderr.write(`weave: the Docker plugin is off: ${off}\n`);
    io.stdout.write(`${pid}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof LaunchError)) throw err;
    io.stderr.write(`${err.message}\n`);
    return err.exitCode;
  }
};

const stop: Command = async (args, io) => {
  if (args.length > 0) throw new UsageError();
  const networkProblem = await removePluginNetwork(io.env, DEFAULT_NETWORK_NAME);
  if (networkProblem !== undefined) io.stderr.write(`${networkProblem}\n`);
  const outcome = await stopDaemon(stateDirFromEnv(io.env), STOP_GRACE_MS);
  if (outcome === 'not-running') io.stderr.write('Weave is not running (ignore on Kubernetes).\n');
  if (outcome === 'killed') io.stderr.write(`weave router did not stop within ${STOP_GRACE_MS / 1000} s of SIGTERM and was killed\n`);
  return 0;
};

function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
  }
}

const reset: Command = async (args, io) => {
  const force = args.length === 1 && args[0] === '--force';
  if (args.length > 0 && !force) throw new UsageError();
  const paths = statePaths(stateDirFromEnv(io.env));
  if (!force) {
    const res = await call(io, 'DELETE', '/peer');
    // A router that is not running is taken as already reset; 404 = nothing to hand over.
    if (typeof res !== 'number' && res.code !== 404 && (res.code < 200 || res.code >= 300)) {
      io.stderr.write(res.body);
      return 1;
    }
  }
  // spec §1.3 step 3: everything `weave stop` does, the plugin network first.
  const networkProblem = await removePluginNetwork(io.env, DEFAULT_NETWORK_NAME);
  if (networkProblem !== undefined) io.stderr.write(`${networkProblem}\n`);
  await stopDaemon(paths.dir, STOP_GRACE_MS);
  // Persisted identity, peer list and IPAM ring go with the reset (spec §1.3 step 4: Weave removed the volumes holding them).
  for (const f of [paths.peerNameFile, paths.shortIdFile, paths.targetsFile, paths.ipamFile, `${paths.ipamFile}.tmp`]) rmSync(f, { force: true });
  // The names this host owned go too (Weave's reset removed its database with them).
  for (const f of [DNS_ENTRIES_FILE, DNS_JOURNAL_FILE]) rmSync(join(paths.dir, f), { force: true });
  // Host networking (spec §1.3 step 6, §6.5): torn down with the router stopped, so nothing recreates it.
  const teardown = spawnSync(process.execPath, [HOST_RESET_MAIN, '--state-dir', paths.dir], { encoding: 'utf8' });
  if (teardown.status !== 0) {
    io.stderr.write(teardown.stderr || `weave: reset: ${HOST_RESET_MAIN} failed (${teardown.error?.message ?? `status ${teardown.status}`})
`);
    return 1;
  }
  // The log went with Weave's router container. The directory goes when nothing else is in it (files of the user's stay).
  rmSync(paths.logFile, { force: true });
  removeIfEmpty(paths.dir);
  return 0;
};

const status: Command = async (args, io) => {
  const sub = args.join('/');
  const res = await call(io, 'GET', sub === '' ? '/status' : `/status/${sub}`);
  if (typeof res === 'number') return res;
  if (res.code === 404) {
    io.stderr.write(`Invalid 'weave status' sub-command: ${args.join(' ')}\n${USAGE}`);
    return 1;
  }
  // spec §1.4: the summary is framed by blank lines, sub-views are not.
  const ok = res.code >= 200 && res.code < 300;
  if (sub === '' && ok) io.stdout.write('\n');
  const rc = relayResponse(res, io.stdout, io.stderr);
  if (sub === '' && ok) io.stdout.write('\n');
  return rc;
};

const report: Command = async (args, io) => {
  let path = '/report';
  if (args.length > 0) {
    if (args.length !== 2 || args[0] !== '-f') throw new UsageError();
    path = `/report?${new URLSearchParams({ format: args[1] }).toString()}`;
  }
  const res = await call(io, 'GET', path, { accept: 'application/json' });
  return typeof res === 'number' ? res : relayResponse(res, io.stdout, io.stderr);
};

function peerCommand(endpoint: '/connect' | '/forget'): Command {
  return async (args, io) => {
    const replace = endpoint === '/connect' && args[0] === '--replace';
    const peers = replace ? args.slice(1) : args;
    if (peers.length === 0 && !replace) throw new UsageError();
    const form: [string, string][] = peers.map((p) => ['peer', p]);
    if (replace) form.push(['replace', 'true']);
    const res = await call(io, 'POST', endpoint, { form });
    return typeof res === 'number' ? res : relayResponse(res, io.stdout, io.stderr);
  };
}

const version: Command = async (args, io) => {
  if (args.length > 0) throw new UsageError();
  io.stdout.write(`weave script ${WEAVE_VERSION}\n`);
  let routerVersion = WEAVE_VERSION;
  try {
    const res = await callRouter(httpAddrFromEnv(io.env), 'GET', `/report?${new URLSearchParams({ format: '{{.Version}}' }).toString()}`);
    if (res.code === 200) routerVersion = res.body.trim();
  } catch (err) {
    // Not running: report the installed router's version, as `weaver --version` would.
    if (!(err instanceof RouterUnreachableError)) throw err;
  }
  io.stdout.write(`weave ${routerVersion}\n`);
  return 0;
};

const COMMANDS: Record<string, Command> = {
  launch,
  stop,
  reset,
  status,
  report,
  connect: peerCommand('/connect'),
  forget: peerCommand('/forget'),
  version,
  setup: setupCommand,
  'setup-cni': setupCniCommand,
  'attach-bridge': attachBridgeCommand,
  'bridge-type': bridgeType,
  'docker-bridge-ip': dockerBridgeIpCommand,
  ...hostCommands(call),
  ...dnsCommands(call),
  ...envCommands(),
};

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  // `weave --local <cmd>` (spec §0.1): Weave's script then ran the command on this host instead
  // of in a weaveexec container; this weave always runs here, so both forms are one.
  const [cmd, ...args] = argv[0] === '--local' ? argv.slice(1) : argv;
  if (cmd === undefined) {
    io.stderr.write(USAGE);
    return 1;
  }
  if (cmd === 'help' || cmd === '--help' || (args[0] === '--help' && !['launch', 'version'].includes(cmd))) {
    io.stderr.write(USAGE);
    return 0;
  }
  if (REMOVED_COMMANDS.includes(cmd)) {
    io.stderr.write(`The 'weave ${cmd}' command has been removed as of Weave Net version 2.0\nPlease see release notes for further information\n`);
    return 1;
  }
  trace(io, `weave ${redactPassword(argv).join(' ')}`);
  const run = COMMANDS[cmd];
  if (run === undefined) {
    io.stderr.write(`Unknown weave command '${cmd}'\n${USAGE}`);
    return 1;
  }
  try {
    return await run(args, io);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`${err.message ? `${err.message}\n` : ''}${USAGE}`);
    return 1;
  }
}
