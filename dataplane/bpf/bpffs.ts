// Making sure a pin directory lives on a BPF filesystem: /sys/fs/bpf is not
// mounted on every system, so mount it (idempotently) before pinning.

import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import * as c from './libbpf.js';

export const DEFAULT_BPFFS_ROOT = '/sys/fs/bpf';

/** True when `path` is on a bpffs mount. */
export function isOnBpffs(path: string): boolean {
  const buf = Buffer.alloc(128); // struct statfs is 120 bytes on x86-64; f_type comes first
  if (c.statfs(path, buf) !== 0) return false;
  return Number(buf.readBigInt64LE(0)) === c.BPF_FS_MAGIC;
}

function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p)) p = dirname(p);
  return p;
}

function mountBpffs(target: string): void {
  if (c.mount('bpf', target, 'bpf', 0, null) !== 0) {
    throw new Error(`cannot mount bpffs on ${target} (errno ${c.lastErrno()}); needs root/CAP_SYS_ADMIN, or mount it yourself: mount -t bpf bpf ${target}`);
  }
}

/**
 * Creates `pinDir` on a bpffs. Under /sys/fs/bpf that means mounting bpffs on
 * /sys/fs/bpf when absent; elsewhere the directory must already be on a bpffs
 * or becomes a bpffs mount point itself.
 */
export function ensurePinDir(pinDir: string): void {
  if (pinDir === DEFAULT_BPFFS_ROOT || pinDir.startsWith(DEFAULT_BPFFS_ROOT + '/')) {
    if (!isOnBpffs(DEFAULT_BPFFS_ROOT)) mountBpffs(DEFAULT_BPFFS_ROOT);
  } else if (!isOnBpffs(nearestExisting(pinDir))) {
    mkdirSync(pinDir, { recursive: true });
    mountBpffs(pinDir);
  }
  mkdirSync(pinDir, { recursive: true });
  if (!isOnBpffs(pinDir)) throw new Error(`pin directory ${pinDir} is not on a bpffs mount`);
}
