// Errors of the control-connection wire layer. Malformed bytes from a peer are
// always a WireDecodeError (never a crash); handshake refusals are HandshakeError.

/** Bytes from the peer that do not parse (header, frame, envelope, topology, features). */
export class WireDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireDecodeError';
  }
}

/** The handshake was refused: incompatible peer, bad credentials, timeout. */
export class HandshakeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HandshakeError';
  }
}
