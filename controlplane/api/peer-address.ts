// Direct-peer strings for `weave connect` / `POST /connect` (user-surface
// spec §1.7): `host[:port]`, IPv6 literals in brackets. Only the syntax is
// checked here; name resolution happens when the connection maker dials.

import { joinHostPort, splitHostPort } from '../host-port.js';

export interface PeerAddress {
  host: string;
  port: number;
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]+$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function validHost(host: string): boolean {
  const v4 = IPV4.exec(host);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255);
  return HOSTNAME.test(host);
}

function invalid(peer: string): Error {
  return new Error(`invalid peer name "${peer}", should be host[:port]`);
}

/** Parse `host[:port]`, the port defaulting to the router's own; throws with Weave's message. */
export function parsePeerAddress(peer: string, defaultPort: number): PeerAddress {
  const hp = splitHostPort(peer);
  if (!hp) throw invalid(peer);
  const hostValid = peer.startsWith('[') ? IPV6_CHARS.test(hp.host) : validHost(hp.host);
  if (!hostValid || hp.port === 0) throw invalid(peer);
  return { host: hp.host, port: hp.port ?? defaultPort };
}

/** `ip:port` as shown in `weave status connections` for a target. */
export function formatPeerAddress(a: PeerAddress): string {
  return joinHostPort(a.host, a.port);
}
