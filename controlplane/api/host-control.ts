// What the HTTP API needs from the router's host networking (bridge,
// container endpoints, exposed addresses). The composition root (weaver)
// implements it over dataplane/host; the API layer only sees these types.

/** A container's network namespace: a namespace file path, or a process whose namespace it is. */
export type HostNetnsTarget = { netns: string } | { pid: number };

export interface HostRoute {
  /** Destination CIDR. */
  dst: string;
  /** Next hop; absent: the destination is on-link. */
  gateway?: string;
}

export interface HostAttachRequest {
  target: HostNetnsTarget;
  /** Shown by `weave ps`: a container id, or the namespace as the user gave it. */
  label: string;
  cidrs: string[];
  multicastRoute: boolean;
  /** Options a CNI runtime sets (spec §7.4); absent: `weave attach`'s defaults (ethwe, pid-based veth, hairpin, bridge MTU, no routes). */
  ifname?: string;
  vethId?: string;
  hairpin?: boolean;
  mtu?: number;
  routes?: HostRoute[];
}

export interface HostEndpointInfo {
  /** The host end of the veth pair ('' when not found). */
  hostVeth: string;
  mac: string;
  mtu: number;
  cidrs: string[];
  routes: HostRoute[];
}

export interface HostPsEntry {
  label: string;
  mac: string;
  cidrs: string[];
}

/** A failure caused by the request (bad namespace, not attached): reported as 400, else 500. */
export class HostRequestError extends Error {}

export interface HostControl {
  /** Attaches (idempotently); returns the addresses the container now has on ethwe. */
  attach(req: HostAttachRequest): Promise<string[]>;
  /** Removes addresses (all when empty) from `ifname` (default ethwe); returns those removed. */
  detach(target: HostNetnsTarget, cidrs: string[], ifname?: string): Promise<string[]>;
  /** The container's interface `ifname` (default ethwe), or undefined when it has none. */
  inspect(target: HostNetnsTarget, ifname?: string): Promise<HostEndpointInfo | undefined>;
  /** Every address on the container's weave interface, whoever put it there (none when not attached). */
  addresses(target: HostNetnsTarget): Promise<string[]>;
  /** `weave:expose` first, then attached containers; `labels` filters. */
  ps(labels: string[]): Promise<HostPsEntry[]>;
  expose(cidr: string, masquerade: boolean): Promise<void>;
  /** Removes bridge addresses (all when empty); returns those removed. */
  hide(cidrs: string[]): Promise<string[]>;
  /** `bridge`, `fastdp` or `bridged_fastdp` (spec §1.13). */
  bridgeType(): string;
}
