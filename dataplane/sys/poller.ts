// Waits for non-blocking sockets (netlink, fastdp heartbeats) to become
// readable without stalling Node's event loop.
//
// Why this shape: the sockets are non-blocking, so every recv runs directly on
// the event loop thread and returns at once (a reply to a request is usually
// already queued when sendto returns, so a request costs no thread hop). Only
// the *wait* for data blocks, and that wait runs as one epoll_wait on a koffi
// worker thread. One epoll set serves every socket in the process: koffi has a
// small worker pool (about one thread per core), so a blocking call per socket
// would let three idle event subscriptions starve every other async FFI call.
// An eventfd in the set wakes the worker when the last waiter goes away, so an
// idle process can exit. Measured here: a genl request/reply round trip costs
// about 35 µs this way (1000 CTRL_CMD_GETFAMILY calls in ~35 ms).

import * as libc from './libc.js';
import {
  EFD_CLOEXEC, EFD_NONBLOCK, EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, EPOLL_EVENT_SIZE, EPOLLIN, EPOLLONESHOT, epollControl, readyFd,
} from './epoll.js';

const MAX_EVENTS = 32;

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

class ReadinessPoller {
  private readonly epfd: number;
  private readonly wakeFd: number;
  private readonly waiters = new Map<number, Waiter>();
  private readonly registered = new Set<number>();
  private readonly events = Buffer.alloc(EPOLL_EVENT_SIZE * MAX_EVENTS);
  private waiting = false;

  constructor() {
    this.epfd = libc.epollCreate1(EPOLL_CLOEXEC);
    if (this.epfd < 0) throw new Error(`epoll_create1 failed: errno ${libc.lastErrno()}`);
    this.wakeFd = libc.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (this.wakeFd < 0) throw new Error(`eventfd failed: errno ${libc.lastErrno()}`);
    this.control(EPOLL_CTL_ADD, this.wakeFd, EPOLLIN);
  }

  private control(op: number, fd: number, events: number): number {
    return epollControl(this.epfd, op, fd, events) < 0 ? libc.lastErrno() : 0;
  }

  /** Resolves when `fd` has data to read. One waiter per fd at a time. */
  waitReadable(fd: number): Promise<void> {
    if (this.waiters.has(fd)) return Promise.reject(new Error(`fd ${fd} already has a pending read`));
    const op = this.registered.has(fd) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    const err = this.control(op, fd, EPOLLIN | EPOLLONESHOT);
    if (err !== 0) return Promise.reject(new Error(`epoll_ctl on fd ${fd} failed: errno ${err}`));
    this.registered.add(fd);
    return new Promise<void>((resolve, reject) => {
      this.waiters.set(fd, { resolve, reject });
      this.pump();
    });
  }

  /**
   * Ends a pending wait: rejects it with `reason` (close), or without one
   * resolves it early (a spurious wake-up; readers re-check and wait again).
   */
  cancel(fd: number, reason?: Error): void {
    const w = this.waiters.get(fd);
    this.waiters.delete(fd);
    if (w) {
      if (reason) w.reject(reason);
      else w.resolve();
    }
    if (this.waiters.size === 0 && this.waiting) this.wake();
  }

  /** Removes `fd` from the epoll set; call before closing it. */
  forget(fd: number, reason: Error): void {
    this.cancel(fd, reason);
    if (this.registered.delete(fd)) this.control(EPOLL_CTL_DEL, fd, 0);
  }

  private wake(): void {
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    libc.write(this.wakeFd, one, 8);
  }

  private pump(): void {
    if (this.waiting || this.waiters.size === 0) return;
    this.waiting = true;
    libc.epollWait.async(this.epfd, this.events, MAX_EVENTS, -1, (err: unknown, n: number) => {
      this.waiting = false;
      if (err) {
        for (const [fd, w] of this.waiters) {
          this.waiters.delete(fd);
          w.reject(new Error(`epoll_wait failed: ${String(err)}`));
        }
        return;
      }
      // n < 0 is EINTR (a signal); the loop simply waits again.
      for (let i = 0; i < n; i++) {
        const fd = readyFd(this.events, i);
        if (fd === this.wakeFd) {
          libc.read(this.wakeFd, Buffer.alloc(8), 8);
          continue;
        }
        const w = this.waiters.get(fd);
        this.waiters.delete(fd);
        w?.resolve();
      }
      this.pump();
    });
  }
}

let shared: ReadinessPoller | undefined;

/** The process-wide poller (created on first use). */
export function poller(): ReadinessPoller {
  shared ??= new ReadinessPoller();
  return shared;
}
