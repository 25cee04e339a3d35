// Linux errno numbers (asm-generic/errno-base.h, asm-generic/errno.h) and the
// error type every netlink call in this folder throws.

/** errno names -> numbers, for the errors netlink and socket calls return (e.g. `Errno.EEXIST === 17`). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOSPC: 28,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ENOMSG: 42,
  ENODATA: 61,
  EPROTO: 71,
  EOVERFLOW: 75,
  ENOTSOCK: 88,
  EMSGSIZE: 90,
  ENOPROTOOPT: 92,
  EPROTONOSUPPORT: 93,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETDOWN: 100,
  ENETUNREACH: 101,
  ECONNABORTED: 103,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
  ECONNREFUSED: 111,
  EHOSTUNREACH: 113,
  EALREADY: 114,
  EINPROGRESS: 115,
} as const;

export type ErrnoName = keyof typeof Errno;

/** errno number -> symbolic name, the inverse table. */
export const ERRNO_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(Errno).map(([name, n]) => [n, name]),
);

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/**
 * A failed kernel call. `errno` is positive; `code` is its name. The message
 * reads `EEXIST: create link "v0": File exists (kernel: ...)`, naming the operation
 * the caller was doing and, when present, the kernel's extended-ack text
 * (NLMSGERR_ATTR_MSG).
 */
export class NetlinkError extends Error {
  readonly code: string;

  constructor(
    readonly errno: number,
    readonly operation: string,
    readonly kernelMessage?: string,
  ) {
    const name = errnoName(errno);
    super(`${name}: ${operation}${kernelMessage ? ` (kernel: ${kernelMessage})` : ''}`);
    this.name = 'NetlinkError';
    this.code = name;
  }

  /** Returns a copy whose operation text is more specific (callers name the object). */
  withOperation(operation: string): NetlinkError {
    const e = new NetlinkError(this.errno, operation, this.kernelMessage);
    e.stack = this.stack;
    return e;
  }
}

/** True when `err` is a NetlinkError with the given errno name (e.g. 'ENOENT'). */
export function isNetlinkError(err: unknown, code?: ErrnoName): err is NetlinkError {
  return err instanceof NetlinkError && (code === undefined || err.code === code);
}
