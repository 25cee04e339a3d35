// `weave setup` (user-surface spec §0.1, §7.4): where Weave pulled its images
// and installed the CNI plugin, this installs the CNI plugin (as
// `weave setup-cni`) and, on a host that systemd runs, the `weave.service`
// unit that keeps the router running (systemd-unit.ts).
// WEAVE_SYSTEMD_UNIT_DIR / WEAVE_SYSTEMD_ENV_FILE put the unit and its
// settings elsewhere (an image being built, a test); a unit directory given
// that way is written whether or not systemd runs here.
import { spawnSync } from 'node:child_process';
import { setupCniCommand, type SetupIo } from '../cni/setup-command.js';
import { stateDirFromEnv } from './launch-plan.js';
import { installSystemdUnit, systemdRunning, UNIT_NAME } from './systemd-unit.js';

export async function setupCommand(args: string[], io: SetupIo): Promise<number> {
  if (args.length > 0) {
    io.stderr.write(`weave setup: unknown argument ${args[0]} (usage: weave setup)\n`);
    return 1;
  }
  const cni = await setupCniCommand([], io);
  if (cni !== 0) return cni;
  const unitDir = io.env.WEAVE_SYSTEMD_UNIT_DIR || undefined;
  const systemd = systemdRunning();
  if (!systemd && unitDir === undefined) {
    io.stdout.write(`systemd is not running on this host: no ${UNIT_NAME} installed; start the router with weave launch\n`);
    return 0;
  }
  const installed = installSystemdUnit({ stateDir: stateDirFromEnv(io.env), unitDir, environmentFile: io.env.WEAVE_SYSTEMD_ENV_FILE || undefined });
  io.stdout.write(`installed ${installed.unitPath}\n`);
  const env = installed.environmentFile;
  io.stdout.write(env.written ? `installed ${env.path}: set WEAVE_PEERS and WEAVE_LAUNCH_ARGS there\n` : `kept existing ${env.path}\n`);
  if (systemd) {
    const reload = spawnSync('systemctl', ['daemon-reload'], { encoding: 'utf8' });
    if (reload.status !== 0) {
      io.stderr.write(`weave setup: systemctl daemon-reload failed: ${reload.stderr || reload.error?.message || `status ${reload.status}`}\n`);
      return 1;
    }
    io.stdout.write(`start the router now and at every boot with: systemctl enable --now ${UNIT_NAME}\n`);
  }
  return 0;
}
