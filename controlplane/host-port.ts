// `host:port` text, the one way every part of the router reads and writes it:
// peers and connection addresses, listen flags, the API address.
import { isIP, isIPv6 } from 'node:net';

export interface HostPort {
  /** Without brackets; '' when the text starts with the colon (`:6783`). */
  host: string;
  /** Absent when the text names no port. */
  port?: number;
}

const PORT = /^\d{1,5}$/;

/**
 * Whether `address` is an IPv6 literal. Every IPv6 literal has a colon and no
 * IPv4 one does, so IPv4 addresses never reach isIPv6: its pattern costs ~10 ms
 * to compile on first use, paid by every router at its first handshake.
 */
export function isIPv6Literal(address: string): boolean {
  return address.includes(':') && isIPv6(address);
}

/**
 * Split `host:port`, `[v6]:port`, `host`, `[v6]` or a bare IPv6 literal (all
 * host: its colons are not a port separator). Undefined when the text is
 * malformed — a port that is not 0-65535, unbalanced brackets, an empty
 * port after the colon — so input from the network is dropped, not thrown on.
 */
export function splitHostPort(text: string): HostPort | undefined {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    const host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest === '') return { host };
    if (!rest.startsWith(':')) return undefined;
    const port = parsePort(rest.slice(1));
    return port === undefined ? undefined : { host, port };
  }
  if (text.includes(']')) return undefined;
  const colon = text.lastIndexOf(':');
  // An IPv6 address has at least two colons: with one, what follows it is a port
  // (checked first so that `host:port` never pays for isIP's IPv6 pattern, see isIPv6Literal).
  if (colon < 0 || (text.indexOf(':') !== colon && isIP(text) === 6)) return { host: text };
  const port = parsePort(text.slice(colon + 1));
  return port === undefined ? undefined : { host: text.slice(0, colon), port };
}

/**
 * Whether the host split from `text` is a plain one for a URL-like address:
 * no slash, and colons only inside brackets (`a:b:80` is not `a:b` port 80).
 */
export function plainHost(text: string, host: string): boolean {
  return !host.includes('/') && (text.startsWith('[') || !host.includes(':'));
}

/** `host:port`, the host bracketed when it is an IPv6 literal. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function parsePort(text: string): number | undefined {
  if (!PORT.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}
