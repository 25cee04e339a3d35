// What the launcher needs from the Kubernetes API (types only): the nodes,
// and one ConfigMap read and written with optimistic concurrency. kube-api.ts
// implements it with @kubernetes/client-node.

export interface NodeAddress {
  /** InternalIP, ExternalIP, Hostname, ... (core/v1 NodeAddress). */
  type: string;
  address: string;
}

export interface KubeNode {
  name: string;
  addresses: NodeAddress[];
}

export interface ConfigMapState {
  annotations: Record<string, string>;
  /** metadata.resourceVersion: a replace with an older one fails with a conflict. */
  resourceVersion: string;
}

/** The API answered 409: someone else changed the object (or created it) first. */
export class KubeConflictError extends Error {}

export interface KubePort {
  listNodes(): Promise<KubeNode[]>;
  /** Undefined when it does not exist. */
  readConfigMap(): Promise<ConfigMapState | undefined>;
  /** Creates it empty; KubeConflictError when it already exists. */
  createConfigMap(): Promise<ConfigMapState>;
  /** Replaces the annotations if `resourceVersion` is still current, else KubeConflictError. */
  replaceConfigMap(state: ConfigMapState): Promise<ConfigMapState>;
}
