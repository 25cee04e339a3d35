// In-process mesh harness for the mesh unit tests: in-memory MessageLink
// pairs (delivering on microtasks, like a socket would on a later tick),
// routers on one manual clock, and handshakes built the way both ends of a
// real TCP connection would see them.
import { ManualClock } from '../../controlplane/mesh/clock.js';
import { Router, type RouterOptions } from '../../controlplane/mesh/router.js';
import type { MeshConnection } from '../../controlplane/mesh/connection.js';
import type { Handshake, MessageLink, PeerIdentity, PeerName } from '../../controlplane/mesh/types.js';

/** Deterministic uniform [0,1) source (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Handlers = Parameters<MessageLink['start']>[0];

export class MemoryLink implements MessageLink {
  other!: MemoryLink;
  sent: Uint8Array[] = [];
  private handlers: Handlers | undefined;
  private buffered: Uint8Array[] = [];
  private isClosed = false;

  get closed(): boolean {
    return this.isClosed;
  }

  send(body: Uint8Array): void {
    if (body.length > 10 * 1024 * 1024) throw new Error('message too large');
    if (this.isClosed) return;
    const copy = body.slice();
    this.sent.push(copy);
    queueMicrotask(() => this.other.deliver(copy));
  }

  start(handlers: Handlers): void {
    this.handlers = handlers;
    const pending = this.buffered;
    this.buffered = [];
    queueMicrotask(() => {
      for (const b of pending) this.deliver(b);
    });
  }

  close(reason?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    queueMicrotask(() => this.handlers?.onClose(reason));
    this.other.closedByPeer();
  }

  private closedByPeer(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    queueMicrotask(() => this.handlers?.onClose(new Error('connection reset by peer')));
  }

  private deliver(body: Uint8Array): void {
    if (this.isClosed) return;
    if (this.handlers) this.handlers.onMessage(body);
    else this.buffered.push(body);
  }
}

export function linkPair(): [MemoryLink, MemoryLink] {
  const a = new MemoryLink();
  const b = new MemoryLink();
  a.other = b;
  b.other = a;
  return [a, b];
}

/** Every body a connection of a TestMesh sent on its MemoryLink, in order. */
export function sentOn(conn: MeshConnection): Uint8Array[] {
  return (conn as unknown as { link: MemoryLink }).link.sent;
}

export function identity(index: number, overrides: Partial<PeerIdentity> = {}): PeerIdentity {
  return {
    name: 0x0a0000000000n + BigInt(index),
    nickName: `host${index}`,
    uid: 1000n + BigInt(index),
    shortId: index,
    ...overrides,
  };
}

export function addressOf(index: number): string {
  return `10.0.0.${index}`;
}

let ephemeralPort = 40000;

/** The two handshakes of one TCP connection from `from` (outbound) to `to`. */
export function handshakes(from: PeerIdentity, fromIp: string, to: PeerIdentity, toAddr: string, connUID: bigint): [Handshake, Handshake] {
  const fromAddr = `${fromIp}:${ephemeralPort++}`;
  const outbound: Handshake = {
    protocolVersion: 2,
    outbound: true,
    remoteAddr: toAddr,
    localAddr: fromAddr,
    remote: { name: to.name, nickName: to.nickName, uid: to.uid, connId: connUID, shortId: to.shortId },
    connUID,
  };
  const inbound: Handshake = {
    protocolVersion: 2,
    outbound: false,
    remoteAddr: fromAddr,
    localAddr: toAddr,
    remote: { name: from.name, nickName: from.nickName, uid: from.uid, connId: 0n, shortId: from.shortId },
    connUID,
  };
  return [outbound, inbound];
}

export interface TestPeer {
  index: number;
  identity: PeerIdentity;
  router: Router;
  removed: PeerName[];
}

/** Several routers on one manual clock. */
export class TestMesh {
  readonly clock = new ManualClock();
  readonly peers: TestPeer[] = [];
  private connSeq = 1n;

  constructor(
    count: number,
    private readonly options: Partial<RouterOptions> = {},
    identities: (i: number) => PeerIdentity = (i) => identity(i + 1),
  ) {
    for (let i = 0; i < count; i++) this.add(identities(i));
  }

  add(id: PeerIdentity, extra: Partial<RouterOptions> = {}): TestPeer {
    const index = this.peers.length;
    const removed: PeerName[] = [];
    const router = new Router({
      identity: id,
      clock: this.clock,
      random: seededRandom(index + 7),
      establishImmediately: true,
      onPeerRemoved: (p) => removed.push(p.name),
      ...this.options,
      ...extra,
    });
    router.start();
    const peer = { index, identity: id, router, removed };
    this.peers.push(peer);
    return peer;
  }

  /** Connect peer i (outbound) to peer j; returns both ends' connections. */
  connect(i: number, j: number, connUID?: bigint): [MeshConnection, MeshConnection] {
    const a = this.peers[i]!;
    const b = this.peers[j]!;
    const uid = connUID ?? this.connSeq++ * 1000n;
    const [hsA, hsB] = handshakes(a.identity, addressOf(i + 1), b.identity, `${addressOf(j + 1)}:6783`, uid);
    const [la, lb] = linkPair();
    const ca = a.router.addConnection(hsA, la, { direct: true });
    const cb = b.router.addConnection(hsB, lb, { direct: true });
    return [ca, cb];
  }

  disconnect(i: number, j: number): void {
    this.peers[i]!.router.connectionTo(this.peers[j]!.identity.name)?.close(new Error('test partition'));
  }

  advance(ms: number): Promise<void> {
    return this.clock.advance(ms);
  }

  /** Peer names each router knows, sorted. */
  knownNames(i: number): PeerName[] {
    return this.peers[i]!.router.peers.all().map((p) => p.name).sort((x, y) => (x < y ? -1 : 1));
  }

  stop(): void {
    for (const p of this.peers) p.router.stop();
  }
}

/**
 * Forms a mesh as routers launched with router 0 as their only peer do: each
 * connects to router 0, then discovery adds the other connections one router
 * at a time.
 */
export async function formMeshThroughFirst(mesh: TestMesh, n: number): Promise<void> {
  for (let i = 1; i < n; i++) mesh.connect(i, 0);
  await mesh.advance(2_000);
  for (let i = 1; i < n; i++) {
    for (let j = i + 1; j < n; j++) mesh.connect(i, j);
    await mesh.advance(200);
  }
}
