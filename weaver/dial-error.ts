// Text for a failed TCP dial in `weave status connections` and the log, in
// the words Weave uses ("connect: connection refused"), so operators can grep
// for the same reasons.
const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network is unreachable',
  ETIMEDOUT: 'connection timed out',
  EADDRNOTAVAIL: 'cannot assign requested address',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'temporary failure in name resolution',
};

/** `dial tcp <address>: connect: connection refused` for errno errors, the message otherwise. */
export function describeDialError(address: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const text = e?.code ? ERRNO_TEXT[e.code] : undefined;
  if (text === undefined) return e instanceof Error ? e.message : String(err);
  const stage = e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' ? 'lookup' : 'connect';
  return `dial tcp ${address}: ${stage}: ${text}`;
}
