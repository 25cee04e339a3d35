// The weave-net / weave-ipam CNI plugin as runtimes run it: installed with
// installCni into a private bin dir, executed with the CNI environment and the
// config on stdin (CNI spec 1.1 "Parameters"), inside a simulated host's
// namespace so it reaches that host's router at 127.0.0.1:6784.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WEAVE_VERSION } from '../../controlplane/api/version.js';
import { installCni } from '../../controlplane/cni/install.js';
import type { NamespaceRunner } from '../netns/lib/index.js';

const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Where Debian's containernetworking-plugins live (portmap, host-local). */
export const SYSTEM_CNI_DIR = '/usr/lib/cni';

export interface InstalledPlugin {
  binDir: string;
  confDir: string;
  /** CNI_PATH for the plugin: our bin dir, then the system plugins. */
  cniPath: string;
}

/** Installs the plugin (bundle, wrapper, weave-net/weave-ipam symlinks, conflist) under `dir`. */
export function installPlugin(dir: string): InstalledPlugin {
  const binDir = join(dir, 'cni-bin');
  const confDir = join(dir, 'cni-conf');
  mkdirSync(confDir, { recursive: true });
  installCni({ binDir, confDir, version: WEAVE_VERSION, sourceRoot: PROJECT_ROOT, nodeBinary: process.execPath, copyNode: false, hairpinMode: true });
  return { binDir, confDir, cniPath: `${binDir}:${SYSTEM_CNI_DIR}` };
}

export interface CniCall {
  command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';
  containerId?: string;
  netns?: string;
  ifname?: string;
  config: Record<string, unknown> | string;
  /** Extra or overriding variables; a value of '' removes the variable. */
  env?: Record<string, string>;
}

export interface CniOutcome {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json?: Record<string, unknown>;
  ms: number;
}

/** Runs `plugin` (weave-net or weave-ipam) in `where`'s namespace. */
export async function runCni(where: NamespaceRunner, installed: InstalledPlugin, plugin: 'weave-net' | 'weave-ipam', call: CniCall): Promise<CniOutcome> {
  const env: Record<string, string> = { CNI_COMMAND: call.command, CNI_PATH: installed.cniPath };
  if (call.containerId !== undefined) env.CNI_CONTAINERID = call.containerId;
  if (call.netns !== undefined) env.CNI_NETNS = call.netns;
  if (call.ifname !== undefined) env.CNI_IFNAME = call.ifname;
  Object.assign(env, call.env ?? {});
  const input = typeof call.config === 'string' ? call.config : JSON.stringify(call.config);
  const start = performance.now();
  // env -u drops variables a test wants absent (execCommand merges over ours).
  const unset = Object.entries(env).filter(([, v]) => v === '').flatMap(([k]) => ['-u', k]);
  const r = await where.exec('env', [...unset, join(installed.binDir, plugin)], { env, input, timeoutMs: 60_000 });
  const ms = performance.now() - start;
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { ...r, json, ms };
}
