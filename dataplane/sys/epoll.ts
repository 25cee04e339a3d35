// epoll and eventfd (linux/eventpoll.h, linux/eventfd.h): the constants and the
// struct epoll_event layout, for the netlink poller and the sleeve worker.
import * as libc from './libc.js';

export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x001;
/** EPOLLONESHOT: disarm after one report, so a readable socket nobody waits on does not spin the worker. */
export const EPOLLONESHOT = 1 << 30;
export const EPOLL_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

/** struct epoll_event is packed (12 bytes) on x86_64 only; elsewhere u64 data is 8-aligned (16 bytes). */
export const EPOLL_EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
const EVENT_DATA_OFFSET = process.arch === 'x64' ? 4 : 8;

/** epoll_ctl with the fd itself as the event's data; returns the raw C result. */
export function epollControl(epfd: number, op: number, fd: number, events: number): number {
  const ev = Buffer.alloc(EPOLL_EVENT_SIZE);
  ev.writeUInt32LE(events, 0);
  ev.writeUInt32LE(fd, EVENT_DATA_OFFSET);
  return libc.epollCtl(epfd, op, fd, ev);
}

/** The fd of the `index`th event epoll_wait filled in. */
export function readyFd(events: Buffer, index: number): number {
  return events.readUInt32LE(index * EPOLL_EVENT_SIZE + EVENT_DATA_OFFSET);
}
