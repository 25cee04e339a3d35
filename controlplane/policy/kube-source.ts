// Policy from the Kubernetes API: Pods, Namespaces, NetworkPolicies, Services
// and EndpointSlices kept
// current by @kubernetes/client-node informers (list, then watch from the
// list's resourceVersion; a 410 Gone relists). Every event makes a fresh
// snapshot of the caches for the controller, which renders the whole
// desired state from it: events never patch sets incrementally, so nothing
// can drift (weaveworks/weave#3829). A watch that fails is restarted (relisted)
// after a pause; objects the API sends that fail validation are skipped and
// reported once.
import {
  CoreV1Api, DiscoveryV1Api, KubeConfig, makeInformer, NetworkingV1Api,
  type Informer, type KubernetesObject, type ObjectCache,
} from '@kubernetes/client-node';
import type { PolicyLog, PolicySnapshot } from './controller.js';
import { parseEndpointSlice, parseNamespace, parseNetworkPolicy, parsePod, parseService } from './validate.js';
import type { EndpointSlice, Namespace, NetworkPolicy, Pod, Service } from './types.js';

/** The API paths watched, as the informers request them. */
export const KUBE_PATHS = {
  pods: '/api/v1/pods',
  namespaces: '/api/v1/namespaces',
  networkPolicies: '/apis/networking.k8s.io/v1/networkpolicies',
  services: '/api/v1/services',
  endpointSlices: '/apis/discovery.k8s.io/v1/endpointslices',
} as const;

export interface KubeSourceOptions {
  /** Pause before a failed watch is started again. Default 2 s. */
  restartDelayMs?: number;
}

type Cached = Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

export class KubePolicySource {
  private readonly informers: { name: string; informer: Cached }[];
  private readonly reported = new Set<string>();
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    config: KubeConfig,
    private readonly onChange: () => void,
    private readonly log: PolicyLog,
    private readonly options: KubeSourceOptions = {},
  ) {
    const core = config.makeApiClient(CoreV1Api);
    const net = config.makeApiClient(NetworkingV1Api);
    const discovery = config.makeApiClient(DiscoveryV1Api);
    const make = (name: string, path: string, list: () => Promise<unknown>): { name: string; informer: Cached } => ({
      name,
      informer: makeInformer(config, path, list as () => Promise<never>) as Cached,
    });
    this.informers = [
      make('pods', KUBE_PATHS.pods, () => core.listPodForAllNamespaces({})),
      make('namespaces', KUBE_PATHS.namespaces, () => core.listNamespace({})),
      make('networkpolicies', KUBE_PATHS.networkPolicies, () => net.listNetworkPolicyForAllNamespaces({})),
      // Services and where they lead: egress to pods through a cluster IP (controlplane/policy/services.ts).
      make('services', KUBE_PATHS.services, () => core.listServiceForAllNamespaces({})),
      make('endpointslices', KUBE_PATHS.endpointSlices, () => discovery.listEndpointSliceForAllNamespaces({})),
    ];
    for (const { name, informer } of this.informers) {
      informer.on('change', () => this.onChange());
      informer.on('error', (err: unknown) => this.restart(name, informer, err));
    }
  }

  /** Lists everything once and starts watching; resolves when every list is in. */
  async start(): Promise<void> {
    await Promise.all(this.informers.map(({ informer }) => informer.start()));
  }

  private restart(name: string, informer: Cached, err: unknown): void {
    if (this.stopped) return;
    this.log.warn({ resource: name, err: (err as Error | undefined)?.message ?? String(err) }, 'Kubernetes watch failed; listing again shortly');
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.stopped) return;
      // The informer relists and replaces its cache, reporting what changed meanwhile.
      void informer.start().then(() => this.onChange(), (e: unknown) => this.restart(name, informer, e));
    }, this.options.restartDelayMs ?? 2000);
    this.timers.add(timer);
  }

  private parsed<T>(name: string, parse: (v: unknown) => T): T[] {
    const informer = this.informers.find((i) => i.name === name)?.informer;
    const out: T[] = [];
    for (const obj of informer?.list() ?? []) {
      try {
        out.push(parse(obj));
      } catch (err) {
        const key = `${name}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}/${obj.metadata?.resourceVersion ?? ''}`;
        if (!this.reported.has(key)) {
          this.reported.add(key);
          this.log.warn({ resource: name }, `skipped: ${(err as Error).message}`);
        }
      }
    }
    return out;
  }

  /**
   * The API's JSON shape of a policy. Listed objects come through the client's
   * model classes, which name an ingress rule's `from` `_from` (a reserved word
   * in its generator); watched ones are raw JSON. Both end up as the API spells them.
   */
  private static policyJson(v: unknown): unknown {
    const spec = (v as { spec?: { ingress?: unknown } }).spec;
    if (!spec || !Array.isArray(spec.ingress)) return v;
    const ingress = (spec.ingress as Record<string, unknown>[]).map((r) => {
      if (r.from !== undefined || r._from === undefined) return r;
      const { _from, ...rest } = r;
      return { ...rest, from: _from };
    });
    return { ...(v as object), spec: { ...spec, ingress } };
  }

  /** The API state as the caches hold it now. */
  snapshot(): PolicySnapshot {
    return {
      namespaces: this.parsed<Namespace>('namespaces', (v) => parseNamespace(v)),
      pods: this.parsed<Pod>('pods', (v) => parsePod(v)),
      policies: this.parsed<NetworkPolicy>('networkpolicies', (v) => parseNetworkPolicy(KubePolicySource.policyJson(v))),
      services: this.parsed<Service>('services', (v) => parseService(v)),
      endpointSlices: this.parsed<EndpointSlice>('endpointslices', (v) => parseEndpointSlice(v)),
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(this.informers.map(({ informer }) => informer.stop()));
  }
}
