// Linux errno numbers (asm-generic/errno-base.h, asm-generic/errno.h) and the
// error type every netlink call in this folder throws.

/** errno number -> symbolic name, for the errors netlink and socket calls return. */
export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  4: 'EINTR',
  5: 'EIO',
  6: 'ENXIO',
  7: 'E2BIG',
  9: 'EBADF',
  11: 'EAGAIN',
  12: 'ENOMEM',
  13: 'EACCES',
  14: 'EFAULT',
  16: 'EBUSY',
  17: 'EEXIST',
  18: 'EXDEV',
  19: 'ENODEV',
  20: 'ENOTDIR',
  22: 'EINVAL',
  23: 'ENFILE',
  24: 'EMFILE',
  28: 'ENOSPC',
  34: 'ERANGE',
  36: 'ENAMETOOLONG',
  38: 'ENOSYS',
  39: 'ENOTEMPTY',
  42: 'ENOMSG',
  61: 'ENODATA',
  71: 'EPROTO',
  75: 'EOVERFLOW',
  88: 'ENOTSOCK',
  90: 'EMSGSIZE',
  92: 'ENOPROTOOPT',
  93: 'EPROTONOSUPPORT',
  95: 'EOPNOTSUPP',
  97: 'EAFNOSUPPORT',
  98: 'EADDRINUSE',
  99: 'EADDRNOTAVAIL',
  100: 'ENETDOWN',
  101: 'ENETUNREACH',
  105: 'ENOBUFS',
  110: 'ETIMEDOUT',
  111: 'ECONNREFUSED',
  113: 'EHOSTUNREACH',
  114: 'EALREADY',
  115: 'EINPROGRESS',
};

/** Name -> number, the inverse table (e.g. `Errno.EEXIST === 17`). */
export const Errno: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(ERRNO_NAMES).map(([n, name]) => [name, Number(n)]),
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
export function isNetlinkError(err: unknown, code?: string): err is NetlinkError {
  return err instanceof NetlinkError && (code === undefined || err.code === code);
}
