// The mesh wire layer: identifiers, protocol header, handshake features, framing,
// gossip envelopes, topology payloads, and the TCP handshake that yields a MessageLink.
export * from './errors.js';
export * from './peer-name.js';
export * from './header.js';
export * from './features.js';
export * from './framing.js';
export * from './envelope.js';
export * from './topology-codec.js';
export { performHandshake, HEADER_TIMEOUT_MS, type HandshakeOptions, type HandshakeResult, type HandshakeTimeouts } from './handshake.js';
export { TcpMessageLink, HEARTBEAT_INTERVAL_MS, READ_TIMEOUT_MS, type LinkTimers } from './message-link.js';
