// A root filesystem tarball holding only Debian's static busybox and its applet links: the
// image the docker and cni tests import, since the test machines reach no image registry.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, copyFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { mustRun } from './exec.js';

export const BUSYBOX = '/bin/busybox';
const cacheDir = process.env.WEAVE_TEST_CACHE ?? '/var/cache/weave-test';

/**
 * Returns the path of the busybox rootfs tarball, building it once per busybox binary
 * (the cache key is the binary's hash, so a busybox upgrade rebuilds it).
 */
export async function busyboxRootfsTarball(): Promise<string> {
  if (!existsSync(BUSYBOX)) {
    throw new Error(`${BUSYBOX} is missing: install Debian's busybox-static (apt-get install busybox-static, or run scripts/install-deps.sh)`);
  }
  const digest = createHash('sha256').update(readFileSync(BUSYBOX)).digest('hex').slice(0, 16);
  const tarball = join(cacheDir, `busybox-rootfs-${digest}.tar`);
  if (existsSync(tarball)) return tarball;

  mkdirSync(cacheDir, { recursive: true });
  const work = mkdtempSync(join(cacheDir, 'build-'));
  try {
    const root = join(work, 'rootfs');
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev', 'var/run']) {
      mkdirSync(join(root, d), { recursive: true });
    }
    copyFileSync(BUSYBOX, join(root, 'bin/busybox'));
    chmodSync(join(root, 'bin/busybox'), 0o755);
    chmodSync(join(root, 'tmp'), 0o1777);
    // `--list-full` names each applet with the directory it belongs in (bin/sh, usr/bin/awk).
    const applets = (await mustRun(BUSYBOX, ['--list-full'])).split('\n').filter((a) => a !== '' && a !== 'bin/busybox');
    for (const applet of applets) {
      mkdirSync(dirname(join(root, applet)), { recursive: true });
      symlinkSync('/bin/busybox', join(root, applet));
    }
    const partial = join(work, 'rootfs.tar');
    await mustRun('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', partial, '.']);
    // Renaming makes the cached tarball appear whole or not at all, even with concurrent builders.
    renameSync(partial, tarball);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return tarball;
}
