// Policy without Kubernetes for Docker users: the containers on weave's Docker
// networks (`docker run --net=weave -l app=web`) stand in for pods. A
// container's labels are the pod's labels, the Docker network's name is its
// namespace (a fixed one per network, so a policy's namespace says which
// network it governs), its address on that network is the pod IP, and its
// network namespace is that of its init process. Policies (and Namespace
// objects giving networks labels) still come from the policy directory.
//
// Docker's event stream (controlplane/docker/events.ts) keeps the set current:
// on every (re)connection the running containers are listed again before any
// event is applied, so containers that came or went while the daemon was
// unreachable are neither missed nor kept.
import type { ContainerInspect, EngineClient } from '../docker/engine-client.js';
import { DockerNotFoundError } from '../docker/engine-client.js';
import { EventWatcher, type DockerEvent } from '../docker/events.js';
import type { PolicyLog, PolicySnapshot } from './controller.js';
import { NETNS_ANNOTATION } from './cluster.js';
import type { Namespace, Pod } from './types.js';

/** Weave's Docker network drivers: the legacy plugin's two and the managed plugin (`weaveworks/net-plugin:<tag>`). */
export function isWeaveDriver(driver: string): boolean {
  return driver === 'weave' || driver === 'weavemesh' || /(^|\/)net-plugin(:|$)/.test(driver);
}

export interface DockerSourceOptions {
  /** Where the host's /proc is (a containerised weave-npc mounts the host's elsewhere). */
  procPath?: string;
  /** Whether a Docker network driver is weave's; default isWeaveDriver. */
  isWeaveDriver?: (driver: string) => boolean;
}

/** The pods standing for one running container: one per weave network it is on. */
export function containerPods(info: ContainerInspect, weaveNetworks: ReadonlyMap<string, string>, procPath = '/proc'): Pod[] {
  if (!info.State.Running || info.State.Pid <= 0) return [];
  const out: Pod[] = [];
  for (const ep of Object.values(info.NetworkSettings.Networks ?? {})) {
    const namespace = weaveNetworks.get(ep.NetworkID);
    if (namespace === undefined || !ep.IPAddress) continue;
    out.push({
      apiVersion: 'v1', kind: 'Pod',
      metadata: {
        // Docker names are unique per daemon; the network name keeps one container on two networks two pods.
        name: info.Name.replace(/^\//, '') || info.Id.slice(0, 12),
        namespace,
        labels: { ...(info.Config.Labels ?? {}) },
        annotations: { [NETNS_ANNOTATION]: `${procPath}/${info.State.Pid}/ns/net` },
        uid: info.Id,
      },
      status: { phase: 'Running', podIP: ep.IPAddress },
    });
  }
  return out;
}

export class DockerPolicySource {
  private readonly pods = new Map<string, Pod[]>();
  /** Network id -> name, for weave's networks; other networks map to undefined. */
  private readonly networks = new Map<string, string | undefined>();
  private readonly watcher: EventWatcher;
  private markSynced!: () => void;
  /** Resolves once the running containers have been listed for the first time. */
  readonly synced: Promise<void> = new Promise((resolve) => { this.markSynced = resolve; });

  constructor(
    private readonly client: EngineClient,
    private readonly onChange: () => void,
    private readonly log: PolicyLog,
    private readonly options: DockerSourceOptions = {},
  ) {
    this.watcher = new EventWatcher(client, {
      filters: { type: ['container', 'network'] },
      onSync: () => this.resync(),
      onEvent: (ev) => this.onEvent(ev),
      onError: (err, during) => this.log.warn({ during, err: err.message }, 'Docker events'),
      onConnectionChange: (connected) => this.log.info({ docker: client.address, connected }, connected ? 'following Docker' : 'lost Docker; retrying'),
    });
  }

  start(): void {
    this.watcher.start();
  }

  stop(): Promise<void> {
    return this.watcher.stop();
  }

  /** The containers on weave networks now, as pods. */
  snapshot(): Pod[] {
    return [...this.pods.values()].flat();
  }

  /** The Docker networks seen to be weave's, by name (each a namespace). */
  networkNames(): string[] {
    return [...new Set([...this.networks.values()].filter((n): n is string => n !== undefined))].sort();
  }

  private async networkName(id: string): Promise<string | undefined> {
    if (this.networks.has(id)) return this.networks.get(id);
    const isWeave = this.options.isWeaveDriver ?? isWeaveDriver;
    try {
      const net = await this.client.inspectNetwork(id);
      const name = isWeave(net.Driver) ? net.Name : undefined;
      this.networks.set(id, name);
      return name;
    } catch (err) {
      if (!(err instanceof DockerNotFoundError)) throw err;
      return undefined;
    }
  }

  private async inspect(id: string): Promise<Pod[]> {
    let info: ContainerInspect;
    try {
      info = await this.client.inspectContainer(id);
    } catch (err) {
      if (err instanceof DockerNotFoundError) return [];
      throw err;
    }
    const weave = new Map<string, string>();
    for (const ep of Object.values(info.NetworkSettings.Networks ?? {})) {
      const name = await this.networkName(ep.NetworkID);
      if (name !== undefined) weave.set(ep.NetworkID, name);
    }
    return containerPods(info, weave, this.options.procPath);
  }

  private async resync(): Promise<void> {
    const running = await this.client.listContainers({ filters: { status: ['running'] } });
    const next = new Map<string, Pod[]>();
    for (const c of running) {
      const pods = await this.inspect(c.Id);
      if (pods.length > 0) next.set(c.Id, pods);
    }
    this.pods.clear();
    for (const [id, pods] of next) this.pods.set(id, pods);
    this.markSynced();
    this.onChange();
  }

  private async onEvent(ev: DockerEvent): Promise<void> {
    let id: string | undefined;
    if (ev.Type === 'container' && ['start', 'die', 'destroy', 'update'].includes(ev.Action)) id = ev.Actor.ID;
    else if (ev.Type === 'network' && (ev.Action === 'connect' || ev.Action === 'disconnect')) id = ev.Actor.Attributes.container;
    else if (ev.Type === 'network' && ev.Action === 'destroy') this.networks.delete(ev.Actor.ID);
    if (!id) return;
    const pods = ev.Action === 'die' || ev.Action === 'destroy' ? [] : await this.inspect(id);
    const had = this.pods.has(id);
    if (pods.length > 0) this.pods.set(id, pods);
    else this.pods.delete(id);
    if (had || pods.length > 0) this.onChange();
  }
}

/**
 * The directory's objects plus the containers: a namespace for every weave
 * network that has none in the directory (one there gives it labels).
 */
export function withContainers(dir: PolicySnapshot, pods: readonly Pod[], networks: readonly string[]): PolicySnapshot {
  const named = new Set(dir.namespaces.map((n) => n.metadata.name));
  const added: Namespace[] = networks.filter((n) => !named.has(n)).map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }));
  return { ...dir, namespaces: [...dir.namespaces, ...added], pods: [...dir.pods, ...pods] };
}
