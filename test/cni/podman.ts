// podman as a real CNI runtime for tests, configured entirely from a private folder under /tmp:
// its own containers.conf (CNI backend), storage.conf (vfs, private graph and run roots), CNI
// config dir holding one bridge + host-local network, and IPAM state. The network has no
// gateway, no masquerading and no routes, so container traffic cannot leave the bridge.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mustRun, runCommand, uniqueSuffix } from '../support/exec.js';
import type { CommandOptions } from '../support/exec.js';
import { busyboxRootfsTarball } from '../support/busybox-image.js';

export const PODMAN_BUSYBOX_IMAGE = 'localhost/weave-test/busybox:latest';
const CNI_PLUGIN_DIR = '/usr/lib/cni';
// The default rlimits podman asks for are refused on these machines.
export const PODMAN_ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'] as const;

export interface PodmanOptions {
  /** Container network, a private range (default 10.99.0.0/24). */
  subnet?: string;
  /** Use this conflist (its `name` becomes the network) instead of the private bridge + host-local one. */
  conflist?: { name: string } & Record<string, unknown>;
  /** Directories searched for CNI plugins, in order (default /usr/lib/cni). */
  pluginDirs?: string[];
  /**
   * Run podman inside this network namespace (a simulated host), so plugins reach that host's
   * services. nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup mounts runc needs.
   */
  namespace?: string;
}

export interface Podman {
  dir: string;
  /** CNI network name (also podman's default network in this configuration). */
  network: string;
  /** Host bridge the CNI bridge plugin creates for this network. */
  bridge: string;
  subnet: string;
  /** The CNI config dir holding `<network>.conflist`. */
  cniConfigDir: string;
  /** Environment that points podman at this configuration. */
  env: NodeJS.ProcessEnv;
  /** Runs podman with this configuration; resolves with stdout, rejects on non-zero exit. */
  podman(args: readonly string[], opts?: CommandOptions): Promise<string>;
  /** `podman run` with the ulimits this machine accepts, on this network unless args say otherwise. */
  run(args: readonly string[], opts?: CommandOptions): Promise<string>;
  /** Removes all containers, the bridge and the folder. Safe to call twice. */
  cleanup(): Promise<void>;
}

function requirePodman(): void {
  if (!existsSync('/usr/bin/podman')) throw new Error('podman is not installed: run scripts/install-deps.sh (or apt-get install podman)');
  for (const plugin of ['bridge', 'host-local']) {
    if (!existsSync(join(CNI_PLUGIN_DIR, plugin))) {
      throw new Error(`CNI plugin ${join(CNI_PLUGIN_DIR, plugin)} is missing: apt-get install containernetworking-plugins`);
    }
  }
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
}

export function setupPodman(opts: PodmanOptions = {}): Podman {
  requirePodman();
  const subnet = opts.subnet ?? '10.99.0.0/24';
  const run = uniqueSuffix();
  const dir = mkdtempSync('/tmp/weave-podman-');
  const network = opts.conflist?.name ?? `weave-test-${run}`;
  const bridge = `wtp${run}`;
  const cniConfigDir = join(dir, 'cni');
  for (const d of [cniConfigDir, join(dir, 'tmp'), join(dir, 'ipam')]) mkdirSync(d, { recursive: true });

  const conflist = opts.conflist ?? {
    cniVersion: '0.4.0',
    name: network,
    plugins: [{
      type: 'bridge',
      bridge,
      isGateway: false,
      ipMasq: false,
      hairpinMode: false,
      ipam: { type: 'host-local', ranges: [[{ subnet }]], routes: [], dataDir: join(dir, 'ipam') },
    }],
  };
  writeFileSync(join(cniConfigDir, `${network}.conflist`), JSON.stringify(conflist, null, 2) + '\n');

  const q = (s: string): string => JSON.stringify(s);
  writeFileSync(join(dir, 'containers.conf'), [
    '[containers]',
    'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]',
    '',
    '[network]',
    'network_backend = "cni"',
    `cni_plugin_dirs = [${(opts.pluginDirs ?? [CNI_PLUGIN_DIR]).map(q).join(', ')}]`,
    `network_config_dir = ${q(cniConfigDir)}`,
    // Naming our network as the default keeps podman from writing its own 10.88.0.0/16 one.
    `default_network = ${q(network)}`,
    `default_subnet = ${q(subnet)}`,
    '',
    '[engine]',
    'cgroup_manager = "cgroupfs"',
    // conmon's cleanup command sees only what podman passes on its command line (root, runroot,
    // tmp dir, ...), not this file: keep every state path derivable from those.
    'events_logger = "file"',
    `tmp_dir = ${q(join(dir, 'tmp'))}`,
    `volume_path = ${q(join(dir, 'volumes'))}`,
    'runtime = "runc"',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'storage.conf'), [
    '[storage]',
    'driver = "vfs"',
    `graphroot = ${q(join(dir, 'storage'))}`,
    `runroot = ${q(join(dir, 'run'))}`,
    '',
  ].join('\n'));

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONTAINERS_CONF: join(dir, 'containers.conf'),
    CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
  };
  delete env.XDG_RUNTIME_DIR;
  delete env.CONTAINER_HOST;
  const inNs = (args: readonly string[]): [string, string[]] =>
    (opts.namespace === undefined ? ['podman', [...args]] : ['nsenter', [`--net=/run/netns/${opts.namespace}`, 'podman', ...args]]);
  const podman = (args: readonly string[], o: CommandOptions = {}): Promise<string> =>
    mustRun(...inNs(args), { timeoutMs: 120_000, env, ...o });
  const runContainer = (args: readonly string[], o: CommandOptions = {}): Promise<string> =>
    podman(['run', ...PODMAN_ULIMITS, ...(args.some((a) => a.startsWith('--network')) ? [] : ['--network', network]), ...args], o);

  let done = false;
  const cleanup = async (): Promise<void> => {
    if (done) return;
    done = true;
    await runCommand(...inNs(['rm', '--all', '--force', '--time', '0']), { env, timeoutMs: 60_000 }).catch(() => undefined);
    if (!opts.conflist) await runCommand('ip', ['link', 'del', bridge]).catch(() => undefined);
    for (const m of mountsUnder(dir)) await runCommand('umount', ['-l', m]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, network, bridge, subnet, cniConfigDir, env, podman, run: runContainer, cleanup };
}

/** Imports the busybox rootfs as `tag` into this podman's private storage. */
export async function importBusyboxPodman(p: Podman, tag: string = PODMAN_BUSYBOX_IMAGE): Promise<string> {
  await p.podman(['import', await busyboxRootfsTarball(), tag]);
  return tag;
}
