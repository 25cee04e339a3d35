// The control-connection handshake (spec §1.2-1.5): protocol header, then the
// V2 introduction (encryption flag, ephemeral key, features as the first
// framed message) or the V1 legacy one (features as the first gob value).
import type { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Handshake, MessageLink, PeerIdentity, RemoteFeatures } from '../types.js';
import { GobEncoder, GobDecoder, GobDecodeError } from '../gob/index.js';
import {
  ControlCipher, DecryptError, generateEphemeralKeyPair, deriveSessionKey, PUBLIC_KEY_SIZE, type EphemeralKeyPair,
} from '../../../crypto/index.js';
import { encodeHeader, parseHeader, negotiateVersion, HEADER_SIZE, PROTOCOL_MAX_VERSION, PROTOCOL_MIN_VERSION } from './header.js';
import {
  buildFeatures, decodeFeatures, encodeFeatures, featuresFromGob, featuresGobType, parseFeatures,
  FeatureKey, V1_FEATURE_KEYS, type FeaturesMap,
} from './features.js';
import { encodeFrame, FRAME_HEADER_SIZE } from './framing.js';
import { SocketReader } from './socket-reader.js';
import { TcpMessageLink, framedTransport, gobTransport, HEARTBEAT_INTERVAL_MS, READ_TIMEOUT_MS, type BodyTransport } from './message-link.js';
import { HandshakeError, WireDecodeError } from './errors.js';
import { isIPv6Literal } from '../../host-port.js';
import type { GobValue } from '../gob/index.js';

/** spec §1.2: the header exchange must finish within 10 s. */
export const HEADER_TIMEOUT_MS = 10_000;
/**
 * Largest features message accepted (V2). A real one is a map of a few short
 * strings (~200 bytes); Weave would take up to maxTCPMsgSize, but a peer that
 * has not yet proved anything should not make us buffer 10 MiB.
 */
export const MAX_FEATURES_SIZE = 64 * 1024;

export interface HandshakeTimeouts {
  /** Header exchange (default 10 s). */
  headerMs: number;
  /** Read deadline for the introduction and, on the link, between messages (default 60 s). */
  readMs: number;
  /** Heartbeat interval on the link (default 30 s). */
  heartbeatMs: number;
}

export interface HandshakeOptions {
  identity: PeerIdentity;
  /** Raw password bytes; undefined = no encryption. */
  password?: Uint8Array;
  outbound: boolean;
  /** Whether we trust the remote's address (sent as the `Trusted` feature). */
  trustedRemote: boolean;
  /** Our overlays in preference order; undefined = behave as a legacy (mesh-only) peer. */
  overlays?: string[];
  /** Lowest protocol version we accept (`--min-protocol-version`, default 1). */
  minVersion?: 1 | 2;
  /** Highest protocol version we offer (default 2; 1 only to exercise the legacy path). */
  maxVersion?: 1 | 2;
  /** Random per connection when not given. */
  connId?: bigint;
  timeouts?: Partial<HandshakeTimeouts>;
  /**
   * The remote sent a weave protocol header in a version we share: a peer,
   * not a stray connection, is on the other end. Called once, before the
   * rest of the handshake.
   */
  onPeerHeader?(): void;
}

export interface HandshakeResult { handshake: Handshake; link: MessageLink }

const ENCRYPTION_OFF = 0x00;
const ENCRYPTION_ON = 0x01;

function formatAddr(address: string | undefined, port: number | undefined): string {
  let a = address ?? '';
  if (a.startsWith('::ffff:') && a.includes('.')) a = a.slice(7);
  return isIPv6Literal(a) ? `[${a}]:${port ?? 0}` : `${a}:${port ?? 0}`;
}

function randomConnId(): bigint {
  return randomBytes(8).readBigUInt64BE(0);
}

/**
 * Runs a stage with a deadline that fails the pending read and the stage.
 * Each turn of the event loop runs due timers before it reads sockets, so
 * after a stall longer than the deadline (a router starting on a loaded
 * machine compiles for seconds at a time) the timer would fire while the
 * peer's bytes already wait in the socket: the failure is decided after the
 * next socket poll instead (setImmediate runs after it), which delivers them.
 */
async function withDeadline<T>(reader: SocketReader, ms: number, what: string, stage: () => Promise<T>): Promise<T> {
  let settled = false;
  let afterPoll: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => {
    afterPoll = setImmediate(() => {
      if (!settled) reader.fail(new HandshakeError(`timed out after ${ms} ms waiting for the ${what}`));
    });
  }, ms);
  try {
    return await stage();
  } finally {
    settled = true;
    clearTimeout(timer);
    if (afterPoll) clearImmediate(afterPoll);
  }
}

/** Performs the handshake on a connected socket; on failure the socket is destroyed. */
export async function performHandshake(socket: Socket, opts: HandshakeOptions): Promise<HandshakeResult> {
  const timeouts: HandshakeTimeouts = {
    headerMs: opts.timeouts?.headerMs ?? HEADER_TIMEOUT_MS,
    readMs: opts.timeouts?.readMs ?? READ_TIMEOUT_MS,
    heartbeatMs: opts.timeouts?.heartbeatMs ?? HEARTBEAT_INTERVAL_MS,
  };
  const reader = new SocketReader(socket);
  try {
    return await handshake(socket, reader, opts, timeouts);
  } catch (err) {
    reader.detach();
    socket.destroy();
    if (err instanceof HandshakeError) throw err;
    if (err instanceof WireDecodeError || err instanceof GobDecodeError) throw new HandshakeError(err.message);
    throw err;
  }
}

async function handshake(socket: Socket, reader: SocketReader, opts: HandshakeOptions, timeouts: HandshakeTimeouts): Promise<HandshakeResult> {
  const ours = { min: opts.minVersion ?? PROTOCOL_MIN_VERSION, max: opts.maxVersion ?? PROTOCOL_MAX_VERSION };
  if (ours.min > ours.max) throw new HandshakeError(`minimum protocol version ${ours.min} is above the maximum ${ours.max}`);
  socket.write(encodeHeader(ours));
  const theirs = await withDeadline(reader, timeouts.headerMs, 'protocol header', async () => {
    try {
      return parseHeader(await reader.read(HEADER_SIZE));
    } catch (err) {
      // A peer that rejects our version range closes at once with a reset, which
      // can overtake its own header on the way to us (spec §1.1, §1.2).
      if (err instanceof HandshakeError && err.message.startsWith('connection ')) {
        throw new HandshakeError(`${err.message} (during the protocol header exchange; if the peer is a weave peer, `
          + `check that its protocol version range overlaps ours, ${ours.min}..${ours.max})`);
      }
      throw err;
    }
  });
  const version = negotiateVersion(ours, theirs);
  opts.onPeerHeader?.();

  const connId = opts.connId ?? randomConnId();
  const features = buildFeatures({ identity: opts.identity, connId, trusted: opts.trustedRemote, overlays: opts.overlays });
  const keys = opts.password ? generateEphemeralKeyPair() : undefined;

  const intro = version === 2
    ? await withDeadline(reader, timeouts.readMs, 'handshake introduction', () => introV2(socket, reader, opts, features, keys))
    : await withDeadline(reader, timeouts.readMs, 'handshake introduction', () => introV1(socket, reader, opts, features, keys));

  const remote: RemoteFeatures = parseFeatures(intro.remoteFeatures);
  const cipher = intro.cipher;
  const leftover = reader.detach();
  const link = new TcpMessageLink(socket, intro.transport, cipher, { heartbeatMs: timeouts.heartbeatMs, readTimeoutMs: timeouts.readMs },
    leftover, intro.bodies);
  const handshakeResult: Handshake = {
    protocolVersion: version,
    outbound: opts.outbound,
    remoteAddr: formatAddr(socket.remoteAddress, socket.remotePort),
    localAddr: formatAddr(socket.localAddress, socket.localPort),
    remote,
    connUID: connId ^ remote.connId,
  };
  if (intro.sessionKey) handshakeResult.sessionKey = intro.sessionKey;
  return { handshake: handshakeResult, link };
}

interface Intro {
  remoteFeatures: FeaturesMap;
  sessionKey?: Uint8Array;
  transport: BodyTransport;
  /** Bodies already split from the stream (V1). */
  bodies: Uint8Array[];
  /** Sealing state; in V2 it has already carried the features message (#0 each way, spec §3.2). */
  cipher?: ControlCipher;
}

/** spec §1.3 */
async function introV2(socket: Socket, reader: SocketReader, opts: HandshakeOptions, features: FeaturesMap,
  keys: EphemeralKeyPair | undefined): Promise<Intro> {
  socket.write(keys ? Uint8Array.from([ENCRYPTION_ON, ...keys.publicKey]) : Uint8Array.of(ENCRYPTION_OFF));
  const flag = (await reader.read(1))[0]!;
  let sessionKey: Uint8Array | undefined;
  if (flag === ENCRYPTION_OFF) {
    if (keys) throw new HandshakeError('peer requested an unencrypted connection, but a password is configured here (set the same password on both peers)');
  } else if (flag === ENCRYPTION_ON) {
    if (!keys) throw new HandshakeError('peer requested an encrypted connection, but no password is configured here (set the same password on both peers)');
    const remotePublic = await reader.read(PUBLIC_KEY_SIZE);
    try {
      sessionKey = deriveSessionKey(remotePublic, keys.secretKey, opts.password!);
    } catch (err) {
      throw new HandshakeError(`cannot derive the session key: ${(err as Error).message}`);
    }
  } else {
    throw new HandshakeError(`bad encryption flag 0x${flag.toString(16)} from peer`);
  }

  // The features message is the first framed message in each direction, sealed
  // with sequence number 0 when encrypted (spec §3.2).
  const cipher = sessionKey ? new ControlCipher(sessionKey, opts.outbound) : undefined;
  const ourFeatures = encodeFeatures(features);
  socket.write(encodeFrame(cipher ? cipher.seal(ourFeatures) : ourFeatures));

  const lenBytes = await reader.read(FRAME_HEADER_SIZE);
  const len = new DataView(lenBytes.buffer, lenBytes.byteOffset, 4).getUint32(0, false);
  if (len > MAX_FEATURES_SIZE) throw new HandshakeError(`features message of ${len} bytes exceeds the ${MAX_FEATURES_SIZE}-byte limit`);
  const sealed = await reader.read(len);
  let body: Uint8Array;
  try {
    body = cipher ? cipher.open(sealed) : sealed;
  } catch (err) {
    if (err instanceof DecryptError) {
      throw new HandshakeError('unable to decrypt the features message from peer (password mismatch?)');
    }
    throw err;
  }
  const intro: Intro = { remoteFeatures: decodeFeatures(body), transport: framedTransport(), bodies: [] };
  if (sessionKey && cipher) { intro.sessionKey = sessionKey; intro.cipher = cipher; }
  return intro;
}

const HEX_KEY = /^[0-9a-f]{64}$/;

/** spec §1.4: features are the first value of a gob stream that lasts the whole connection. */
async function introV1(socket: Socket, reader: SocketReader, opts: HandshakeOptions, features: FeaturesMap,
  keys: EphemeralKeyPair | undefined): Promise<Intro> {
  const sent: FeaturesMap = new Map([...features].filter(([k]) => V1_FEATURE_KEYS.includes(k)));
  if (keys) sent.set(FeatureKey.PublicKey, Buffer.from(keys.publicKey).toString('hex'));
  const encoder = new GobEncoder();
  encoder.encode(featuresGobType, sent as Map<GobValue, GobValue>);
  socket.write(encoder.takeBytes());

  const decoder = new GobDecoder();
  let values: GobValue[] = [];
  while (values.length === 0) values = decoder.push(await reader.readSome());
  const received = featuresFromGob(values[0]);
  const remoteFeatures: FeaturesMap = new Map([...received].filter(([k]) => V1_FEATURE_KEYS.includes(k)));

  let sessionKey: Uint8Array | undefined;
  const publicKeyHex = received.get(FeatureKey.PublicKey);
  if (keys && publicKeyHex === undefined) {
    throw new HandshakeError('peer requested an unencrypted connection, but a password is configured here (set the same password on both peers)');
  }
  if (!keys && publicKeyHex !== undefined) {
    throw new HandshakeError('peer requested an encrypted connection, but no password is configured here (set the same password on both peers)');
  }
  if (keys && publicKeyHex !== undefined) {
    if (!HEX_KEY.test(publicKeyHex)) throw new HandshakeError('peer sent a malformed PublicKey feature (expected 64 hex digits)');
    sessionKey = deriveSessionKey(Uint8Array.from(Buffer.from(publicKeyHex, 'hex')), keys.secretKey, opts.password!);
  }
  const transport = gobTransport(encoder, decoder);
  const bodies = values.slice(1).map((v) => {
    if (!(v instanceof Uint8Array)) throw new HandshakeError('protocol v1: expected a gob []byte message after the features');
    return v;
  });
  const intro: Intro = { remoteFeatures, transport, bodies };
  if (sessionKey) { intro.sessionKey = sessionKey; intro.cipher = new ControlCipher(sessionKey, opts.outbound); }
  return intro;
}
