// Gossip envelopes (spec §4.1): the body is `tag | gob stream` where the stream
// holds builtin values only: channel string, source (and for unicast, destination)
// peer name as uint, payload []byte.
import { ProtocolTag, type GossipEnvelope, type PeerName } from '../types.js';
import { GobEncoder, GobDecoder, GobDecodeError, GobTypeId, type GobType, type GobValue } from '../gob/index.js';
import { ByteWriter } from '../gob/primitives.js';
import { WireDecodeError } from './errors.js';

const stringT: GobType = { kind: 'string' };
const uintT: GobType = { kind: 'uint' };

export function isGossipTag(tag: number): tag is ProtocolTag.Gossip | ProtocolTag.GossipUnicast | ProtocolTag.GossipBroadcast {
  return tag === ProtocolTag.Gossip || tag === ProtocolTag.GossipUnicast || tag === ProtocolTag.GossipBroadcast;
}

/**
 * The full message body, tag byte first. The payload (up to megabytes of
 * topology or IPAM state) is copied once, straight into the body: its gob
 * message is written by hand as the encoder would (spec §1.8.4: length, type
 * id, singleton marker 0, byte count, bytes).
 */
export function encodeGossipMessage(env: GossipEnvelope): Uint8Array {
  const enc = new GobEncoder();
  enc.encode(stringT, env.channel);
  enc.encode(uintT, env.src);
  if (env.tag === ProtocolTag.GossipUnicast) enc.encode(uintT, env.dst);
  const head = enc.takeBytes();
  const payloadHead = new ByteWriter();
  payloadHead.intNumber(GobTypeId.bytes);
  payloadHead.byte(0);
  payloadHead.uintNumber(env.payload.length);
  const messageLength = new ByteWriter();
  messageLength.uintNumber(payloadHead.length + env.payload.length);
  // Views: both writers are done, and the parts are copied into the body below.
  const parts = [head, messageLength.view(), payloadHead.view(), env.payload];
  const body = new Uint8Array(1 + parts.reduce((n, p) => n + p.length, 0));
  body[0] = env.tag;
  let off = 1;
  for (const p of parts) { body.set(p, off); off += p.length; }
  return body;
}

function expectString(v: GobValue | undefined): string {
  if (typeof v !== 'string') throw new WireDecodeError('gossip envelope: channel name is not a gob string');
  return v;
}

function expectPeerName(v: GobValue | undefined, what: string): PeerName {
  if (typeof v !== 'bigint') throw new WireDecodeError(`gossip envelope: ${what} peer name is not a gob uint`);
  return v;
}

/** Decodes a body whose first byte is tag 4, 5 or 6. */
export function decodeGossipMessage(body: Uint8Array): GossipEnvelope {
  if (body.length === 0) throw new WireDecodeError('gossip envelope: empty body');
  const tag = body[0]!;
  if (!isGossipTag(tag)) throw new WireDecodeError(`gossip envelope: tag ${tag} is not a gossip tag (4, 5 or 6)`);
  const wanted = tag === ProtocolTag.GossipUnicast ? 4 : 3;
  let values: GobValue[];
  try {
    values = new GobDecoder().push(body.subarray(1));
  } catch (err) {
    if (err instanceof GobDecodeError) throw new WireDecodeError(`gossip envelope: ${err.message}`);
    throw err;
  }
  if (values.length < wanted) throw new WireDecodeError(`gossip envelope: expected ${wanted} values for tag ${tag}, got ${values.length}`);
  const channel = expectString(values[0]);
  const src = expectPeerName(values[1], 'source');
  const payload = values[wanted - 1];
  if (!(payload instanceof Uint8Array)) throw new WireDecodeError('gossip envelope: payload is not a gob []byte');
  if (tag === ProtocolTag.GossipUnicast) {
    return { tag, channel, src, dst: expectPeerName(values[2], 'destination'), payload };
  }
  return { tag, channel, src, payload };
}
