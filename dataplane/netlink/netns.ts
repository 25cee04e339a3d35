// Network namespace handles, and running short synchronous kernel calls inside
// another namespace.
//
// setns(2) with CLONE_NEWNET switches only the calling thread. Node's event loop
// thread switches, does its synchronous work (e.g. socket()), and switches back
// before returning to the loop, so no callback ever runs in the wrong namespace.
// A socket keeps the namespace it was created in for its whole life.

import { closeSync, openSync } from 'node:fs';
import * as libc from '../sys/libc.js';
import { NetlinkError } from './errors.js';

/**
 * The calling thread's own namespace. /proc/1/ns/net may be unreadable (and
 * PID 1 need not be in the host namespace), so never use it as "home".
 */
export const THREAD_NETNS_PATH = '/proc/thread-self/ns/net';

/** An open namespace file descriptor. Close it when done. */
export class NetnsHandle {
  private closed = false;

  constructor(
    readonly fd: number,
    readonly path: string,
  ) {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/** Resolves a bare name (as made by `ip netns add NAME`) to /run/netns/NAME; paths pass through. */
export function netnsPath(nameOrPath: string): string {
  if (nameOrPath.includes('/')) return nameOrPath;
  if (nameOrPath === '' || nameOrPath === '.' || nameOrPath === '..') {
    throw new RangeError(`invalid network namespace name ${JSON.stringify(nameOrPath)}`);
  }
  return `/run/netns/${nameOrPath}`;
}

/** Opens a namespace by name (/run/netns/NAME) or path (/proc/PID/ns/net, a bind mount). */
export function openNetns(nameOrPath: string): NetnsHandle {
  const path = netnsPath(nameOrPath);
  try {
    return new NetnsHandle(openSync(path, 'r'), path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`cannot open network namespace ${path}: ${err.code ?? err.message} (does the namespace exist?)`);
  }
}

/** Opens the calling thread's current namespace (to come back to it later). */
export function openCurrentNetns(): NetnsHandle {
  return openNetns(THREAD_NETNS_PATH);
}

function enter(fd: number, path: string): void {
  if (libc.setns(fd, libc.CLONE_NEWNET) !== 0) {
    throw new NetlinkError(libc.lastErrno(), `enter network namespace ${path} (setns)`);
  }
}

/**
 * Runs `fn` with the calling thread inside the given namespace and switches
 * back afterwards, even when `fn` throws. `fn` must be synchronous: an async
 * function would continue on the event loop after we switched back.
 */
export function withNetns<T>(target: NetnsHandle | string, fn: () => T): T {
  const handle = typeof target === 'string' ? openNetns(target) : target;
  const home = openCurrentNetns();
  try {
    enter(handle.fd, handle.path);
    let result: T;
    try {
      result = fn();
    } finally {
      // If this fails the thread is stranded in the wrong namespace; nothing
      // afterwards could be trusted, so fail loudly rather than carry on.
      if (libc.setns(home.fd, libc.CLONE_NEWNET) !== 0) {
        const errno = libc.lastErrno();
        process.emitWarning(`cannot return to the original network namespace (errno ${errno}); exiting`);
        process.abort();
      }
    }
    if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
      throw new TypeError('withNetns: fn must be synchronous (it returned a promise, whose continuation would run outside the namespace)');
    }
    return result;
  } finally {
    home.close();
    if (typeof target === 'string') handle.close();
  }
}
