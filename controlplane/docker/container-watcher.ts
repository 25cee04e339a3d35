// Follows Docker's container life cycle for the legacy plugin (user-surface spec §7.1) and
// for the router's idea of which containers are alive:
//   start   -> for each of its networks that is ours: weaveDNS names `<Hostname>.<Domainname>`,
//              `<name>.<domain>` and the network aliases; ARP tuning + gratuitous ARP on ethwe*;
//              `weave ps` learns it
//   die     -> its DNS names are tombstoned, IPAM notes it dead (addresses go after the grace)
//   destroy -> IPAM releases what the container id owns
// On every (re)connection to Docker it re-lists running containers first and reconciles:
// names of containers that died meanwhile go, running containers are registered again
// (a restarted router gets its names back).
import type { ContainerInspect, EngineClient } from './engine-client.js';
import { DockerNotFoundError } from './engine-client.js';
import { EventWatcher, type DockerEvent } from './events.js';

export interface WatcherDnsPort {
  /** The weaveDNS domain, e.g. `weave.local.` */
  domain(): string;
  register(containerId: string, fqdn: string, ip: string): Promise<void>;
  containerDied(containerId: string): void;
  /** Container ids this router has live names for. */
  registeredContainers(): string[];
}

export interface WatcherIpamPort {
  containerDied(containerId: string): void;
  containerDestroyed(containerId: string): void;
  /** Idents IPAM holds addresses for (container ids among them). */
  owners(): string[];
}

export interface WatcherHostPort {
  /** ARP tuning and gratuitous ARP on the container's ethwe* (by its init pid). */
  configureArp(pid: number): Promise<void>;
  /** `weave ps` lists the container under `label`. */
  track(label: string, pid: number): void;
}

export interface ContainerWatcherOptions {
  client: EngineClient;
  /** Whether a Docker network (by id) is one of the plugin's. */
  isOurNetwork(networkId: string): Promise<boolean>;
  dns?: WatcherDnsPort;
  ipam?: WatcherIpamPort;
  host?: WatcherHostPort;
  /** Runs after each (re)connection's re-list (e.g. to recreate the default network). */
  onResync?(): Promise<void>;
  onConnectionChange?(connected: boolean): void;
  log?(message: string): void;
  warn?(message: string): void;
}

/** A full container id (what the router's IPAM and DNS idents look like). */
const CONTAINER_ID = /^[0-9a-f]{64}$/;
/** Docker's short id length, as `weave ps` shows containers. */
const SHORT_ID_CHARS = 12;

export class ContainerWatcher {
  /** Every container Docker has, as of the last list plus the events since. */
  private readonly containers = new Map<string, 'running' | 'stopped'>();
  private synced = false;
  private markFirstSync!: () => void;
  /** Resolves once the watcher has listed Docker's containers for the first time. */
  readonly firstSync: Promise<void> = new Promise((resolve) => { this.markFirstSync = resolve; });
  private readonly watcher: EventWatcher;
  private readonly log: (m: string) => void;
  private readonly warn: (m: string) => void;

  constructor(private readonly opts: ContainerWatcherOptions) {
    this.log = opts.log ?? (() => undefined);
    this.warn = opts.warn ?? (() => undefined);
    this.watcher = new EventWatcher(opts.client, {
      filters: { type: ['container', 'network'] },
      onSync: () => this.resync(),
      onEvent: (ev) => this.onEvent(ev),
      onError: (err, during) => this.warn(`[docker] event watcher (${during}): ${err.message}`),
      onConnectionChange: (c) => {
        if (!c) this.synced = false;
        opts.onConnectionChange?.(c);
      },
    });
  }

  start(): void {
    this.watcher.start();
  }

  stop(): Promise<void> {
    return this.watcher.stop();
  }

  get connected(): boolean {
    return this.watcher.stats.connected;
  }

  get stats(): { connects: number; events: number; malformed: number; handlerErrors: number; running: number } {
    const s = this.watcher.stats;
    const running = [...this.containers.values()].filter((v) => v === 'running').length;
    return { connects: s.connects, events: s.events, malformed: s.malformed, handlerErrors: s.handlerErrors, running };
  }

  /**
   * Whether a container is running, for IPAM's and weaveDNS's check-alive: undefined when
   * `ident` is not a container id, Docker's state is not known right now, or Docker has not
   * told us about the container yet (one that starts this instant may be asked about before
   * its start event arrives: it must not be taken for dead).
   */
  isAlive(ident: string): boolean | undefined {
    if (!CONTAINER_ID.test(ident) || !this.synced) return undefined;
    const state = this.containers.get(ident);
    return state === undefined ? undefined : state === 'running';
  }

  private async resync(): Promise<void> {
    const list = await this.opts.client.listContainers({ all: true });
    const running = new Set(list.filter((c) => c.State === 'running').map((c) => c.Id));
    const existing = new Set(list.map((c) => c.Id));
    // Containers that stopped while we were not looking lose their names; IPAM notes them dead.
    for (const [id, state] of this.containers) if (state === 'running' && !running.has(id)) this.died(id);
    if (this.opts.dns) for (const id of this.opts.dns.registeredContainers()) if (!running.has(id)) this.opts.dns.containerDied(id);
    // Containers removed meanwhile release their addresses (Weave prunes these at start).
    if (this.opts.ipam) {
      for (const id of this.opts.ipam.owners()) if (CONTAINER_ID.test(id) && !existing.has(id)) this.opts.ipam.containerDestroyed(id);
    }
    this.containers.clear();
    for (const c of list) this.containers.set(c.Id, running.has(c.Id) ? 'running' : 'stopped');
    this.synced = true;
    const now = running;
    for (const id of now) await this.started(id);
    try {
      await this.opts.onResync?.();
    } catch (e) {
      // Not a reason to stop following Docker; the next reconnection tries again.
      this.warn(`[docker] after synchronising: ${(e as Error).message}`);
    }
    this.markFirstSync();
    this.log(`[docker] synchronised with Docker: ${now.size} running container(s)`);
  }

  private async onEvent(ev: DockerEvent): Promise<void> {
    const id = ev.Actor.ID;
    if (ev.Type === 'container') {
      switch (ev.Action) {
        case 'start':
          this.containers.set(id, 'running');
          await this.started(id);
          break;
        case 'die':
          this.died(id);
          break;
        case 'destroy':
          this.containers.delete(id);
          this.opts.ipam?.containerDestroyed(id);
          break;
      }
    } else if (ev.Type === 'network' && ev.Action === 'connect') {
      // `docker network connect` of a running container: register it on the new network too.
      const container = ev.Actor.Attributes.container;
      if (container && this.containers.get(container) === 'running') await this.started(container);
    }
  }

  private died(id: string): void {
    this.containers.set(id, 'stopped');
    this.opts.dns?.containerDied(id);
    this.opts.ipam?.containerDied(id);
  }

  private async started(id: string): Promise<void> {
    let info: ContainerInspect;
    try {
      info = await this.opts.client.inspectContainer(id);
    } catch (e) {
      if (!(e instanceof DockerNotFoundError)) this.warn(`[docker] error inspecting container ${id}: ${(e as Error).message}`);
      return;
    }
    if (!info.State.Running) return;
    let ours = false;
    for (const net of Object.values(info.NetworkSettings.Networks ?? {})) {
      let isOurs: boolean;
      try {
        isOurs = await this.opts.isOurNetwork(net.NetworkID);
      } catch (e) {
        this.warn(`[docker] unable to find network ${net.NetworkID} info: ${(e as Error).message}`);
        continue;
      }
      if (!isOurs) continue;
      ours = true;
      if (this.opts.dns && net.IPAddress) await this.registerNames(info, net.IPAddress, net.Aliases ?? []);
    }
    if (!ours) return;
    const pid = info.State.Pid;
    this.opts.host?.track(info.Id.slice(0, SHORT_ID_CHARS), pid);
    try {
      await this.opts.host?.configureArp(pid);
    } catch (e) {
      this.warn(`[docker] unable to configure interfaces of ${id}: ${(e as Error).message}`);
    }
  }

  private async registerNames(info: ContainerInspect, ip: string, aliases: readonly string[]): Promise<void> {
    const dns = this.opts.dns!;
    const domain = dns.domain();
    const names = [`${info.Config.Hostname}.${info.Config.Domainname}`];
    if (domain !== '' && info.Name.length > 1 && info.Name.startsWith('/')) names.push(`${info.Name.slice(1)}.${domain}`);
    names.push(...aliases);
    for (const name of names) {
      try {
        await dns.register(info.Id, name, ip);
      } catch (e) {
        this.warn(`[docker] unable to register ${name} for ${info.Id} with weaveDNS: ${(e as Error).message}`);
      }
    }
  }
}
