// `weave setup` on a systemd host: a `weave.service` unit that launches the
// router at boot and launches it again when it dies, as Weave's router
// container did with Docker's `--restart=always` policy. The router runs as
// `weave launch` starts it (a daemon with a pid file), so the unit is of type
// forking; peers and launch flags come from an environment file the user edits.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../atomic-file.js';
import { statePaths } from './state-paths.js';

export const UNIT_NAME = 'weave.service';
export const DEFAULT_UNIT_DIR = '/etc/systemd/system';
/** Where the unit reads WEAVE_PEERS and WEAVE_LAUNCH_ARGS (Debian's place for a service's settings). */
export const DEFAULT_ENVIRONMENT_FILE = '/etc/default/weave';
/** sd_booted(3): systemd runs this machine when this directory exists. */
const SYSTEMD_RUNTIME_DIR = '/run/systemd/system';
/** dist/controlplane/cli/systemd-unit.js -> bin/weave */
const WEAVE_CLI = fileURLToPath(new URL('../../../bin/weave', import.meta.url));
/** Seconds between a router's death and its relaunch: long enough not to spin on a router that dies at start. */
const RESTART_DELAY_S = 5;

export interface UnitOptions {
  /** The router's state directory (WEAVE_STATE_DIR): its pid file tells systemd which process is the router. */
  stateDir: string;
  environmentFile: string;
  /** node and the weave CLI, absolute (systemd runs no shell and searches no PATH of the user's). */
  nodePath: string;
  weaveCli: string;
}

export function systemdUnitText(o: UnitOptions): string {
  const weave = `${o.nodePath} ${o.weaveCli}`;
  return [
    '# Installed by `weave setup`. Peers and launch flags: ' + o.environmentFile,
    '[Unit]',
    'Description=Weave Net router',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=forking',
    `Environment=WEAVE_STATE_DIR=${o.stateDir}`,
    // The leading '-': without the file the router launches with no peers (add them with weave connect).
    `EnvironmentFile=-${o.environmentFile}`,
    `PIDFile=${statePaths(o.stateDir).pidFile}`,
    // Unbraced $VAR: systemd splits the value into words, one flag or peer each.
    `ExecStart=${weave} launch $WEAVE_LAUNCH_ARGS $WEAVE_PEERS`,
    `ExecStop=${weave} stop`,
    // A router that dies (crash, kill -9) comes back; `weave stop` ends it cleanly and it stays stopped.
    'Restart=on-failure',
    `RestartSec=${RESTART_DELAY_S}s`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

const ENVIRONMENT_FILE_TEXT = `# Read by ${UNIT_NAME} (weave setup).
# The peers to connect to, separated by spaces, e.g. WEAVE_PEERS="10.0.0.2 10.0.0.3"
WEAVE_PEERS=""
# Other weave launch flags, e.g. WEAVE_LAUNCH_ARGS="--ipalloc-range 10.32.0.0/12"
WEAVE_LAUNCH_ARGS=""
`;

export interface InstallUnitOptions {
  stateDir: string;
  unitDir?: string;
  environmentFile?: string;
}

export interface InstalledUnit {
  unitPath: string;
  /** Written now; an existing file holds the user's settings and is kept. */
  environmentFile: { path: string; written: boolean };
}

/** Writes the unit (replacing an older one atomically) and, when absent, the environment file. */
export function installSystemdUnit(o: InstallUnitOptions): InstalledUnit {
  const unitDir = o.unitDir ?? DEFAULT_UNIT_DIR;
  const environmentFile = o.environmentFile ?? DEFAULT_ENVIRONMENT_FILE;
  mkdirSync(unitDir, { recursive: true });
  const unitPath = join(unitDir, UNIT_NAME);
  // Durable: the unit is for starting the router after a reboot; written once by weave setup.
  const text = systemdUnitText({ stateDir: o.stateDir, environmentFile, nodePath: process.execPath, weaveCli: WEAVE_CLI });
  writeFileAtomic(unitPath, text, { durable: true, mode: 0o644 });
  const written = !existsSync(environmentFile);
  if (written) {
    mkdirSync(dirname(environmentFile), { recursive: true });
    writeFileSync(environmentFile, ENVIRONMENT_FILE_TEXT, { mode: 0o644 });
  }
  return { unitPath, environmentFile: { path: environmentFile, written } };
}

export function systemdRunning(): boolean {
  return existsSync(SYSTEMD_RUNTIME_DIR);
}
