// Files a router keeps in its state directory (--state-dir, env
// WEAVE_STATE_DIR, default /var/lib/weave). Several routers on one machine
// use separate state directories.
import { join } from 'node:path';
import { IPAM_DATA_FILE } from '../ipam/persistence.js';

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
  /** `<peer name> <short id>`: a restarted router keeps its short id. */
  shortIdFile: string;
  /** The IPAM ring and this router's allocations. */
  ipamFile: string;
}

export function statePaths(dir: string): StatePaths {
  return {
    dir,
    pidFile: join(dir, 'weaver.pid'),
    logFile: join(dir, 'weaver.log'),
    peerNameFile: join(dir, 'peer-name'),
    targetsFile: join(dir, 'targets.json'),
    shortIdFile: join(dir, 'short-id'),
    ipamFile: join(dir, IPAM_DATA_FILE),
  };
}
