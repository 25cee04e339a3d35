// The decoded `nameserver` gossip payload (wire spec §9.1 `GossipData`).
import type { Entry } from './entries.js';

export interface GossipPayload {
  /** Sender's unix time in seconds when the message was built. */
  timestamp: number;
  entries: Entry[];
}

/** Raised for gossip the nameserver refuses; the mesh closes the connection (wire spec §4.2). */
export class DnsGossipError extends Error {
  constructor(message: string) {
    super(`nameserver gossip: ${message}`);
    this.name = 'DnsGossipError';
  }
}
