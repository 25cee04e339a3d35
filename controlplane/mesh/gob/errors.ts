// Errors raised by the gob codec. Decoding never throws anything else, so a
// connection handler can treat a GobDecodeError as "the peer sent garbage".

/** The bytes received are not a valid gob stream (or exceed a safety limit). */
export class GobDecodeError extends Error {
  constructor(message: string) {
    super(`gob decode: ${message}`);
    this.name = 'GobDecodeError';
  }
}

/** A value does not match the type descriptor it is being encoded with. */
export class GobEncodeError extends Error {
  constructor(message: string) {
    super(`gob encode: ${message}`);
    this.name = 'GobEncodeError';
  }
}
