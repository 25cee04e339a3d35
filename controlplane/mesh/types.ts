// Shared mesh types: the seam between the wire layer (gob codecs, handshake,
// framing, encryption over TCP) and the mesh logic (peers, topology, routes,
// gossip, connection maker). Types only.

/** Peer name, `mac` flavour (spec §1.6): a 48-bit value held as a bigint. */
export type PeerName = bigint;
/** Peer incarnation id (spec §1.6), random non-zero u64 per router start. */
export type PeerUID = bigint;
/** 12-bit short peer id used by the fast datapath (spec §4.8). */
export type PeerShortID = number;

/** The local peer's identity, as advertised in the handshake features (spec §1.5). */
export interface PeerIdentity {
  name: PeerName;
  nickName: string;
  uid: PeerUID;
  shortId: PeerShortID;
}

/** What the remote told us in its features map, parsed (spec §1.5). */
export interface RemoteFeatures {
  name: PeerName;
  nickName: string;
  uid: PeerUID;
  connId: bigint;
  shortId?: PeerShortID;
  /** Whether the remote considers OUR address trusted (`Trusted` feature). */
  trusted?: boolean;
  /** Overlay names in the remote's preference order; undefined = legacy peer. */
  overlays?: string[];
}

/** Outcome of a completed handshake on one TCP connection (spec §1.2-1.5). */
export interface Handshake {
  protocolVersion: number;
  outbound: boolean;
  /** "ip:port" of the remote end of the TCP connection. */
  remoteAddr: string;
  /** "ip:port" of our end of the TCP connection. */
  localAddr: string;
  remote: RemoteFeatures;
  /** ourConnID XOR theirConnID, identical on both ends (spec §1.6). */
  connUID: bigint;
  /** 32-byte session key when the connection is encrypted (spec §3.1). */
  sessionKey?: Uint8Array;
}

/**
 * A framed, possibly encrypted, message link over one control connection after
 * the handshake (spec §2.1). Bodies are `u8 tag | payload`. The TCP
 * implementation lives in the wire layer; tests use an in-memory pair.
 */
export interface MessageLink {
  /** Queue a body for sending; throws if it exceeds the 10 MiB frame limit. */
  send(body: Uint8Array): void;
  /** Start delivering received bodies (the wire layer buffers until then, spec §1.7). */
  start(handlers: { onMessage(body: Uint8Array): void; onClose(reason: Error | undefined): void }): void;
  close(reason?: Error): void;
}

/** Topology gossip records (spec §4.5). */
export interface PeerSummary {
  name: PeerName;
  nickName: string;
  uid: PeerUID;
  version: bigint;
  shortId: PeerShortID;
  hasShortId: boolean;
}

export interface ConnectionSummary {
  name: PeerName;
  remoteTcpAddr: string;
  outbound: boolean;
  established: boolean;
}

export interface PeerRecord {
  summary: PeerSummary;
  connections: ConnectionSummary[];
}

/** A received topology record whose connection list may have been left undecoded. */
export interface ReceivedPeerRecord {
  summary: PeerSummary;
  /** Undefined when the receiver did not want them: it holds this record or a newer one. */
  connections: ConnectionSummary[] | undefined;
}

/** Gossip envelope tags and contents (spec §2.2, §4.1). */
export const enum ProtocolTag {
  Heartbeat = 0,
  ConnectionEstablished = 1,
  FragmentationReceived = 2,
  PMTUVerified = 3,
  Gossip = 4,
  GossipUnicast = 5,
  GossipBroadcast = 6,
  OverlayControlMsg = 7,
}

export type GossipEnvelope =
  | { tag: ProtocolTag.Gossip; channel: string; src: PeerName; payload: Uint8Array }
  | { tag: ProtocolTag.GossipUnicast; channel: string; src: PeerName; dst: PeerName; payload: Uint8Array }
  | { tag: ProtocolTag.GossipBroadcast; channel: string; src: PeerName; payload: Uint8Array };
