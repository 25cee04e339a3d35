// IPAM without an external store (spec §8): the ring CRDT, Paxos bootstrap,
// the allocator that gossips on `IPallocation`, its messages, status and persistence.
export * from './addr.js';
export * from './ring.js';
export { Space } from './space.js';
export * from './paxos.js';
export * from './messages.js';
export * from './gob-types.js';
export { gobStreamCodec } from './gob-codec.js';
export * from './gossip-port.js';
export * from './allocator.js';
export * from './status.js';
export * from './config.js';
export type { IpamStore, PersistedIpam } from './store.js';
export { FileIpamStore, IpamDataFileError, IPAM_DATA_FILE } from './persistence.js';
export { registerIpamRoutes, type IpamHttpOptions } from './http.js';
