// One added control connection (spec §2.3, §2.5): heartbeats, the read
// deadline, per-channel gossip send queues, and handing received bodies to
// the router. Created only after validation (spec §1.7).
import type { Cancel, Clock } from './clock.js';
import { GossipSender } from './gossip-sender.js';
import { formatPeerName } from './peer.js';
import type { GossipEnvelope, Handshake, MessageLink, PeerName } from './types.js';
import { HEARTBEAT_INTERVAL_MS, READ_TIMEOUT_MS } from './wire/message-link.js';
const HEARTBEAT_BODY = Uint8Array.of(0);

export interface ConnectionHost {
  readonly ourName: PeerName;
  readonly clock: Clock;
  encodeEnvelope(e: GossipEnvelope): Uint8Array;
  /** A body arrived; throwing closes this connection (spec §4.2). */
  receive(conn: MeshConnection, body: Uint8Array): void;
  closed(conn: MeshConnection, reason: Error | undefined): void;
  warn(msg: string): void;
}

export class MeshConnection {
  readonly remoteName: PeerName;
  readonly remoteNickName: string;
  readonly outbound: boolean;
  readonly remoteAddr: string;
  readonly localAddr: string;
  readonly connUID: bigint;
  /** Data-plane confirmed (spec §2.5 ESTABLISHED). */
  established = false;
  readonly addedAt: number;
  private readonly senders = new Map<string, GossipSender>();
  private heartbeat: Cancel | undefined;
  private readDeadline: Cancel | undefined;
  private isClosed = false;

  constructor(
    readonly handshake: Handshake,
    private readonly link: MessageLink,
    private readonly host: ConnectionHost,
  ) {
    this.remoteName = handshake.remote.name;
    this.remoteNickName = handshake.remote.nickName;
    this.outbound = handshake.outbound;
    this.remoteAddr = handshake.remoteAddr;
    this.localAddr = handshake.localAddr;
    this.connUID = handshake.connUID;
    this.addedAt = host.clock.now();
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** Begin reading and heartbeating (only after the router added the connection, spec §1.7). */
  start(): void {
    this.armReadDeadline();
    this.scheduleHeartbeat();
    this.link.start({
      onMessage: (body) => this.onMessage(body),
      onClose: (reason) => this.close(reason),
    });
  }

  /** Send a body (tag first) as is; used for overlay control messages and relayed unicasts. */
  send(body: Uint8Array): void {
    if (this.isClosed) return;
    try {
      this.link.send(body);
    } catch (err) {
      this.host.warn(`connection to ${this.describe()}: cannot send: ${(err as Error).message}`);
    }
  }

  sender(channel: string): GossipSender {
    let s = this.senders.get(channel);
    if (!s) {
      s = new GossipSender(channel, this.host.ourName, (e) => this.host.encodeEnvelope(e), (body) => this.send(body));
      this.senders.set(channel, s);
    }
    return s;
  }

  close(reason?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.heartbeat?.();
    this.readDeadline?.();
    for (const s of this.senders.values()) s.discard();
    this.link.close(reason);
    this.host.closed(this, reason);
  }

  describe(): string {
    return `${formatPeerName(this.remoteName)}(${this.remoteNickName}) at ${this.remoteAddr}`;
  }

  private onMessage(body: Uint8Array): void {
    if (this.isClosed) return;
    this.armReadDeadline();
    try {
      this.host.receive(this, body);
    } catch (err) {
      this.close(err instanceof Error ? err : new Error(String(err)));
    }
  }

  // spec §2.3: heartbeat every 30 s, tear down after 60 s of silence.
  private scheduleHeartbeat(): void {
    this.heartbeat = this.host.clock.schedule(HEARTBEAT_INTERVAL_MS, () => {
      this.send(HEARTBEAT_BODY);
      if (!this.isClosed) this.scheduleHeartbeat();
    });
  }

  private armReadDeadline(): void {
    this.readDeadline?.();
    this.readDeadline = this.host.clock.schedule(READ_TIMEOUT_MS, () => {
      this.close(new Error(`no message from ${this.describe()} for ${READ_TIMEOUT_MS / 1000} s (read timeout)`));
    });
  }
}
