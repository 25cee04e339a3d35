// Replacing a state file whole: readers (and a router restarted after a
// crash) see the old content or the new, never a torn write.
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync, constants } from 'node:fs';
import { dirname } from 'node:path';

export interface AtomicWriteOptions {
  /**
   * Also survive a power loss, not only a crash of this process: the file is
   * fsynced before the rename and its directory after it. Each caller says
   * why it needs this (or why not: fsync costs milliseconds on a busy disk).
   */
  durable: boolean;
  /** Exact permissions of the new file, whatever the umask (default: 0o666 less the umask, as writeFileSync). */
  mode?: number;
  /**
   * Name the temporary file after this process, for files more than one
   * process may write at once (CNI plugins); otherwise it is `<path>.tmp`,
   * so a crash leaves at most one stale temporary that the next write reuses.
   */
  perProcessTemp?: boolean;
}

/** Write `data` to a temporary beside `path` (same filesystem), then rename it over `path`. */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions): void {
  const tmp = opts.perProcessTemp ? `${path}.tmp-${process.pid}` : `${path}.tmp`;
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, opts.mode ?? 0o666);
  try {
    try {
      if (opts.mode !== undefined) fchmodSync(fd, opts.mode);
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      if (opts.durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  if (opts.durable) {
    const dirFd = openSync(dirname(path), constants.O_RDONLY);
    try { fsyncSync(dirFd); } finally { closeSync(dirFd); }
  }
}
