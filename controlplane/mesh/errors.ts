// Why a connection was refused after the handshake (spec §1.7), and why a
// dial was refused before one. The connection maker reads them to decide
// whether, and how soon, to try the address again.
import { formatPeerName } from './peer.js';
import type { PeerName } from './types.js';

export class ConnectionRefusedError extends Error {
  /** False for errors that will never go away by retrying the same address. */
  readonly retry: boolean = true;
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionRefusedError';
  }
}

export class UnknownRemoteError extends ConnectionRefusedError {
  constructor(name: PeerName) {
    super(`Found unknown remote name: ${formatPeerName(name)} at a discovered address (only peers known from topology are accepted there)`);
    this.name = 'UnknownRemoteError';
  }
}

export class PeerNameCollisionError extends ConnectionRefusedError {
  override readonly retry = false;
  constructor(name: PeerName) {
    super(
      `Peer name collision: the remote peer is also called ${formatPeerName(name)} but is a different router (give one of them another --name)`,
    );
    this.name = 'PeerNameCollisionError';
  }
}

export class SelfConnectionError extends ConnectionRefusedError {
  override readonly retry = false;
  constructor() {
    super('cannot connect to ourself');
    this.name = 'SelfConnectionError';
  }
}

export class DuplicateConnectionError extends ConnectionRefusedError {
  constructor(name: PeerName) {
    super(`Multiple connections to ${formatPeerName(name)}: keeping the one with the lower connection UID`);
    this.name = 'DuplicateConnectionError';
  }
}

export class ConnectionLimitError extends ConnectionRefusedError {
  constructor(limit: number) {
    super(`Connection limit reached (${limit}); raise --conn-limit to accept more`);
    this.name = 'ConnectionLimitError';
  }
}

/**
 * A peer sent gossip that would grow our state past a safety bound (too many
 * peers in the topology, too many unknown gossip channels). Weave has no such
 * bounds; they sit far above any real mesh so that one hostile or broken peer
 * cannot take memory without limit. The connection that carried it is closed.
 */
export class GossipLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GossipLimitError';
  }
}

/**
 * A dial answered with a reset: the host is up, but nothing listens on its
 * mesh port yet (a router still starting or restarting). The connection
 * maker retries these sooner than other failures.
 */
export class PortNotListeningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortNotListeningError';
  }
}
