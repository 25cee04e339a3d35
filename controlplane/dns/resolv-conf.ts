// Upstream resolvers from a resolv.conf file (user-surface spec §6.6): re-read
// when the file changed, checked at most every RESOLV_CONF_RECHECK_MS.
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { RESOLV_CONF_RECHECK_MS } from './constants.js';

/** The `nameserver` addresses in resolv.conf text, in file order; invalid ones are skipped. */
export function parseResolvConf(text: string): string[] {
  const servers: string[] = [];
  for (const line of text.split('\n')) {
    const words = line.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (words[0] !== 'nameserver' || words.length < 2) continue;
    // An IPv6 address may carry a zone (`fe80::1%eth0`); the address part must be valid.
    if (isIP(words[1].split('%')[0]) !== 0) servers.push(words[1]);
  }
  return servers;
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}

function localAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address)));
}

export interface UpstreamServer {
  address: string;
  port: number;
}

export class ResolvConfWatcher {
  private servers: string[] = [];
  private lastCheck = -Infinity;
  private lastMtimeMs = -1;
  private lastSize = -1;

  /**
   * @param path resolv.conf path; empty means no upstream servers.
   * @param exclude our own listen address, so we never forward to ourselves.
   */
  constructor(
    private readonly path: string,
    private readonly port: number,
    private readonly exclude: UpstreamServer | undefined,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Current upstream servers, re-reading the file if due and changed; a missing file means none. */
  upstreams(): UpstreamServer[] {
    this.refresh();
    return this.servers
      .map((address) => ({ address, port: this.port }))
      .filter((s) => !this.isOurselves(s));
  }

  /**
   * Whether a server is our own listener: a host whose resolv.conf already
   * points at weaveDNS must not make it forward to itself. Listening on a
   * wildcard address, every local address reaches us.
   */
  private isOurselves(s: UpstreamServer): boolean {
    const ex = this.exclude;
    if (!ex || s.port !== ex.port) return false;
    if (s.address === ex.address) return true;
    if (ex.address !== '0.0.0.0' && ex.address !== '::' && ex.address !== '') return false;
    return isLoopback(s.address) || localAddresses().has(s.address);
  }

  private refresh(): void {
    if (this.path === '') return;
    const now = this.nowMs();
    if (now - this.lastCheck < RESOLV_CONF_RECHECK_MS) return;
    this.lastCheck = now;
    try {
      const st = statSync(this.path);
      if (st.mtimeMs === this.lastMtimeMs && st.size === this.lastSize) return;
      this.servers = parseResolvConf(readFileSync(this.path, 'utf8'));
      this.lastMtimeMs = st.mtimeMs;
      this.lastSize = st.size;
    } catch {
      this.servers = [];
      this.lastMtimeMs = -1;
      this.lastSize = -1;
    }
  }
}
