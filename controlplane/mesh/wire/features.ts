// Handshake features: a gob map[string]string (spec §1.5), sent as the first
// framed message in V2 and as the first gob value of the stream in V1.
import type { PeerIdentity, RemoteFeatures } from '../types.js';
import { encodeGobStream, decodeGobStream, GobDecodeError, type GobType, type GobValue } from '../gob/index.js';
import { formatPeerName, parsePeerName } from './peer-name.js';
import { WireDecodeError } from './errors.js';

/** The peer-name flavour Weave Net uses (spec §1.6). */
export const PEER_NAME_FLAVOUR = 'mac';

export const FeatureKey = {
  PeerNameFlavour: 'PeerNameFlavour',
  Name: 'Name',
  NickName: 'NickName',
  UID: 'UID',
  ConnID: 'ConnID',
  ShortID: 'ShortID',
  Trusted: 'Trusted',
  Overlays: 'Overlays',
  PublicKey: 'PublicKey',
} as const;

/** The only keys a V1 peer keeps, since V1 features travel unencrypted (spec §1.4). */
export const V1_FEATURE_KEYS: readonly string[] = [
  FeatureKey.ConnID, FeatureKey.Name, FeatureKey.NickName, FeatureKey.PeerNameFlavour, FeatureKey.UID,
];

export const featuresGobType: GobType = { kind: 'map', key: { kind: 'string' }, elem: { kind: 'string' } };

export type FeaturesMap = Map<string, string>;

export interface LocalFeatures {
  identity: PeerIdentity;
  connId: bigint;
  /** Whether WE trust the remote's address (`--trusted-subnets`); omitted when undefined. */
  trusted?: boolean;
  /** Overlays in our preference order; omitted (legacy peer) when undefined. */
  overlays?: readonly string[];
}

export function buildFeatures(local: LocalFeatures): FeaturesMap {
  const m: FeaturesMap = new Map([
    [FeatureKey.PeerNameFlavour, PEER_NAME_FLAVOUR],
    [FeatureKey.Name, formatPeerName(local.identity.name)],
    [FeatureKey.NickName, local.identity.nickName],
    [FeatureKey.UID, local.identity.uid.toString(10)],
    [FeatureKey.ConnID, local.connId.toString(10)],
    [FeatureKey.ShortID, String(local.identity.shortId)],
  ]);
  if (local.trusted !== undefined) m.set(FeatureKey.Trusted, local.trusted ? 'true' : 'false');
  if (local.overlays !== undefined) m.set(FeatureKey.Overlays, local.overlays.join(' '));
  return m;
}

/** A complete gob stream holding the map (spec §1.8.8). */
export function encodeFeatures(features: FeaturesMap): Uint8Array {
  return encodeGobStream([{ type: featuresGobType, value: features as Map<GobValue, GobValue> }]);
}

/** Checks that a decoded gob value is a map[string]string. */
export function featuresFromGob(value: GobValue | undefined): FeaturesMap {
  if (!(value instanceof Map)) throw new WireDecodeError('features: expected a gob map[string]string');
  const out: FeaturesMap = new Map();
  for (const [k, v] of value) {
    if (typeof k !== 'string' || typeof v !== 'string') throw new WireDecodeError('features: map keys and values must be strings');
    out.set(k, v);
  }
  return out;
}

/** Decodes the features message of a V2 handshake. */
export function decodeFeatures(bytes: Uint8Array): FeaturesMap {
  let values: GobValue[];
  try {
    values = decodeGobStream(bytes);
  } catch (err) {
    if (err instanceof GobDecodeError) throw new WireDecodeError(`features: ${err.message}`);
    throw err;
  }
  if (values.length !== 1) throw new WireDecodeError(`features: expected one gob value, got ${values.length}`);
  return featuresFromGob(values[0]);
}

const DECIMAL = /^[0-9]+$/;

function parseDecimal(key: string, text: string, bits: number): bigint {
  if (!DECIMAL.test(text)) throw new WireDecodeError(`features: field ${key} is not a decimal number: ${JSON.stringify(text)}`);
  const v = BigInt(text);
  if (v >= 1n << BigInt(bits)) throw new WireDecodeError(`features: field ${key} = ${text} does not fit in ${bits} bits`);
  return v;
}

/** Go strconv.ParseBool syntax. */
function parseBool(key: string, text: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  throw new WireDecodeError(`features: field ${key} is not a boolean: ${JSON.stringify(text)}`);
}

/** Validates and parses the remote's features (spec §1.5, §1.7 step 1). */
export function parseFeatures(m: FeaturesMap): RemoteFeatures {
  const required = (key: string): string => {
    const v = m.get(key);
    if (v === undefined) throw new WireDecodeError(`features: field ${key} is missing`);
    return v;
  };
  const flavour = required(FeatureKey.PeerNameFlavour);
  if (flavour !== PEER_NAME_FLAVOUR) {
    throw new WireDecodeError(`peer name flavour mismatch: ours is '${PEER_NAME_FLAVOUR}', remote's is '${flavour}'`);
  }
  const nameText = required(FeatureKey.Name);
  const nickName = required(FeatureKey.NickName);
  const uidText = required(FeatureKey.UID);
  const connIdText = required(FeatureKey.ConnID);
  const out: RemoteFeatures = {
    name: parsePeerName(nameText),
    nickName,
    uid: parseDecimal(FeatureKey.UID, uidText, 64),
    connId: parseDecimal(FeatureKey.ConnID, connIdText, 64),
  };
  const shortId = m.get(FeatureKey.ShortID);
  if (shortId !== undefined) out.shortId = Number(parseDecimal(FeatureKey.ShortID, shortId, 12));
  const trusted = m.get(FeatureKey.Trusted);
  if (trusted !== undefined) out.trusted = parseBool(FeatureKey.Trusted, trusted);
  const overlays = m.get(FeatureKey.Overlays);
  if (overlays !== undefined) out.overlays = overlays.split(' ').filter((o) => o !== '');
  return out;
}
