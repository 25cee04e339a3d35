// Takes every connection waiting in a listening socket's accept queue at once.
//
// Why: libuv accepts one connection per turn of the event loop (libuv#3696,
// Node 20 on), counting on the listening socket to be reported ready again on
// the next turn. A router whose turns are long (a hub while the mesh forms, on
// a loaded host) then accepts one peer per turn while the others wait in the
// kernel's queue, already connected from their side: the 50-router mesh
// benchmark saw 20 of them queued at the hub for over 10 s, until each gave up
// waiting for our protocol header (spec §1.2) and backed off. Weave's Go
// router accepts in a loop of its own, as this does.
import { Errno } from '../netlink/errors.js';
import { accept4, lastErrno, SOCK_CLOEXEC, SOCK_NONBLOCK } from './libc.js';

/**
 * Accepts up to `max` connections waiting on the listening socket `listenFd`
 * without blocking; returns their descriptors, non-blocking and close-on-exec
 * (as libuv makes its own), for `new net.Socket({ fd })`. Stops at an empty
 * queue, and at any error other than a connection aborted before it was taken:
 * libuv's own accept on the next turn meets that error and reports it.
 */
export function acceptWaiting(listenFd: number, max: number): number[] {
  const fds: number[] = [];
  while (fds.length < max) {
    const fd = accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      fds.push(fd);
      continue;
    }
    const errno = lastErrno();
    if (errno === Errno.ECONNABORTED || errno === Errno.EINTR) continue;
    break;
  }
  return fds;
}
