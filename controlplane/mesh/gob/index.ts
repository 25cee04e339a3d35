// The Go gob codec for Weave's wire (spec §1.8): type descriptors, a stream
// encoder, an incremental stream decoder, and typed accessors for decoded structs.
export * from './types.js';
export { GobEncoder, encodeGobStream, type GobEncoderOptions } from './encoder.js';
export { GobDecoder, decodeGobStream, type GobDecoderOptions, type GobSliceVisitor, type GobMessage, type LazyGobMessage } from './decoder.js';
export { GobDecodeError, GobEncodeError } from './errors.js';
export * from './read.js';
