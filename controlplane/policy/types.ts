// The Kubernetes objects policy is made of, as the API serves them as JSON
// (networking.k8s.io/v1 NetworkPolicy, core/v1 Pod and Namespace): only the
// fields the semantics read. The file source and the Kubernetes source both
// produce these shapes, so one controller serves both.

export type Labels = Readonly<Record<string, string>>;

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values?: string[];
}

/** metav1.LabelSelector: an empty selector ({}) selects everything. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
}

export type PolicyProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface NetworkPolicyPort {
  /** Default TCP. */
  protocol?: PolicyProtocol;
  /** A number, or the name of a container port; absent: every port of the protocol. */
  port?: number | string;
  /** With a numeric port: the last port of the range [port, endPort]. */
  endPort?: number;
}

export interface IPBlock {
  cidr: string;
  except?: string[];
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IPBlock;
}

export interface NetworkPolicyIngressRule {
  /** Absent or empty: every source. */
  from?: NetworkPolicyPeer[];
  /** Absent or empty: every port. */
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  to?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export type PolicyType = 'Ingress' | 'Egress';

export interface NetworkPolicySpec {
  podSelector: LabelSelector;
  ingress?: NetworkPolicyIngressRule[];
  egress?: NetworkPolicyEgressRule[];
  policyTypes?: PolicyType[];
}

export interface NetworkPolicy {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: NetworkPolicySpec;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  protocol?: PolicyProtocol;
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: {
    nodeName?: string;
    hostNetwork?: boolean;
    containers?: { name: string; ports?: ContainerPort[] }[];
  };
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: { ip: string }[];
  };
}

export interface Namespace {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

/** The label every namespace carries with its own name (Kubernetes >= 1.21 sets it automatically). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** core/v1 ServicePort: `port` on the cluster IP leads to the endpoints' port of the same name. */
export interface ServicePort {
  name?: string;
  protocol?: PolicyProtocol;
  port: number;
}

/** core/v1 Service: the fields that say which virtual address kube-proxy translates. */
export interface Service {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: {
    /** "None" for a headless service (no translation). */
    clusterIP?: string;
    clusterIPs?: string[];
    ports?: ServicePort[];
  };
}

/** discovery.k8s.io/v1 EndpointSlice: where a Service's traffic goes. */
export interface EndpointSlice {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: { addresses: string[]; conditions?: { ready?: boolean } }[];
  ports?: { name?: string; protocol?: PolicyProtocol; port?: number }[];
}

/** The label naming the Service an EndpointSlice belongs to. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
