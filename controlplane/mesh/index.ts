// The mesh: peers, topology, routes, gossip channels, connections and the
// connection maker (wire spec §1.6-1.7, §2.3-2.5, §4). Byte formats live in
// ./wire and ./gob.
export * from './types.js';
export { systemClock, ManualClock, settle, type Clock, type Cancel } from './clock.js';
export { wireCodec, type MeshCodec } from './codec.js';
export { Peer, UNKNOWN_PEER_NAME, formatPeerName } from './peer.js';
export { Peers, recordWins, MAX_PEERS, type PeersEvents, type UpdateResult } from './peers.js';
export { ShortIdIndex, SHORT_ID_BITS, SHORT_ID_COUNT } from './short-ids.js';
export { Routes, bfsRoutes, computeBroadcast, edgeUsable, ROUTE_RECALCULATION_DELAY_MS } from './routes.js';
export { RawGossipData, type GossipData, type Gossiper } from './gossip.js';
export { GossipChannel, NoRouteError } from './gossip-channel.js';
export { SurrogateGossiper, fnv64a } from './surrogate.js';
export { TOPOLOGY_CHANNEL, TopologyGossipData } from './topology-gossip.js';
export { MeshConnection } from './connection.js';
export { HEARTBEAT_INTERVAL_MS, READ_TIMEOUT_MS } from './wire/message-link.js';
export {
  ConnectionRefusedError,
  UnknownRemoteError,
  PeerNameCollisionError,
  SelfConnectionError,
  DuplicateConnectionError,
  ConnectionLimitError,
  GossipLimitError,
  PortNotListeningError,
} from './errors.js';
export {
  Router,
  DEFAULT_GOSSIP_INTERVAL_MS,
  DEFAULT_CONN_LIMIT,
  MAX_SURROGATE_CHANNELS,
  TOPOLOGY_BROADCAST_DELAY_MS,
  GC_DELAY_MS,
  type RouterOptions,
  type OverlayHandler,
  type MeshLogger,
  type AddConnectionOptions,
} from './router.js';
export {
  ConnectionMaker,
  nextRetry,
  INITIAL_RETRY_INTERVAL_MS,
  MAX_RETRY_INTERVAL_MS,
  RESET_AFTER_MS,
  type ConnectionMakerOptions,
  type Dialler,
  type TargetInfo,
  type TargetState,
} from './connection-maker.js';
export { meshStatus, type MeshStatus, type PeerStatus, type PeerConnectionStatus, type ConnectionStatus } from './status.js';
export { PendingHandshakes, MAX_PENDING_HANDSHAKES, MAX_PENDING_HANDSHAKES_PER_SOURCE } from './pending-handshakes.js';
