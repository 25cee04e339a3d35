// Peers from the Kubernetes API and the reclaim of dead peers' IPAM space
// (user-surface spec §7.5; the facts of Weave's prog/kube-utils): every
// router records itself (peer name, node name) in the annotation
// `kube-peers.weave.works/peers` of ConfigMap kube-system/weave-net; a peer
// whose node no longer exists is reclaimed (`rmpeer`) by exactly one router,
// which first takes the lock annotation `kube-peers.weave.works/<peer>` with
// an optimistic-concurrency update - two routers racing for the same dead
// peer cannot both win (weaveworks/weave#2797, #3600).
//
// Safer than Weave: a failed node listing stops the reclaim (Weave went on with
// an empty node set and could reclaim live peers), and a node with no address
// still counts as present.
import { isIPv4 } from 'node:net';
import { KubeConflictError, type ConfigMapState, type KubeNode, type KubePort } from './kube-port.js';
import { PEER_CONFIGMAP } from './kube-api.js';

export const ANNOTATION_PREFIX = 'kube-peers.weave.works/';
export const PEER_LIST_KEY = `${ANNOTATION_PREFIX}peers`;
/** Give up re-reading after this many conflicts in a row (each is another router's successful write). */
const MAX_CONFLICTS = 20;

export interface PeerInfo {
  PeerName: string;
  NodeName: string;
}

export interface PeerList {
  Peers: PeerInfo[];
}

/** The address Weave peers with for a node: its IPv4 InternalIP, else its IPv4 ExternalIP. */
export function nodePeerAddress(node: KubeNode): string | undefined {
  const v4 = node.addresses.filter((a) => isIPv4(a.address));
  return v4.find((a) => a.type === 'InternalIP')?.address ?? v4.find((a) => a.type === 'ExternalIP')?.address;
}

/** KUBE_PEERS when given (spaces or commas), else every node's address from the API. */
export async function discoverPeers(kubePeers: string | undefined, api?: KubePort): Promise<string[]> {
  if (kubePeers !== undefined && kubePeers.trim() !== '') return kubePeers.split(/[\s,]+/).filter((p) => p !== '');
  if (!api) throw new Error('no KUBE_PEERS and no Kubernetes API to list the nodes');
  const nodes = await api.listNodes();
  return nodes.map(nodePeerAddress).filter((a): a is string => a !== undefined);
}

/** Annotation keys allow [A-Za-z0-9-_./]; anything else becomes '_' (as Weave did). */
export function annotationKey(peerName: string): string {
  return `${ANNOTATION_PREFIX}${peerName}`.replace(/[^A-Za-z0-9\-_./]/g, '_');
}

/** The peer list annotation is not the JSON object routers write (someone edited the ConfigMap). */
export class PeerListError extends Error {
  constructor(reason: string) {
    super(`annotation ${PEER_LIST_KEY} of ConfigMap ${PEER_CONFIGMAP.namespace}/${PEER_CONFIGMAP.name} is damaged (${reason}); `
      + 'remove the annotation and the routers write it afresh');
    this.name = 'PeerListError';
  }
}

export function peerListOf(state: ConfigMapState): PeerList {
  const text = state.annotations[PEER_LIST_KEY];
  if (text === undefined) return { Peers: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new PeerListError((err as Error).message);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new PeerListError('expected a JSON object {"Peers": [...]}');
  const peers: unknown[] = Array.isArray((parsed as Partial<PeerList>).Peers) ? (parsed as PeerList).Peers : [];
  return {
    Peers: peers.filter((p): p is PeerInfo => typeof p === 'object' && p !== null
      && typeof (p as PeerInfo).PeerName === 'string' && typeof (p as PeerInfo).NodeName === 'string'),
  };
}

function withPeerList(state: ConfigMapState, list: PeerList): ConfigMapState {
  return { ...state, annotations: { ...state.annotations, [PEER_LIST_KEY]: JSON.stringify(list) } };
}

/** The ConfigMap, created when missing (another router may create it first). */
async function readOrCreate(api: KubePort): Promise<ConfigMapState> {
  for (;;) {
    const cm = await api.readConfigMap();
    if (cm) return cm;
    try {
      return await api.createConfigMap();
    } catch (err) {
      if (!(err instanceof KubeConflictError)) throw err;
    }
  }
}

/**
 * Reads, changes and writes the ConfigMap until the write wins; `change`
 * returns undefined when there is nothing to write. Resolves with what it wrote
 * (or read, if nothing).
 */
async function update(api: KubePort, change: (cm: ConfigMapState) => ConfigMapState | undefined): Promise<ConfigMapState> {
  for (let conflicts = 0; ; conflicts++) {
    const cm = await readOrCreate(api);
    const next = change(cm);
    if (!next) return cm;
    try {
      return await api.replaceConfigMap(next);
    } catch (err) {
      if (!(err instanceof KubeConflictError) || conflicts >= MAX_CONFLICTS) throw err;
    }
  }
}

/** Records this router in the peer list (once). */
export async function addSelfToPeerList(api: KubePort, me: PeerInfo): Promise<PeerList> {
  const cm = await update(api, (state) => {
    const list = peerListOf(state);
    if (list.Peers.some((p) => p.PeerName === me.PeerName)) return undefined;
    return withPeerList(state, { Peers: [...list.Peers, me] });
  });
  return peerListOf(cm);
}

/** Whether this peer name is new to the cluster (Weave's --check-peer-new: a restarted router is not). */
export async function isPeerNew(api: KubePort, peerName: string): Promise<boolean> {
  const cm = await api.readConfigMap();
  return !cm || !peerListOf(cm).Peers.some((p) => p.PeerName === peerName);
}

/** Takes the router's IPAM space from a dead peer: `DELETE /peer/<name>` on the local router. */
export type RmPeer = (peerName: string) => Promise<string>;

export interface ReclaimOutcome {
  /** Peers this router reclaimed. */
  reclaimed: string[];
  /** Dead peers another router holds the lock for. */
  leftToOthers: string[];
}

/** Peers in the list whose node is gone, or that claim my node but are not me (my node's previous life). */
function deadPeers(list: PeerList, nodes: readonly KubeNode[], me: PeerInfo): PeerInfo[] {
  const present = new Set(nodes.map((n) => n.name));
  return list.Peers.filter((p) => p.PeerName !== me.PeerName && (!present.has(p.NodeName) || p.NodeName === me.NodeName));
}

/**
 * Reclaims the space of every peer whose node is gone (user-surface spec §7.5).
 * For each: take its lock annotation (or find it already ours, after a restart),
 * rmpeer it, then drop it from the list, drop its lock, and drop any lock it
 * held itself (it died mid-reclaim: someone else can retry that one).
 */
export async function reclaimRemovedPeers(api: KubePort, rmpeer: RmPeer, me: PeerInfo, log: (line: string) => void = () => undefined): Promise<ReclaimOutcome> {
  const out: ReclaimOutcome = { reclaimed: [], leftToOthers: [] };
  // A failure to list nodes throws here: never guess that nodes are gone.
  const nodes = await api.listNodes();
  const cm = await readOrCreate(api);
  for (const dead of deadPeers(peerListOf(cm), nodes, me)) {
    const key = annotationKey(dead.PeerName);
    let mine = false;
    await update(api, (state) => {
      // Decided afresh on every attempt: a write that lost a race says nothing about the next read.
      mine = false;
      const holder = state.annotations[key];
      if (holder !== undefined) {
        mine = holder === me.PeerName;
        return undefined;
      }
      if (!peerListOf(state).Peers.some((p) => p.PeerName === dead.PeerName)) return undefined; // already reclaimed
      mine = true;
      return { ...state, annotations: { ...state.annotations, [key]: me.PeerName } };
    });
    if (!mine) {
      out.leftToOthers.push(dead.PeerName);
      continue;
    }
    const said = await rmpeer(dead.PeerName);
    log(`[kube-peers] rmpeer of ${dead.PeerName} (node ${dead.NodeName}): ${said.trim()}`);
    await update(api, (state) => {
      const annotations: Record<string, string> = {};
      for (const [k, v] of Object.entries(state.annotations)) {
        if (k === key || (k.startsWith(ANNOTATION_PREFIX) && k !== PEER_LIST_KEY && v === dead.PeerName)) continue;
        annotations[k] = v;
      }
      const list = peerListOf(state);
      return withPeerList({ ...state, annotations }, { Peers: list.Peers.filter((p) => p.PeerName !== dead.PeerName) });
    });
    out.reclaimed.push(dead.PeerName);
  }
  return out;
}
