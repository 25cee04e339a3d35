// `--dns-listen-address host:port` parsing (user-surface spec §4.3).
import { isIP } from 'node:net';
import { splitHostPort } from '../host-port.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parse `a.b.c.d:port` or `[v6]:port`; throws a message naming the flag on bad input. */
export function parseListenAddress(text: string): ListenAddress {
  const hp = splitHostPort(text.trim());
  if (hp?.port === undefined || (hp.host !== '' && isIP(hp.host) === 0)) {
    throw new Error(`weave: invalid --dns-listen-address "${text}" (expected <ip>:<port>, e.g. 172.17.0.1:53)`);
  }
  return { host: hp.host === '' ? '0.0.0.0' : hp.host, port: hp.port };
}
