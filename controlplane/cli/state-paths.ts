// Files a router keeps in its state directory (--state-dir, env
// WEAVE_STATE_DIR, default /var/lib/weave). Several routers on one machine
// use separate state directories.
import { join } from 'node:path';

export const DEFAULT_STATE_DIR = '/var/lib/weave';

export interface StatePaths {
  dir: string;
  /** Process id of the running weaver, written by weaver itself. */
  pidFile: string;
  /** weaver's stdout/stderr when started by `weave launch`. */
  logFile: string;
  /** The persisted peer name, so a restarted router rejoins under the same name. */
  peerNameFile: string;
  /** Direct peers (targets), persisted for --resume. */
  targetsFile: string;
}

export function statePaths(dir: string): StatePaths {
  return {
    dir,
    pidFile: join(dir, 'weaver.pid'),
    logFile: join(dir, 'weaver.log'),
    peerNameFile: join(dir, 'peer-name'),
    targetsFile: join(dir, 'targets.json'),
  };
}
