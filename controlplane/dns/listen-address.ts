// `--dns-listen-address host:port` parsing (user-surface spec §4.3).
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parse `a.b.c.d:port` or `[v6]:port`; throws a message naming the flag on bad input. */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  const host = m ? (m[1] ?? m[2]) : undefined;
  const port = m ? Number(m[3]) : NaN;
  if (host === undefined || !(port >= 0 && port <= 65535) || (host !== '' && isIP(host) === 0)) {
    throw new Error(`weave: invalid --dns-listen-address "${text}" (expected <ip>:<port>, e.g. 172.17.0.1:53)`);
  }
  return { host: host === '' ? '0.0.0.0' : host, port };
}
