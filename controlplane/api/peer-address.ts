// Direct-peer strings for `weave connect` / `POST /connect` (user-surface
// spec §1.7): `host[:port]`, IPv6 literals in brackets. Only the syntax is
// checked here; name resolution happens when the connection maker dials.

export interface PeerAddress {
  host: string;
  port: number;
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;
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
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([0-9A-Fa-f:.]+)\](?::(.*))?$/.exec(peer);
  if (bracketed) {
    host = bracketed[1];
    portText = bracketed[2];
  } else {
    const parts = peer.split(':');
    if (parts.length > 2) throw invalid(peer);
    host = parts[0];
    portText = parts[1];
    if (!validHost(host)) throw invalid(peer);
  }
  if (portText === undefined) return { host, port: defaultPort };
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw invalid(peer);
  return { host, port: Number(portText) };
}

/** `ip:port` as shown in `weave status connections` for a target. */
export function formatPeerAddress(a: PeerAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
