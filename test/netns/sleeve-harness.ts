// Shared set-up for the sleeve netns tests and benchmark: a `weave` bridge per
// simulated host with one container on it, a SleeveDatapath per host (sockets
// inside the host's namespace), forwarders wired to each other in-process in
// place of the mesh router's control connections, and forwarding state for a
// given topology.
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { createTestbed, mustExec, type Container, type Host, type Testbed } from './lib/index.js';
import type { PeerName } from '../../controlplane/mesh/types.js';
import type { ForwardingState, OverlayForwarder, OverlayName } from '../../controlplane/router/datapath.js';
import { SleeveDatapath, type SleeveDatapathOptions } from '../../dataplane/sleeve/index.js';
import { sleeveDatapath } from '../../dataplane/sleeve/descriptor.js';

export const SLEEVE_PORT = 6783;

export interface SleeveNode {
  index: number;
  host: Host;
  container: Container;
  /** Container address (10.32.0.i). */
  ip: string;
  name: PeerName;
  dp?: SleeveDatapath;
}

export function peerName(i: number): PeerName {
  return 0x0a0000000000n + BigInt(i);
}

/** Bridge `weave` in the host, container `c<i>` on it with 10.32.0.i/12 and the given MTU. */
export async function plugNode(host: Host, i: number, mtu: number): Promise<SleeveNode> {
  const container = await host.addContainer(`c${i}`);
  const ns = host.namespace;
  await mustExec('ip', ['-n', ns, 'link', 'add', 'weave', 'type', 'bridge']);
  await mustExec('ip', ['-n', ns, 'link', 'set', 'weave', 'up']);
  await mustExec('ip', ['link', 'add', `vethwepl${i}`, 'netns', ns, 'mtu', String(mtu), 'type', 'veth',
    'peer', 'name', 'eth0', 'netns', container.namespace, 'mtu', String(mtu), 'address', `02:73:00:00:00:0${i}`]);
  await mustExec('ip', ['-n', ns, 'link', 'set', `vethwepl${i}`, 'master', 'weave']);
  await mustExec('ip', ['-n', ns, 'link', 'set', `vethwepl${i}`, 'up']);
  await mustExec('ip', ['-n', container.namespace, 'addr', 'add', `10.32.0.${i}/12`, 'dev', 'eth0']);
  await mustExec('ip', ['-n', container.namespace, 'link', 'set', 'eth0', 'up']);
  return { index: i, host, container, ip: `10.32.0.${i}`, name: peerName(i) };
}

export type StartSleeveOptions = Pick<SleeveDatapathOptions, 'workerStart' | 'parkIdleWorkerAfterMs'>;

export async function startSleeve(node: SleeveNode, mtu: number, opts: StartSleeveOptions = {}): Promise<SleeveDatapath> {
  node.dp = await SleeveDatapath.create({
    ourName: node.name, bridge: 'weave', netns: node.host.netnsPath, port: SLEEVE_PORT, mtu, log: () => undefined, ...opts,
  });
  return node.dp;
}

/** Heartbeats every 25-400 ms until the first answer (connection.ts): well under a second here. */
export const SLEEVE_ESTABLISH_BOUND_MS = 3000;

/**
 * Two hosts on a bridge underlay with a container and a sleeve datapath each, made before the
 * file's tests and removed after them; the nodes are on the returned object once the tests run.
 */
export function useSleevePair(mtu: number, optsA: StartSleeveOptions, optsB: StartSleeveOptions): { a: SleeveNode; b: SleeveNode } {
  let bed: Testbed | undefined;
  const pair = {} as { a: SleeveNode; b: SleeveNode };
  before(async () => {
    bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
    pair.a = await plugNode(bed.host(1), 1, mtu);
    pair.b = await plugNode(bed.host(2), 2, mtu);
    await startSleeve(pair.a, mtu, optsA);
    await startSleeve(pair.b, mtu, optsB);
  });
  after(async () => {
    await stopSleeve(pair.a);
    await stopSleeve(pair.b);
    await bed?.teardown();
  });
  return pair;
}

/** Closes the node's sleeve and removes its kernel state (the capture port), as `weave reset` would. */
export async function stopSleeve(node: SleeveNode | undefined): Promise<void> {
  if (!node?.dp) return;
  await node.dp.close();
  await sleeveDatapath.teardown({ netns: node.host.netnsPath });
}

export interface Link {
  a: SleeveNode;
  b: SleeveNode;
  fa: OverlayForwarder;
  fb: OverlayForwarder;
  /** Resolves when both forwarders reported established. */
  established: Promise<void>;
  failures: Error[];
}

/** Wires a (outbound) to b (inbound) as one control connection would (spec §2.4, §5.5). */
export function connectNodes(a: SleeveNode, b: SleeveNode, encrypt: boolean): Link {
  const connUID = randomBytes(8).readBigUInt64BE();
  const sessionKey = encrypt ? new Uint8Array(randomBytes(32)) : undefined;
  const failures: Error[] = [];
  const peerOf: { fa?: OverlayForwarder; fb?: OverlayForwarder } = {};
  let doneA: () => void = () => undefined;
  let doneB: () => void = () => undefined;
  const established = Promise.all([
    new Promise<void>((r) => { doneA = r; }), new Promise<void>((r) => { doneB = r; }),
  ]).then(() => undefined);
  const fa = a.dp!.createForwarder({
    remoteName: b.name, remoteIp: b.host.address, remotePort: SLEEVE_PORT, localIp: a.host.address,
    outbound: true, connUID, sessionKey, encrypt,
  }, {
    sendControlMessage: (t, p) => peerOf.fb?.handleControlMessage(t, p),
    established: () => doneA(),
    healthChanged: () => undefined,
    failed: (e) => failures.push(e),
  });
  const fb = b.dp!.createForwarder({
    remoteName: a.name, remoteIp: a.host.address, remotePort: SLEEVE_PORT, localIp: b.host.address,
    outbound: false, connUID, sessionKey, encrypt,
  }, {
    sendControlMessage: (t, p) => peerOf.fa?.handleControlMessage(t, p),
    established: () => doneB(),
    healthChanged: () => undefined,
    failed: (e) => failures.push(e),
  });
  peerOf.fa = fa;
  peerOf.fb = fb;
  return { a, b, fa, fb, established, failures };
}

/** Unicast next hops by BFS and Broadcast(S) trees (spec §4.6) for `links` among `nodes`, applied to each datapath. */
export function applyTopology(nodes: SleeveNode[], links: Array<[SleeveNode, SleeveNode]>, overlay: OverlayName = 'sleeve', applyTo: readonly SleeveNode[] = nodes): void {
  const adj = new Map<PeerName, PeerName[]>(nodes.map((n) => [n.name, []]));
  for (const [x, y] of links) {
    adj.get(x.name)!.push(y.name);
    adj.get(y.name)!.push(x.name);
  }
  const bfsParents = (root: PeerName): Map<PeerName, PeerName> => {
    const parent = new Map<PeerName, PeerName>([[root, root]]);
    const queue = [root];
    while (queue.length) {
      const cur = queue.shift()!;
      for (const nb of adj.get(cur)!) if (!parent.has(nb)) { parent.set(nb, cur); queue.push(nb); }
    }
    return parent;
  };
  for (const n of applyTo) {
    const fromMe = bfsParents(n.name);
    const peers = nodes.filter((p) => p !== n && fromMe.has(p.name)).map((p) => {
      let hop = p.name;
      while (fromMe.get(hop) !== n.name) hop = fromMe.get(hop)!;
      return { name: p.name, nextHop: hop };
    });
    const broadcast = nodes.map((s) => {
      const tree = bfsParents(s.name);
      return { source: s.name, nextHops: adj.get(n.name)!.filter((nb) => tree.get(nb) === n.name && nb !== s.name) };
    });
    const state: ForwardingState = {
      ourName: n.name, ourShortId: n.index,
      peers,
      // 'fastdp' stands for a connection whose fast datapath carries it: the sleeve only heartbeats.
      neighbours: adj.get(n.name)!.map((nb) => ({ name: nb, overlay, remoteIp: nodes.find((x) => x.name === nb)!.host.address })),
      broadcast,
    };
    n.dp!.applyForwardingState(state);
  }
}

/** A node TCP sink in `c` on `port` that prints "<bytes> <sha256>" when the sender closes. */
/**
 * Three nodes in a line A-B-C (A-B plain, B-C encrypted): starts their sleeves,
 * pairs the forwarders, applies the topology and waits until every link is up.
 */
export async function startLineOfThree(nodes: SleeveNode[], mtu: number): Promise<Link[]> {
  for (const n of nodes) await startSleeve(n, mtu);
  const [a, b, c] = nodes as [SleeveNode, SleeveNode, SleeveNode];
  const links = [connectNodes(a, b, false), connectNodes(b, c, true)];
  applyTopology(nodes, [[a, b], [b, c]]);
  await Promise.all(links.map((l) => l.established));
  return links;
}

export function tcpSinkScript(port: number): string {
  return `const h=require('crypto').createHash('sha256');let n=0;const s=require('net').createServer(c=>{c.on('data',d=>{n+=d.length;h.update(d)});c.on('end',()=>{console.log(n+' '+h.digest('hex'));s.close();c.end()})});s.listen(${port},()=>console.log('listening'))`;
}

/** A node TCP client sending `bytes` of a repeating known pattern to ip:port. */
export function tcpSendScript(ip: string, port: number, bytes: number, pattern: string): string {
  return `const b=Buffer.alloc(${bytes},${JSON.stringify(pattern)});const c=require('net').connect(${port},${JSON.stringify(ip)},()=>{c.end(b)});c.on('close',()=>process.exit(0));c.on('error',e=>{console.error(e.message);process.exit(1)})`;
}
