// The libc calls the data plane needs (netlink, sleeve and fastdp sockets,
// epoll, setns), bound once through koffi. Every function
// returns the raw C result; callers read errno with `lastErrno()` right after
// the call, on the same thread (synchronous calls only: an async call runs on
// a koffi worker thread whose errno we cannot read reliably).

import koffi from 'koffi';

const libc = koffi.load('libc.so.6');

type IntFn = (...args: (number | Buffer | null)[]) => number;
interface AsyncFn {
  (...args: (number | Buffer | null)[]): number;
  async: (...args: [...(number | Buffer | null)[], (err: unknown, res: number) => void]) => void;
}

function bind(decl: string): AsyncFn {
  return libc.func(decl) as unknown as AsyncFn;
}

/** A glibc extension, undefined where the libc lacks it (musl). */
function bindIfPresent(decl: string): IntFn | undefined {
  try {
    return bind(decl);
  } catch {
    return undefined;
  }
}

export const socket: IntFn = bind('int socket(int domain, int type, int protocol)');
export const bindSocket: IntFn = bind('int bind(int fd, const void *addr, uint32_t addrlen)');
export const getsockname: IntFn = bind('int getsockname(int fd, void *addr, void *addrlen)');
export const sendto: IntFn = bind('long sendto(int fd, const void *buf, size_t len, int flags, const void *addr, uint32_t addrlen)');
export const recvfrom: IntFn = bind('long recvfrom(int fd, void *buf, size_t len, int flags, void *addr, void *addrlen)');
export const setsockopt: IntFn = bind('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)');
export const getsockopt: IntFn = bind('int getsockopt(int fd, int level, int name, void *val, void *len)');
export const accept4: IntFn = bind('int accept4(int fd, void *addr, void *addrlen, int flags)');
export const close: IntFn = bind('int close(int fd)');
export const setns: IntFn = bind('int setns(int fd, int nstype)');
export const write: IntFn = bind('long write(int fd, const void *buf, size_t len)');
export const read: IntFn = bind('long read(int fd, void *buf, size_t len)');
export const eventfd: IntFn = bind('int eventfd(unsigned int initval, int flags)');
export const epollCreate1: IntFn = bind('int epoll_create1(int flags)');
export const epollCtl: IntFn = bind('int epoll_ctl(int epfd, int op, int fd, void *event)');
/** Blocking: only ever called with `.async`, on a koffi worker thread. */
export const epollWait: AsyncFn = bind('int epoll_wait(int epfd, void *events, int maxevents, int timeout)');

/**
 * glibc's malloc_trim: gives the free pages of every malloc arena back to the
 * kernel. Undefined on a libc without it (musl).
 */
export const mallocTrim: IntFn | undefined = bindIfPresent('int malloc_trim(size_t pad)');

/** glibc's mallopt: sets a malloc parameter. Undefined on a libc without it. */
export const mallopt: IntFn | undefined = bindIfPresent('int mallopt(int param, int value)');

export function lastErrno(): number {
  return koffi.errno();
}

// Socket constants (linux/socket.h, linux/net.h, asm-generic/socket.h).
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
/** SOCK_NONBLOCK: recv never blocks the calling (event loop) thread. */
export const SOCK_NONBLOCK = 0o4000;
/** SOCK_CLOEXEC: child processes (ip, tc, dockerd) must not inherit our sockets. */
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
/** SO_REUSEADDR: another socket that sets it too may bind the same address and port. */
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
/** SO_RCVBUFFORCE: as root, exceed net.core.rmem_max so event bursts are not dropped. */
export const SO_RCVBUFFORCE = 33;
export const MSG_PEEK = 0x02;
/** MSG_TRUNC on recv: return the real datagram length even if the buffer is smaller. */
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
/** CLONE_NEWNET (linux/sched.h): the nstype for setns on a network namespace fd. */
export const CLONE_NEWNET = 0x40000000;
