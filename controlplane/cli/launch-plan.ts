// What `weave launch` hands to the router (user-surface spec §1.1 step 6,
// §4.4): the password moves from argv to the environment, WEAVE_* variables
// become flags, script-only options are consumed, the rest passes verbatim.
import { resolve } from 'node:path';
import { DEFAULT_BRIDGE, DEFAULT_HTTP_ADDR, DEFAULT_MESH_PORT } from '../well-known.js';
import { UsageError } from './usage.js';

export { DEFAULT_STATE_DIR } from './state-paths.js';
import { DEFAULT_STATE_DIR } from './state-paths.js';
export const DEFAULT_STATUS_ADDR = '127.0.0.1:6782';
/** The allocation range `weave launch` gives the router unless told otherwise (spec §4.4). */
export const DEFAULT_IPALLOC_RANGE = '10.32.0.0/12';
/** Where weaveDNS finds upstream servers unless `--resolv-conf` says otherwise (spec §4.4). */
export const HOST_RESOLV_CONF = '/etc/resolv.conf';
export const DEFAULT_DOCKER_BRIDGE = 'docker0';
/** The bridge name `weave launch` gives the router (Weave's fixed name, spec §0.2). */

export interface LaunchPlan {
  stateDir: string;
  httpAddr: string;
  routerArgs: string[];
  /** Environment additions for the router (WEAVE_PASSWORD). */
  routerEnv: Record<string, string>;
}

/** State directory for commands other than launch: WEAVE_STATE_DIR or the default. */
export function stateDirFromEnv(env: NodeJS.ProcessEnv): string {
  return resolve(env.WEAVE_STATE_DIR || DEFAULT_STATE_DIR);
}

/** The docker bridge (DOCKER_BRIDGE, default docker0), as Weave's script takes it (spec §4.4). */
export function dockerBridgeFromEnv(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_BRIDGE || DEFAULT_DOCKER_BRIDGE;
}

export function httpAddrFromEnv(env: NodeJS.ProcessEnv): string {
  return env.WEAVE_HTTP_ADDR || DEFAULT_HTTP_ADDR;
}

/** Options the script itself consumes, spelled with one or two dashes, value separate or after `=`. */
function takeValue(args: string[], i: number, names: string[]): { value: string; next: number } | undefined {
  const arg = args[i];
  for (const n of names) {
    for (const dashes of ['--', '-']) {
      if (arg === dashes + n) {
        if (i + 1 >= args.length) throw new UsageError(`weave launch: ${arg} needs a value`);
        return { value: args[i + 1], next: i + 2 };
      }
      if (arg.startsWith(`${dashes}${n}=`)) return { value: arg.slice(dashes.length + n.length + 1), next: i + 1 };
    }
  }
  return undefined;
}

/**
 * `dockerBridgeIp`: the IPv4 address of the docker bridge, where weaveDNS
 * listens (spec §4.4 `--dns-listen-address <docker0>:53`); without one the
 * router keeps its own default.
 */
export function planLaunch(args: string[], env: NodeJS.ProcessEnv, hostname: string, dockerBridgeIp?: string): LaunchPlan {
  let rangeGiven = false;
  let resolvConfGiven = false;
  let stateDir = stateDirFromEnv(env);
  let password = env.WEAVE_PASSWORD;
  let port = env.WEAVE_PORT || String(DEFAULT_MESH_PORT);
  const passThrough: string[] = [];
  for (let i = 0; i < args.length; ) {
    const pw = takeValue(args, i, ['password']);
    if (pw) {
      password = pw.value;
      i = pw.next;
      continue;
    }
    const p = takeValue(args, i, ['port']);
    if (p) {
      port = p.value;
      i = p.next;
      continue;
    }
    const sd = takeValue(args, i, ['state-dir']);
    if (sd) {
      if (sd.value === '') throw new UsageError('weave launch: --state-dir needs a directory');
      stateDir = resolve(sd.value);
      i = sd.next;
      continue;
    }
    const range = takeValue(args, i, ['ipalloc-range', 'iprange']);
    if (range) {
      passThrough.push('--ipalloc-range', range.value);
      rangeGiven = true;
      i = range.next;
      continue;
    }
    if (args[i] === '--no-plugin') {
      // The router takes the last --plugin it is given (spec §1.1 step 3).
      passThrough.push('--plugin=false');
      i++;
      continue;
    }
    if (takeValue(args, i, ['resolv-conf'])) resolvConfGiven = true;
    if (args[i] === '--no-proxy') {
      passThrough.push('--proxy=false');
      i++;
      continue;
    }
    if (args[i] === '--no-restart') {
      // Restart policies belong to the Docker launch; a host daemon has none.
      i++;
      continue;
    }
    passThrough.push(args[i]);
    i++;
  }
  const httpAddr = httpAddrFromEnv(env);
  const routerArgs = ['--port', port, '--nickname', hostname, '--docker-bridge', dockerBridgeFromEnv(env), '--weave-bridge', DEFAULT_BRIDGE, '--datapath', 'datapath'];
  if (env.WEAVE_MTU) routerArgs.push('--mtu', env.WEAVE_MTU);
  if (env.WEAVE_NO_FASTDP) routerArgs.push('--no-fastdp');
  if (env.WEAVE_NO_BRIDGED_FASTDP) routerArgs.push('--no-bridged-fastdp');
  // Weave's script forwarded AWSVPC to itself; here it becomes the router
  // flag, so the router's refusal (weaver/refused-flags.ts) explains it.
  if (env.AWSVPC) routerArgs.push('--awsvpc');
  routerArgs.push('--http-addr', httpAddr, '--status-addr', env.WEAVE_STATUS_ADDR || DEFAULT_STATUS_ADDR);
  routerArgs.push('--state-dir', stateDir);
  if (!rangeGiven) routerArgs.push('--ipalloc-range', DEFAULT_IPALLOC_RANGE);
  if (dockerBridgeIp) routerArgs.push('--dns-listen-address', `${dockerBridgeIp}:53`);
  // spec §1.1 step 3: the Docker plugin and the API proxy are on unless the user's
  // `--plugin=false`/`--no-plugin` (`--proxy=false`/`--no-proxy`) follows.
  routerArgs.push('--plugin', '--proxy');
  // Names outside weaveDNS's domain go to the host's own resolvers, as Weave's launch did.
  if (!resolvConfGiven) routerArgs.push('--resolv-conf', HOST_RESOLV_CONF);
  routerArgs.push(...passThrough);
  return { stateDir, httpAddr, routerArgs, routerEnv: password ? { WEAVE_PASSWORD: password } : {} };
}
