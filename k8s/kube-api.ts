// KubePort over the Kubernetes API with @kubernetes/client-node: in the pod,
// the service account's in-cluster config; in tests, any server address.
import { ApiException, CoreV1Api, KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { KubeConflictError, type ConfigMapState, type KubeNode, type KubePort } from './kube-port.js';

/** Where Weave kept its peer bookkeeping (prog/kube-utils): ConfigMap kube-system/weave-net. */
export const PEER_CONFIGMAP = { namespace: 'kube-system', name: 'weave-net' } as const;

function stateOf(cm: V1ConfigMap): ConfigMapState {
  return { annotations: { ...(cm.metadata?.annotations ?? {}) }, resourceVersion: cm.metadata?.resourceVersion ?? '' };
}

function isCode(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}

/** An API failure as one line: the Status message when the server sent one. */
function describe(err: unknown, doing: string): Error {
  if (err instanceof ApiException) {
    let msg = String(err.code);
    try {
      const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: string };
      if (body.message) msg = `${err.code} ${body.message}`;
    } catch {
      // not a Status object
    }
    return new Error(`Kubernetes API: ${doing}: ${msg}`);
  }
  return new Error(`Kubernetes API: ${doing}: ${(err as Error).message}`);
}

export class KubeApi implements KubePort {
  private readonly core: CoreV1Api;

  constructor(
    config: KubeConfig,
    private readonly cm: { namespace: string; name: string } = PEER_CONFIGMAP,
  ) {
    this.core = config.makeApiClient(CoreV1Api);
  }

  /** KUBECONFIG when set (running outside a pod, as kubectl does), else the pod's service account. */
  static fromEnvironment(env: NodeJS.ProcessEnv = process.env): KubeApi {
    const kc = new KubeConfig();
    if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG);
    else kc.loadFromCluster();
    return new KubeApi(kc);
  }

  async listNodes(): Promise<KubeNode[]> {
    try {
      const list = await this.core.listNode();
      return list.items.map((n) => ({
        name: n.metadata?.name ?? '',
        addresses: (n.status?.addresses ?? []).map((a) => ({ type: a.type, address: a.address })),
      }));
    } catch (err) {
      throw describe(err, 'list nodes');
    }
  }

  async readConfigMap(): Promise<ConfigMapState | undefined> {
    try {
      return stateOf(await this.core.readNamespacedConfigMap(this.cm));
    } catch (err) {
      if (isCode(err, 404)) return undefined;
      throw describe(err, `read configmap ${this.cm.namespace}/${this.cm.name}`);
    }
  }

  async createConfigMap(): Promise<ConfigMapState> {
    try {
      return stateOf(await this.core.createNamespacedConfigMap({
        namespace: this.cm.namespace,
        body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: this.cm.name, namespace: this.cm.namespace } },
      }));
    } catch (err) {
      if (isCode(err, 409)) throw new KubeConflictError(`configmap ${this.cm.namespace}/${this.cm.name} already exists`);
      throw describe(err, `create configmap ${this.cm.namespace}/${this.cm.name}`);
    }
  }

  async replaceConfigMap(state: ConfigMapState): Promise<ConfigMapState> {
    try {
      return stateOf(await this.core.replaceNamespacedConfigMap({
        ...this.cm,
        body: {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: this.cm.name, namespace: this.cm.namespace, annotations: state.annotations, resourceVersion: state.resourceVersion },
        },
      }));
    } catch (err) {
      if (isCode(err, 409)) throw new KubeConflictError(`configmap ${this.cm.namespace}/${this.cm.name} changed meanwhile`);
      throw describe(err, `update configmap ${this.cm.namespace}/${this.cm.name}`);
    }
  }
}
