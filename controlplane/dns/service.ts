// The operations the HTTP API and the container watchers call (wire spec
// §10.5, user-surface spec §1.11, §5.1). Transport-free: the HTTP layer maps
// DnsInputError to 400 and everything else to 204/200.
import { formatIPv4, parseIPv4 } from './address.js';
import { joinHostPort } from '../host-port.js';
import { inDomain, toFqdn } from './domain.js';
import type { Entry } from './entries.js';
import type { Nameserver } from './nameserver.js';
import type { DnsServer } from './server.js';
import { dnsReportSection, dnsSummarySection, dnsMetricFamilies, renderDnsStatus, type DnsStatus } from './status.js';
import type { MetricFamily } from '../api/metrics.js';
import type { ServiceSection } from '../api/status-model.js';

/** Bad input from an API caller (HTTP 400). */
export class DnsInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DnsInputError';
  }
}

/** One entry as `GET /name` returns it (wire spec §10.5); Origin is a u64 number. */
export interface NameJson {
  ContainerID: string;
  Origin: bigint;
  Addr: string;
  Hostname: string;
  Version: number;
  Tombstone: number;
}

export interface DnsServiceOptions {
  nameserver: Nameserver;
  server: DnsServer;
  /** Whether a container is running, for `check-alive=true` (wire spec §10.5). */
  isContainerAlive?(containerId: string): Promise<boolean>;
  /** Where ignored requests are logged. */
  log?(message: string): void;
}

export class DnsService {
  private readonly ns: Nameserver;
  private readonly server: DnsServer;
  private readonly isContainerAlive: ((id: string) => Promise<boolean>) | undefined;
  private readonly log: (message: string) => void;

  constructor(opts: DnsServiceOptions) {
    this.ns = opts.nameserver;
    this.server = opts.server;
    this.isContainerAlive = opts.isContainerAlive;
    this.log = opts.log ?? ((): void => {});
  }

  /** `GET /domain`. */
  domain(): string {
    return this.server.domain;
  }

  /** `GET /dns-address`. */
  dnsAddress(): string {
    return this.server.address().host;
  }

  /** `GET /dns-address-port`. */
  dnsAddressPort(): string {
    const a = this.server.address();
    return joinHostPort(a.host, a.port);
  }

  /**
   * `PUT /name/{container}/{ip}` with `fqdn`: names outside the domain are
   * ignored (logged); with checkAlive a dead container's entry is tombstoned at once.
   * Waits for the names saved before a restart to be back: a name added meanwhile would meet them later.
   */
  async addName(containerId: string, ip: string, fqdn: string, checkAlive = false): Promise<void> {
    const addr = this.parseAddr(ip);
    if (containerId === '') throw new DnsInputError('missing container id (give a container id or weave:extern)');
    await this.ns.whenRestored();
    if (fqdn === '' || !inDomain(fqdn, this.server.domain)) {
      this.log(`[dns] ignoring name "${fqdn}" for ${containerId}: not in domain ${this.server.domain}`);
      return;
    }
    const hostname = toFqdn(fqdn);
    this.ns.add(hostname, containerId, addr);
    if (checkAlive && this.isContainerAlive && !(await this.isContainerAlive(containerId))) {
      this.ns.delete({ hostname, containerId, addr });
    }
  }

  /**
   * `DELETE /name[/{container}[/{ip}]]` with optional `fqdn`: tombstone our
   * matching entries; an absent part matches anything.
   */
  removeNames(filter: { containerId?: string; ip?: string; fqdn?: string }): Entry[] {
    return this.ns.delete({
      containerId: filter.containerId,
      addr: filter.ip === undefined ? undefined : this.parseAddr(filter.ip),
      hostname: filter.fqdn === undefined || filter.fqdn === '' ? undefined : toFqdn(filter.fqdn),
    });
  }

  /** Live addresses for a name (what `weave dns-lookup` prints), unqualified names in our domain. */
  lookup(name: string): string[] {
    const fqdn = name.replace(/\.$/, '').includes('.') ? toFqdn(name) : `${name}.${this.server.domain}`;
    return this.ns.lookup(fqdn).map((e) => formatIPv4(e.addr));
  }

  /** `GET /name` JSON (wire spec §10.5). */
  namesJson(): NameJson[] {
    return this.ns.entries().map((e) => ({
      ContainerID: e.containerId,
      Origin: e.origin,
      Addr: formatIPv4(e.addr),
      Hostname: e.hostname,
      Version: e.version,
      Tombstone: e.tombstone,
    }));
  }

  status(): DnsStatus {
    return {
      domain: this.server.domain,
      upstream: this.server.upstreams().map((u) => u.address),
      address: this.dnsAddressPort(),
      ttl: this.server.ttl,
      entries: this.ns.entries(),
    };
  }

  /** `GET /status/dns`. */
  statusText(): string {
    return renderDnsStatus(this.status());
  }

  summarySection(): ServiceSection {
    return dnsSummarySection(this.status());
  }

  reportSection(): Record<string, unknown> {
    return dnsReportSection(this.status());
  }

  metrics(): MetricFamily[] {
    return dnsMetricFamilies(this.ns.liveOwnedCount());
  }

  private parseAddr(ip: string): number {
    const addr = parseIPv4(ip);
    if (addr === undefined) throw new DnsInputError(`invalid IP address "${ip}" (give an IPv4 address such as 10.32.0.5)`);
    return addr;
  }
}
