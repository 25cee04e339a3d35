// Takes every connection waiting in a listening socket's accept queue at once.
//
// Why: libuv accepts one connection per turn of the event loop (libuv#3696,
// Node 20 on), counting on the listening socket to be reported ready again on
// the next turn. A router whose turns are long (a hub while the mesh forms, on
// a loaded host) then accepts one peer per turn while the others wait in the
// kernel's queue, already connected from their side: the 50-router mesh
// benchmark saw 20 of them queued at the hub for over 10 s, until each gave up
// waiting for our protocol header (spec §1.2) and backed off. Weave's Go
// router accepts in a loop of its own, as this does. Every stream server the
// router opens takes its queue this way (the mesh port, the HTTP API, weaveDNS
// over TCP, the Docker proxy and plugins): a CNI ADD or `docker run` burst
// meets the same one-per-turn wait on a busy router.
import { Socket, type Server } from 'node:net';
import { Errno } from '../netlink/errors.js';
import { accept4, lastErrno, SOCK_CLOEXEC, SOCK_NONBLOCK } from './libc.js';

/**
 * Accepts up to `max` connections waiting on the listening socket `listenFd`
 * without blocking; returns their descriptors, non-blocking and close-on-exec
 * (as libuv makes its own), for `new net.Socket({ fd })`. Stops at an empty
 * queue, and at any error other than a connection aborted before it was taken:
 * libuv's own accept on the next turn meets that error and reports it.
 */
function acceptWaiting(listenFd: number, max: number): number[] {
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

/**
 * Connections a server takes from its queue in one turn beyond the one Node
 * gave it: enough for a burst of CNI ADDs or peers, and a bound on the work
 * one turn does (the kernel's queue keeps the rest, as it holds up to 511).
 */
export const MAX_TAKEN_PER_TURN = 64;

/**
 * Makes `server` take every connection waiting in its accept queue (at most
 * `maxPerTurn`) each time Node hands it one, and hand each to its own
 * 'connection' listeners, as Node's are: an HTTP or TLS server serves them as
 * usual. Node does not count them in `server.getConnections()`. Without the
 * listening descriptor (not listening, or a Node that keeps it elsewhere) the
 * server is left to libuv's own accept.
 */
export function takeQueuedConnections(server: Server, maxPerTurn = MAX_TAKEN_PER_TURN): void {
  let draining = false;
  server.on('connection', () => {
    if (draining) return; // one of ours, injected below
    const fd = listeningFd(server);
    if (fd === undefined) return;
    draining = true;
    try {
      for (const queued of acceptWaiting(fd, maxPerTurn)) {
        server.emit('connection', new Socket({ fd: queued, readable: true, writable: true }));
      }
    } finally {
      draining = false;
    }
  });
}

/** The listening socket's descriptor, which Node keeps on the server's handle; undefined when not listening. */
function listeningFd(server: Server): number | undefined {
  const fd = (server as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}
