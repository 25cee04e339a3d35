// `weave setup-cni [--copy-node]` (user-surface spec §7.4 "Install"): installs
// the plugin into WEAVE_CNI_PLUGIN_DIR (default /opt/cni/bin) and the conflist
// into WEAVE_CNI_CONF_DIR (default /etc/cni/net.d); HAIRPIN_MODE=false turns
// hairpin off in the written conflist. --copy-node puts node.js itself in the
// bundle (the Kubernetes init step: the node has no node.js of its own).
import { fileURLToPath } from 'node:url';
import { WEAVE_VERSION } from '../api/version.js';
import { DEFAULT_CNI_BIN_DIR, DEFAULT_CNI_CONF_DIR, installCni } from './install.js';

export interface SetupIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

/** The project root: this file is dist/controlplane/cni/setup-command.js. */
const SOURCE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export async function setupCniCommand(args: string[], io: SetupIo): Promise<number> {
  const unknown = args.filter((a) => a !== '--copy-node');
  if (unknown.length > 0) {
    io.stderr.write(`weave setup-cni: unknown argument ${unknown[0]} (usage: weave setup-cni [--copy-node])\n`);
    return 1;
  }
  const report = installCni({
    binDir: io.env.WEAVE_CNI_PLUGIN_DIR || DEFAULT_CNI_BIN_DIR,
    confDir: io.env.WEAVE_CNI_CONF_DIR || DEFAULT_CNI_CONF_DIR,
    version: WEAVE_VERSION,
    sourceRoot: SOURCE_ROOT,
    nodeBinary: process.execPath,
    copyNode: args.includes('--copy-node'),
    hairpinMode: io.env.HAIRPIN_MODE !== 'false',
  });
  for (const p of report.written) io.stdout.write(`installed ${p}\n`);
  for (const p of report.removed) io.stdout.write(`removed ${p}\n`);
  if (report.keptConflist) io.stdout.write(`kept existing ${report.keptConflist}\n`);
  return 0;
}
