// Installing the plugin (user-surface spec §7.4 "Install"): a versioned bundle
// (the plugin as one ES module file, scripts/bundle-router.mjs, and node when
// the host has none) and wrapper `weave-plugin-<ver>` in the CNI bin dir,
// `weave-net` and `weave-ipam` as symlinks to it (a legacy regular file is
// replaced), the old `10-weave.conf` removed, and `10-weave.conflist` written
// when absent - never over a file the user has. Every file appears whole
// (written aside, renamed).
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { CONFLIST_VERSION } from './versions.js';

export const CONFLIST_NAME = '10-weave.conflist';
/** Weave 1.x wrote a single-plugin config under this name; it shadows the conflist, so it goes. */
export const LEGACY_CONF_NAME = '10-weave.conf';
export const PLUGIN_EXECUTABLES = ['weave-net', 'weave-ipam'] as const;
export const DEFAULT_CNI_BIN_DIR = '/opt/cni/bin';
export const DEFAULT_CNI_CONF_DIR = '/etc/cni/net.d';
/** The bundled plugin, under the project's root. */
const PLUGIN_BUNDLE = join('dist', 'router', 'weave-cni.js');
/** Its name in the installed bundle directory. */
const INSTALLED_PLUGIN = 'weave-cni.js';

export interface CniInstallOptions {
  binDir: string;
  confDir: string;
  version: string;
  /** The project's root: holds dist/router/weave-cni.js. */
  sourceRoot: string;
  /** The node binary the wrapper runs. */
  nodeBinary: string;
  /** Copy the node binary into the bundle (a Kubernetes node has no node.js of its own). */
  copyNode: boolean;
  /** `hairpinMode` of the written conflist (HAIRPIN_MODE, default true). */
  hairpinMode: boolean;
}

export interface CniInstallReport {
  /** Paths created or replaced. */
  written: string[];
  /** Paths removed. */
  removed: string[];
  /** Set when an existing conflist was left alone. */
  keptConflist?: string;
}

/** The conflist `weave setup-cni` writes: weave-net then portmap, chained. */
export function weaveConflist(hairpinMode: boolean): Record<string, unknown> {
  return {
    cniVersion: CONFLIST_VERSION,
    name: 'weave',
    plugins: [
      { name: 'weave', type: 'weave-net', hairpinMode },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
    ],
  };
}

/** The wrapper's text: runs the bundled entry point, passing the name it was run as ($0) to pick the plugin. */
export function wrapperScript(node: string, entry: string): string {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  return `#!/bin/sh\n# weave-net / weave-ipam CNI plugin: one program, chosen by the name it runs as.\nexec ${q(node)} ${q(entry)} "$0"\n`;
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export function installCni(opts: CniInstallOptions): CniInstallReport {
  const report: CniInstallReport = { written: [], removed: [] };
  mkdirSync(opts.binDir, { recursive: true });
  const bundleName = `.weave-net-ts-${opts.version}`;
  const bundle = join(opts.binDir, bundleName);
  const nodeInBundle = join(bundle, 'node');
  // A bundle of this version laid out otherwise (an earlier build's) has no INSTALLED_PLUGIN: replaced.
  if (!existsSync(join(bundle, INSTALLED_PLUGIN)) || (opts.copyNode && !existsSync(nodeInBundle))) {
    const tmp = `${bundle}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    cpSync(join(opts.sourceRoot, PLUGIN_BUNDLE), join(tmp, INSTALLED_PLUGIN));
    writeFileSync(join(tmp, 'package.json'), '{"type":"module"}\n');
    if (opts.copyNode) cpSync(opts.nodeBinary, join(tmp, 'node'));
    rmSync(bundle, { recursive: true, force: true });
    renameSync(tmp, bundle);
    report.written.push(bundle);
  }
  const node = opts.copyNode ? nodeInBundle : opts.nodeBinary;
  const wrapperName = `weave-plugin-${opts.version}`;
  const wrapper = join(opts.binDir, wrapperName);
  const text = wrapperScript(node, join(bundle, INSTALLED_PLUGIN));
  if (readOrUndefined(wrapper) !== text) {
    // Not durable: every launch installs it again; several installers may run at once.
    writeFileAtomic(wrapper, text, { durable: false, mode: 0o755, perProcessTemp: true });
    report.written.push(wrapper);
  }
  for (const name of PLUGIN_EXECUTABLES) {
    const link = join(opts.binDir, name);
    let current: string | undefined;
    try {
      current = readlinkSync(link);
    } catch {
      // absent, or a regular file (Weave 1.x copied the binary): replaced below
    }
    if (current === wrapperName) continue;
    const tmp = `${link}.tmp-${process.pid}`;
    rmSync(tmp, { force: true });
    symlinkSync(wrapperName, tmp);
    renameSync(tmp, link);
    report.written.push(link);
  }
  const legacy = join(opts.confDir, LEGACY_CONF_NAME);
  if (exists(legacy)) {
    rmSync(legacy, { force: true });
    report.removed.push(legacy);
  }
  const conflist = join(opts.confDir, CONFLIST_NAME);
  if (existsSync(opts.confDir)) {
    if (exists(conflist)) report.keptConflist = conflist;
    else {
      // Not durable: written only when absent, and every launch checks again.
      writeFileAtomic(conflist, `${JSON.stringify(weaveConflist(opts.hairpinMode), null, 2)}\n`, { durable: false, mode: 0o644, perProcessTemp: true });
      report.written.push(conflist);
    }
  }
  return report;
}
