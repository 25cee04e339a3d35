// IPsec transform (NETLINK_XFRM) messages, encoded and decoded: security
// associations (states) and security policies, as pure functions of bytes
// (the handle that sends them is xfrm.ts). Message layouts follow
// include/uapi/linux/xfrm.h on x86_64 (every offset below was checked against
// offsetof() in that header; the kernel pads each struct to its alignment).
// IPv4 only: the overlay's underlay addresses are IPv4 (spec §7.4).

import { AttributeWriter, MalformedAttributeError, parseAttributes, type Attributes } from './attributes.js';
import { formatIPv4, parseIPv4 } from './inet.js';

// Message types (enum XFRM_MSG_*, linux/xfrm.h).
export const XFRM_MSG_NEWSA = 0x10;
export const XFRM_MSG_DELSA = 0x11;
export const XFRM_MSG_GETSA = 0x12;
export const XFRM_MSG_NEWPOLICY = 0x13;
export const XFRM_MSG_DELPOLICY = 0x14;
export const XFRM_MSG_GETPOLICY = 0x15;
export const XFRM_MSG_ALLOCSPI = 0x16;
export const XFRM_MSG_UPDPOLICY = 0x19;
export const XFRM_MSG_UPDSA = 0x1a;
export const XFRM_MSG_FLUSHSA = 0x1c;
export const XFRM_MSG_FLUSHPOLICY = 0x1d;

// Attributes (enum xfrm_attr_type_t).
export const XFRMA_ENCAP = 4;
export const XFRMA_TMPL = 5;
export const XFRMA_SRCADDR = 13;
export const XFRMA_POLICY_TYPE = 16;
export const XFRMA_ALG_AEAD = 18;
export const XFRMA_MARK = 21;
export const XFRMA_REPLAY_ESN_VAL = 23;

/** IPPROTO_ESP: the only transform protocol this overlay uses (spec §7.4). */
export const IPPROTO_ESP = 50;
export const IPPROTO_UDP = 17;
/** IPSEC_PROTO_ANY (linux/ipsec.h): flush every protocol's states. */
export const IPSEC_PROTO_ANY = 255;
export const AF_INET = 2;
/** XFRM_INF: a lifetime limit that never expires. */
export const XFRM_INF = 0xffffffffffffffffn;
/** XFRM_STATE_ESN (xfrm_usersa_info.flags): 64-bit extended sequence numbers. */
export const XFRM_STATE_ESN = 128;
/** XFRMA_REPLAY_ESN_MAX: the replay bitmap may hold at most this many bits. */
export const XFRMA_REPLAY_ESN_MAX = 4096;

// Struct sizes (x86_64), linux/xfrm.h.
/** struct xfrm_selector: daddr@0 saddr@16 dport@32 dport_mask@34 sport@36 sport_mask@38 family@40 prefixlen_d@42 prefixlen_s@43 proto@44 (3 pad) ifindex@48 user@52. */
export const XFRM_SELECTOR_LEN = 56;
/** struct xfrm_lifetime_cfg: eight u64 limits. */
export const XFRM_LIFETIME_CFG_LEN = 64;
/** struct xfrm_lifetime_cur: bytes, packets, add_time, use_time (u64 each). */
export const XFRM_LIFETIME_CUR_LEN = 32;
/** struct xfrm_usersa_info: sel@0 id@56 saddr@80 lft@96 curlft@160 stats@192 seq@204 reqid@208 family@212 mode@214 replay_window@215 flags@216 (7 pad). */
export const XFRM_USERSA_INFO_LEN = 224;
/** struct xfrm_usersa_id: daddr@0 spi@16 family@20 proto@22 (1 pad). */
export const XFRM_USERSA_ID_LEN = 24;
/** struct xfrm_userspi_info: info@0 min@224 max@228. */
export const XFRM_USERSPI_INFO_LEN = 232;
/** struct xfrm_userpolicy_info: sel@0 lft@56 curlft@120 priority@152 index@156 dir@160 action@161 flags@162 share@163 (4 pad). */
export const XFRM_USERPOLICY_INFO_LEN = 168;
/** struct xfrm_userpolicy_id: sel@0 index@56 dir@60 (3 pad). */
export const XFRM_USERPOLICY_ID_LEN = 64;
/** struct xfrm_user_tmpl: id@0 (xfrm_id: daddr@0 spi@16 proto@20) family@24 saddr@28 reqid@44 mode@48 share@49 optional@50 aalgos@52 ealgos@56 calgos@60. */
export const XFRM_USER_TMPL_LEN = 64;
/** struct xfrm_algo_aead: alg_name[64]@0 alg_key_len@64 alg_icv_len@68 alg_key[]@72. */
export const XFRM_ALGO_AEAD_LEN = 72;
/** struct xfrm_replay_state_esn: bmp_len oseq seq oseq_hi seq_hi replay_window, then bmp_len u32 words. */
export const XFRM_REPLAY_ESN_LEN = 24;
/** struct xfrm_encap_tmpl: encap_type@0 encap_sport@2 encap_dport@4 (2 pad) encap_oa@8. */
export const XFRM_ENCAP_TMPL_LEN = 24;
/** struct xfrm_mark: v, m. */
export const XFRM_MARK_LEN = 8;

export type XfrmMode = 'transport' | 'tunnel';
const MODES: Record<XfrmMode, number> = { transport: 0, tunnel: 1 };
export type XfrmPolicyDir = 'in' | 'out' | 'fwd';
const DIRS: Record<XfrmPolicyDir, number> = { in: 0, out: 1, fwd: 2 };
export type XfrmPolicyAction = 'allow' | 'block';

/** Thrown for kernel replies that do not have the layout linux/xfrm.h defines. */
export class MalformedXfrmError extends Error {
  constructor(message: string) {
    super(`malformed xfrm message: ${message}`);
    this.name = 'MalformedXfrmError';
  }
}

/** struct xfrm_mark: a packet matches when (skb->mark & mask) == value. */
export interface XfrmMark {
  value: number;
  mask: number;
}

/** struct xfrm_algo_aead, e.g. rfc4106(gcm(aes)) with key‖salt and a 128-bit ICV. */
export interface XfrmAead {
  name: string;
  key: Uint8Array;
  icvBits: number;
}

/** struct xfrm_replay_state_esn (the sequence counters are normally 0 on creation). */
export interface XfrmReplayEsn {
  replayWindow: number;
  /** Bitmap length in u32 words; default: just enough for replayWindow. */
  bmpLen?: number;
  oseq?: number;
  seq?: number;
  oseqHi?: number;
  seqHi?: number;
}

/** struct xfrm_encap_tmpl (UDP encapsulation of ESP, e.g. for NAT traversal). */
export interface XfrmEncap {
  type: number;
  sport: number;
  dport: number;
  /** encap_oa: original address; '0.0.0.0' when unused. */
  oa?: string;
}

/** struct xfrm_selector. Omitted fields are zero (a zero prefix matches anything). */
export interface XfrmSelector {
  src?: string;
  srcPrefixLen?: number;
  dst?: string;
  dstPrefixLen?: number;
  sport?: number;
  sportMask?: number;
  dport?: number;
  dportMask?: number;
  /** AF_INET or 0 (AF_UNSPEC: the kernel then does not match the selector at all). */
  family?: number;
  proto?: number;
  ifindex?: number;
  user?: number;
}

/** struct xfrm_lifetime_cfg, limits as u64 (XFRM_INF = no limit). */
export interface XfrmLifetimeCfg {
  softByteLimit: bigint;
  hardByteLimit: bigint;
  softPacketLimit: bigint;
  hardPacketLimit: bigint;
  softAddExpiresSeconds: bigint;
  hardAddExpiresSeconds: bigint;
  softUseExpiresSeconds: bigint;
  hardUseExpiresSeconds: bigint;
}

/** struct xfrm_lifetime_cur: what the SA or policy has carried so far. */
export interface XfrmLifetimeCur {
  bytes: bigint;
  packets: bigint;
  addTime: bigint;
  useTime: bigint;
}

/** struct xfrm_stats. */
export interface XfrmStats {
  replayWindow: number;
  replay: number;
  integrityFailed: number;
}

/** What to install as an SA (xfrm_usersa_info plus attributes). */
export interface XfrmStateSpec {
  src: string;
  dst: string;
  /** SPI in host order; written big-endian as the kernel expects (__be32). */
  spi: number;
  proto?: number;
  mode?: XfrmMode;
  reqid?: number;
  /** Legacy u8 replay window (0 when esn is given). */
  replayWindow?: number;
  /** xfrm_usersa_info.flags (XFRM_STATE_*); XFRM_STATE_ESN is added when esn is given. */
  flags?: number;
  aead?: XfrmAead;
  esn?: XfrmReplayEsn;
  mark?: XfrmMark;
  encap?: XfrmEncap;
  selector?: XfrmSelector;
  lifetime?: Partial<XfrmLifetimeCfg>;
}

/** An SA as the kernel reports it. */
export interface XfrmState {
  src: string;
  dst: string;
  spi: number;
  proto: number;
  family: number;
  mode: XfrmMode | number;
  reqid: number;
  replayWindow: number;
  flags: number;
  seq: number;
  selector: Required<XfrmSelector>;
  lifetime: XfrmLifetimeCfg;
  current: XfrmLifetimeCur;
  stats: XfrmStats;
  aead?: XfrmAead;
  esn?: Required<XfrmReplayEsn>;
  mark?: XfrmMark;
  encap?: Required<XfrmEncap>;
}

/** Identifies one SA: {dst, spi, proto} (struct xfrm_usersa_id), plus its mark if it has one. */
export interface XfrmStateId {
  dst: string;
  spi: number;
  proto?: number;
  mark?: XfrmMark;
  /** XFRMA_SRCADDR: narrows the lookup to this source. */
  src?: string;
}

/** struct xfrm_user_tmpl: the transform a policy requires. */
export interface XfrmTemplate {
  src: string;
  dst: string;
  proto?: number;
  spi?: number;
  mode?: XfrmMode;
  reqid?: number;
  share?: number;
  optional?: boolean;
  /** Allowed algorithm bitmaps; default 0xffffffff (any). */
  aalgos?: number;
  ealgos?: number;
  calgos?: number;
}

/** What to install as a policy (xfrm_userpolicy_info plus XFRMA_TMPL, XFRMA_MARK). */
export interface XfrmPolicySpec {
  selector: XfrmSelector;
  dir: XfrmPolicyDir;
  priority?: number;
  index?: number;
  action?: XfrmPolicyAction;
  flags?: number;
  share?: number;
  mark?: XfrmMark;
  templates?: XfrmTemplate[];
  lifetime?: Partial<XfrmLifetimeCfg>;
}

/** A policy as the kernel reports it. */
export interface XfrmPolicy {
  selector: Required<XfrmSelector>;
  dir: XfrmPolicyDir | number;
  priority: number;
  index: number;
  action: XfrmPolicyAction | number;
  flags: number;
  share: number;
  lifetime: XfrmLifetimeCfg;
  current: XfrmLifetimeCur;
  mark?: XfrmMark;
  templates: Required<XfrmTemplate>[];
}

/** Identifies one policy: by selector+dir (struct xfrm_userpolicy_id), and its mark. */
export interface XfrmPolicyId {
  selector: XfrmSelector;
  dir: XfrmPolicyDir;
  /** When non-zero the kernel looks the policy up by index instead of selector. */
  index?: number;
  mark?: XfrmMark;
}

// ---- range checks

function checkUint(what: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`xfrm ${what} ${value} is out of range 0..${max}`);
  }
  return value;
}

function checkU64(what: string, value: bigint): bigint {
  if (value < 0n || value > XFRM_INF) throw new RangeError(`xfrm ${what} ${value} is out of range for a u64`);
  return value;
}

// ---- encoders (each writes exactly one uapi struct)

/** xfrm_address_t: a 16-byte union; an IPv4 address fills the first 4 bytes (__be32 a4). */
export function encodeXfrmAddress(buf: Buffer, offset: number, address: string | undefined): void {
  parseIPv4(address ?? '0.0.0.0').copy(buf, offset);
}

function decodeXfrmAddress(buf: Buffer, offset: number): string {
  return formatIPv4(buf.subarray(offset, offset + 4));
}

/** struct xfrm_selector (56 bytes). Ports are __be16. */
export function encodeSelector(sel: XfrmSelector = {}): Buffer {
  const b = Buffer.alloc(XFRM_SELECTOR_LEN);
  encodeXfrmAddress(b, 0, sel.dst);
  encodeXfrmAddress(b, 16, sel.src);
  b.writeUInt16BE(checkUint('selector dport', sel.dport ?? 0, 0xffff), 32);
  b.writeUInt16BE(checkUint('selector dport_mask', sel.dportMask ?? 0, 0xffff), 34);
  b.writeUInt16BE(checkUint('selector sport', sel.sport ?? 0, 0xffff), 36);
  b.writeUInt16BE(checkUint('selector sport_mask', sel.sportMask ?? 0, 0xffff), 38);
  b.writeUInt16LE(checkUint('selector family', sel.family ?? 0, 0xffff), 40);
  b.writeUInt8(checkUint('selector prefixlen_d', sel.dstPrefixLen ?? 0, 32), 42);
  b.writeUInt8(checkUint('selector prefixlen_s', sel.srcPrefixLen ?? 0, 32), 43);
  b.writeUInt8(checkUint('selector proto', sel.proto ?? 0, 0xff), 44);
  b.writeInt32LE(checkUint('selector ifindex', sel.ifindex ?? 0, 0x7fffffff), 48);
  b.writeUInt32LE(checkUint('selector user', sel.user ?? 0, 0xffffffff), 52);
  return b;
}

export function decodeSelector(b: Buffer, off = 0): Required<XfrmSelector> {
  return {
    dst: decodeXfrmAddress(b, off),
    src: decodeXfrmAddress(b, off + 16),
    dport: b.readUInt16BE(off + 32),
    dportMask: b.readUInt16BE(off + 34),
    sport: b.readUInt16BE(off + 36),
    sportMask: b.readUInt16BE(off + 38),
    family: b.readUInt16LE(off + 40),
    dstPrefixLen: b.readUInt8(off + 42),
    srcPrefixLen: b.readUInt8(off + 43),
    proto: b.readUInt8(off + 44),
    ifindex: b.readInt32LE(off + 48),
    user: b.readUInt32LE(off + 52),
  };
}

const LIFETIME_FIELDS = [
  'softByteLimit',
  'hardByteLimit',
  'softPacketLimit',
  'hardPacketLimit',
  'softAddExpiresSeconds',
  'hardAddExpiresSeconds',
  'softUseExpiresSeconds',
  'hardUseExpiresSeconds',
] as const;

/** struct xfrm_lifetime_cfg (64 bytes); byte/packet limits default to XFRM_INF, expiry times to 0 (none). */
export function encodeLifetimeCfg(lft: Partial<XfrmLifetimeCfg> = {}): Buffer {
  const b = Buffer.alloc(XFRM_LIFETIME_CFG_LEN);
  LIFETIME_FIELDS.forEach((f, i) => {
    const dflt = i < 4 ? XFRM_INF : 0n;
    b.writeBigUInt64LE(checkU64(`lifetime ${f}`, lft[f] ?? dflt), i * 8);
  });
  return b;
}

function decodeLifetimeCfg(b: Buffer, off: number): XfrmLifetimeCfg {
  const out = {} as XfrmLifetimeCfg;
  LIFETIME_FIELDS.forEach((f, i) => {
    out[f] = b.readBigUInt64LE(off + i * 8);
  });
  return out;
}

function decodeLifetimeCur(b: Buffer, off: number): XfrmLifetimeCur {
  return {
    bytes: b.readBigUInt64LE(off),
    packets: b.readBigUInt64LE(off + 8),
    addTime: b.readBigUInt64LE(off + 16),
    useTime: b.readBigUInt64LE(off + 24),
  };
}

/** struct xfrm_usersa_info (224 bytes). curlft and stats are kernel-owned: written as zero. */
export function encodeUsersaInfo(sa: XfrmStateSpec): Buffer {
  const b = Buffer.alloc(XFRM_USERSA_INFO_LEN);
  encodeSelector(sa.selector).copy(b, 0);
  // struct xfrm_id id @56: daddr, spi (__be32) @72, proto @76
  encodeXfrmAddress(b, 56, sa.dst);
  b.writeUInt32BE(checkUint('SPI', sa.spi, 0xffffffff), 72);
  b.writeUInt8(checkUint('proto', sa.proto ?? IPPROTO_ESP, 0xff), 76);
  encodeXfrmAddress(b, 80, sa.src);
  encodeLifetimeCfg(sa.lifetime).copy(b, 96);
  // curlft @160 and stats @192 stay zero; seq @204 is for ACQUIRE replies only.
  b.writeUInt32LE(checkUint('reqid', sa.reqid ?? 0, 0xffffffff), 208);
  b.writeUInt16LE(AF_INET, 212);
  b.writeUInt8(MODES[sa.mode ?? 'transport'], 214);
  b.writeUInt8(checkUint('replay window', sa.replayWindow ?? 0, 0xff), 215);
  b.writeUInt8(checkUint('state flags', (sa.flags ?? 0) | (sa.esn ? XFRM_STATE_ESN : 0), 0xff), 216);
  return b;
}

/** struct xfrm_usersa_id (24 bytes). */
export function encodeUsersaId(id: XfrmStateId): Buffer {
  const b = Buffer.alloc(XFRM_USERSA_ID_LEN);
  encodeXfrmAddress(b, 0, id.dst);
  b.writeUInt32BE(checkUint('SPI', id.spi, 0xffffffff), 16);
  b.writeUInt16LE(AF_INET, 20);
  b.writeUInt8(checkUint('proto', id.proto ?? IPPROTO_ESP, 0xff), 22);
  return b;
}

/** struct xfrm_algo_aead with its key appended (72 + key bytes). */
export function encodeAlgoAead(aead: XfrmAead): Buffer {
  const name = Buffer.from(aead.name, 'utf8');
  if (name.length === 0 || name.length > 63 || name.includes(0)) {
    throw new RangeError(`xfrm AEAD algorithm name ${JSON.stringify(aead.name)} must be 1..63 bytes without NUL`);
  }
  const b = Buffer.alloc(XFRM_ALGO_AEAD_LEN + aead.key.length);
  name.copy(b, 0);
  b.writeUInt32LE(aead.key.length * 8, 64); // alg_key_len is in bits
  b.writeUInt32LE(checkUint('AEAD ICV length (bits)', aead.icvBits, 0xffffffff), 68);
  b.set(aead.key, 72);
  return b;
}

/** struct xfrm_replay_state_esn followed by a zero bitmap of bmp_len u32 words. */
export function encodeReplayEsn(esn: XfrmReplayEsn): Buffer {
  const maxWords = XFRMA_REPLAY_ESN_MAX / 32;
  const bmpLen = checkUint('ESN bitmap length (words)', esn.bmpLen ?? Math.ceil(esn.replayWindow / 32), maxWords);
  checkUint('ESN replay window', esn.replayWindow, bmpLen * 32);
  const b = Buffer.alloc(XFRM_REPLAY_ESN_LEN + bmpLen * 4);
  b.writeUInt32LE(bmpLen, 0);
  b.writeUInt32LE(checkUint('ESN oseq', esn.oseq ?? 0, 0xffffffff), 4);
  b.writeUInt32LE(checkUint('ESN seq', esn.seq ?? 0, 0xffffffff), 8);
  b.writeUInt32LE(checkUint('ESN oseq_hi', esn.oseqHi ?? 0, 0xffffffff), 12);
  b.writeUInt32LE(checkUint('ESN seq_hi', esn.seqHi ?? 0, 0xffffffff), 16);
  b.writeUInt32LE(esn.replayWindow, 20);
  return b;
}

/** struct xfrm_mark (8 bytes). */
export function encodeMark(mark: XfrmMark): Buffer {
  const b = Buffer.alloc(XFRM_MARK_LEN);
  b.writeUInt32LE(checkUint('mark value', mark.value, 0xffffffff), 0);
  b.writeUInt32LE(checkUint('mark mask', mark.mask, 0xffffffff), 4);
  return b;
}

/** struct xfrm_encap_tmpl (24 bytes); ports are __be16. */
export function encodeEncap(encap: XfrmEncap): Buffer {
  const b = Buffer.alloc(XFRM_ENCAP_TMPL_LEN);
  b.writeUInt16LE(checkUint('encap type', encap.type, 0xffff), 0);
  b.writeUInt16BE(checkUint('encap sport', encap.sport, 0xffff), 2);
  b.writeUInt16BE(checkUint('encap dport', encap.dport, 0xffff), 4);
  encodeXfrmAddress(b, 8, encap.oa);
  return b;
}

/** struct xfrm_user_tmpl (64 bytes). */
export function encodeUserTmpl(t: XfrmTemplate): Buffer {
  const b = Buffer.alloc(XFRM_USER_TMPL_LEN);
  encodeXfrmAddress(b, 0, t.dst);
  b.writeUInt32BE(checkUint('template SPI', t.spi ?? 0, 0xffffffff), 16);
  b.writeUInt8(checkUint('template proto', t.proto ?? IPPROTO_ESP, 0xff), 20);
  b.writeUInt16LE(AF_INET, 24);
  encodeXfrmAddress(b, 28, t.src);
  b.writeUInt32LE(checkUint('template reqid', t.reqid ?? 0, 0xffffffff), 44);
  b.writeUInt8(MODES[t.mode ?? 'transport'], 48);
  b.writeUInt8(checkUint('template share', t.share ?? 0, 0xff), 49);
  b.writeUInt8(t.optional ? 1 : 0, 50);
  b.writeUInt32LE(checkUint('template aalgos', t.aalgos ?? 0xffffffff, 0xffffffff), 52);
  b.writeUInt32LE(checkUint('template ealgos', t.ealgos ?? 0xffffffff, 0xffffffff), 56);
  b.writeUInt32LE(checkUint('template calgos', t.calgos ?? 0xffffffff, 0xffffffff), 60);
  return b;
}

/** struct xfrm_userpolicy_info (168 bytes). */
export function encodeUserpolicyInfo(p: XfrmPolicySpec): Buffer {
  const b = Buffer.alloc(XFRM_USERPOLICY_INFO_LEN);
  encodeSelector(p.selector).copy(b, 0);
  encodeLifetimeCfg(p.lifetime).copy(b, 56);
  // curlft @120 is kernel-owned.
  b.writeUInt32LE(checkUint('policy priority', p.priority ?? 0, 0xffffffff), 152);
  b.writeUInt32LE(checkUint('policy index', p.index ?? 0, 0xffffffff), 156);
  b.writeUInt8(DIRS[p.dir], 160);
  b.writeUInt8(p.action === 'block' ? 1 : 0, 161);
  b.writeUInt8(checkUint('policy flags', p.flags ?? 0, 0xff), 162);
  b.writeUInt8(checkUint('policy share', p.share ?? 0, 0xff), 163);
  return b;
}

/** struct xfrm_userpolicy_id (64 bytes). */
export function encodeUserpolicyId(id: XfrmPolicyId): Buffer {
  const b = Buffer.alloc(XFRM_USERPOLICY_ID_LEN);
  encodeSelector(id.selector).copy(b, 0);
  b.writeUInt32LE(checkUint('policy index', id.index ?? 0, 0xffffffff), 56);
  b.writeUInt8(DIRS[id.dir], 60);
  return b;
}

// ---- whole request payloads (family header + attributes)

/** NEWSA/UPDSA payload: xfrm_usersa_info, then XFRMA_ALG_AEAD, XFRMA_REPLAY_ESN_VAL, XFRMA_ENCAP, XFRMA_MARK. */
export function encodeStatePayload(sa: XfrmStateSpec): Buffer {
  const w = new AttributeWriter();
  if (sa.aead) w.bytes(XFRMA_ALG_AEAD, encodeAlgoAead(sa.aead));
  if (sa.esn) w.bytes(XFRMA_REPLAY_ESN_VAL, encodeReplayEsn(sa.esn));
  if (sa.encap) w.bytes(XFRMA_ENCAP, encodeEncap(sa.encap));
  if (sa.mark) w.bytes(XFRMA_MARK, encodeMark(sa.mark));
  return Buffer.concat([encodeUsersaInfo(sa), w.build()]);
}

/** GETSA/DELSA payload: xfrm_usersa_id, then XFRMA_MARK and XFRMA_SRCADDR when given. */
export function encodeStateIdPayload(id: XfrmStateId): Buffer {
  const w = new AttributeWriter();
  if (id.mark) w.bytes(XFRMA_MARK, encodeMark(id.mark));
  if (id.src !== undefined) {
    const a = Buffer.alloc(16);
    encodeXfrmAddress(a, 0, id.src);
    w.bytes(XFRMA_SRCADDR, a);
  }
  return Buffer.concat([encodeUsersaId(id), w.build()]);
}

/** ALLOCSPI payload: xfrm_userspi_info {info, min, max} (both bounds host order). */
export function encodeAllocSpiPayload(sa: Omit<XfrmStateSpec, 'spi'>, min: number, max: number): Buffer {
  checkUint('SPI range minimum', min, 0xffffffff);
  checkUint('SPI range maximum', max, 0xffffffff);
  if (min > max) throw new RangeError(`xfrm SPI range ${min}..${max} is empty`);
  const b = Buffer.alloc(XFRM_USERSPI_INFO_LEN);
  encodeUsersaInfo({ ...sa, spi: 0 }).copy(b, 0);
  b.writeUInt32LE(min, 224);
  b.writeUInt32LE(max, 228);
  const w = new AttributeWriter();
  if (sa.mark) w.bytes(XFRMA_MARK, encodeMark(sa.mark));
  return Buffer.concat([b, w.build()]);
}

/** NEWPOLICY/UPDPOLICY payload: xfrm_userpolicy_info, XFRMA_TMPL (an array of xfrm_user_tmpl), XFRMA_MARK. */
export function encodePolicyPayload(p: XfrmPolicySpec): Buffer {
  const w = new AttributeWriter();
  if (p.templates && p.templates.length > 0) w.bytes(XFRMA_TMPL, Buffer.concat(p.templates.map(encodeUserTmpl)));
  if (p.mark) w.bytes(XFRMA_MARK, encodeMark(p.mark));
  return Buffer.concat([encodeUserpolicyInfo(p), w.build()]);
}

/** GETPOLICY/DELPOLICY payload: xfrm_userpolicy_id, then XFRMA_MARK. */
export function encodePolicyIdPayload(id: XfrmPolicyId): Buffer {
  const w = new AttributeWriter();
  if (id.mark) w.bytes(XFRMA_MARK, encodeMark(id.mark));
  return Buffer.concat([encodeUserpolicyId(id), w.build()]);
}

/** FLUSHSA payload: struct xfrm_usersa_flush { u8 proto; } (padded to 4 by the message layer). */
export function encodeFlushSaPayload(proto = IPSEC_PROTO_ANY): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt8(checkUint('flush proto', proto, 0xff), 0);
  return b;
}

// ---- decoders

function attributesAfter(payload: Buffer, headerLen: number, what: string): Attributes {
  try {
    return parseAttributes(payload.subarray(headerLen));
  } catch (e) {
    if (e instanceof MalformedAttributeError) throw new MalformedXfrmError(`${what}: ${e.message}`);
    throw e;
  }
}

function decodeMarkAttr(attrs: Attributes, what: string): XfrmMark | undefined {
  const v = attrs.bytes(XFRMA_MARK);
  if (v === undefined) return undefined;
  if (v.length < XFRM_MARK_LEN) throw new MalformedXfrmError(`${what}: XFRMA_MARK has ${v.length} bytes, expected 8`);
  return { value: v.readUInt32LE(0), mask: v.readUInt32LE(4) };
}

function modeName(n: number): XfrmMode | number {
  return n === 0 ? 'transport' : n === 1 ? 'tunnel' : n;
}

/** Decodes a NEWSA message payload (a GETSA reply, a dump part, or an ALLOCSPI reply). */
export function decodeStatePayload(payload: Buffer): XfrmState {
  if (payload.length < XFRM_USERSA_INFO_LEN) {
    throw new MalformedXfrmError(`SA message of ${payload.length} bytes is shorter than struct xfrm_usersa_info (${XFRM_USERSA_INFO_LEN})`);
  }
  const family = payload.readUInt16LE(212);
  const state: XfrmState = {
    selector: decodeSelector(payload, 0),
    dst: decodeXfrmAddress(payload, 56),
    spi: payload.readUInt32BE(72),
    proto: payload.readUInt8(76),
    src: decodeXfrmAddress(payload, 80),
    lifetime: decodeLifetimeCfg(payload, 96),
    current: decodeLifetimeCur(payload, 160),
    stats: { replayWindow: payload.readUInt32LE(192), replay: payload.readUInt32LE(196), integrityFailed: payload.readUInt32LE(200) },
    seq: payload.readUInt32LE(204),
    reqid: payload.readUInt32LE(208),
    family,
    mode: modeName(payload.readUInt8(214)),
    replayWindow: payload.readUInt8(215),
    flags: payload.readUInt8(216),
  };
  const attrs = attributesAfter(payload, XFRM_USERSA_INFO_LEN, 'SA');
  const aead = attrs.bytes(XFRMA_ALG_AEAD);
  if (aead !== undefined) {
    if (aead.length < XFRM_ALGO_AEAD_LEN) throw new MalformedXfrmError(`XFRMA_ALG_AEAD has ${aead.length} bytes, shorter than struct xfrm_algo_aead (72)`);
    const keyBits = aead.readUInt32LE(64);
    const keyLen = Math.ceil(keyBits / 8);
    if (aead.length < XFRM_ALGO_AEAD_LEN + keyLen) {
      throw new MalformedXfrmError(`XFRMA_ALG_AEAD declares a ${keyBits}-bit key but carries ${aead.length - XFRM_ALGO_AEAD_LEN} key bytes`);
    }
    const nul = aead.subarray(0, 64).indexOf(0);
    state.aead = {
      name: aead.toString('utf8', 0, nul === -1 ? 64 : nul),
      icvBits: aead.readUInt32LE(68),
      key: Buffer.from(aead.subarray(XFRM_ALGO_AEAD_LEN, XFRM_ALGO_AEAD_LEN + keyLen)),
    };
  }
  const esn = attrs.bytes(XFRMA_REPLAY_ESN_VAL);
  if (esn !== undefined) {
    if (esn.length < XFRM_REPLAY_ESN_LEN) throw new MalformedXfrmError(`XFRMA_REPLAY_ESN_VAL has ${esn.length} bytes, shorter than 24`);
    state.esn = {
      bmpLen: esn.readUInt32LE(0),
      oseq: esn.readUInt32LE(4),
      seq: esn.readUInt32LE(8),
      oseqHi: esn.readUInt32LE(12),
      seqHi: esn.readUInt32LE(16),
      replayWindow: esn.readUInt32LE(20),
    };
  }
  const encap = attrs.bytes(XFRMA_ENCAP);
  if (encap !== undefined) {
    if (encap.length < XFRM_ENCAP_TMPL_LEN) throw new MalformedXfrmError(`XFRMA_ENCAP has ${encap.length} bytes, expected 24`);
    state.encap = { type: encap.readUInt16LE(0), sport: encap.readUInt16BE(2), dport: encap.readUInt16BE(4), oa: decodeXfrmAddress(encap, 8) };
  }
  const mark = decodeMarkAttr(attrs, 'SA');
  if (mark) state.mark = mark;
  return state;
}

function decodeTemplate(b: Buffer, off: number): Required<XfrmTemplate> {
  return {
    dst: decodeXfrmAddress(b, off),
    spi: b.readUInt32BE(off + 16),
    proto: b.readUInt8(off + 20),
    src: decodeXfrmAddress(b, off + 28),
    reqid: b.readUInt32LE(off + 44),
    mode: b.readUInt8(off + 48) === 1 ? 'tunnel' : 'transport',
    share: b.readUInt8(off + 49),
    optional: b.readUInt8(off + 50) !== 0,
    aalgos: b.readUInt32LE(off + 52),
    ealgos: b.readUInt32LE(off + 56),
    calgos: b.readUInt32LE(off + 60),
  };
}

/** Decodes a NEWPOLICY message payload (a GETPOLICY reply or a dump part). */
export function decodePolicyPayload(payload: Buffer): XfrmPolicy {
  if (payload.length < XFRM_USERPOLICY_INFO_LEN) {
    throw new MalformedXfrmError(`policy message of ${payload.length} bytes is shorter than struct xfrm_userpolicy_info (${XFRM_USERPOLICY_INFO_LEN})`);
  }
  const dir = payload.readUInt8(160);
  const action = payload.readUInt8(161);
  const policy: XfrmPolicy = {
    selector: decodeSelector(payload, 0),
    lifetime: decodeLifetimeCfg(payload, 56),
    current: decodeLifetimeCur(payload, 120),
    priority: payload.readUInt32LE(152),
    index: payload.readUInt32LE(156),
    dir: (['in', 'out', 'fwd'] as const)[dir] ?? dir,
    action: action === 0 ? 'allow' : action === 1 ? 'block' : action,
    flags: payload.readUInt8(162),
    share: payload.readUInt8(163),
    templates: [],
  };
  const attrs = attributesAfter(payload, XFRM_USERPOLICY_INFO_LEN, 'policy');
  const tmpl = attrs.bytes(XFRMA_TMPL);
  if (tmpl !== undefined) {
    if (tmpl.length % XFRM_USER_TMPL_LEN !== 0) {
      throw new MalformedXfrmError(`XFRMA_TMPL of ${tmpl.length} bytes is not a whole number of 64-byte xfrm_user_tmpl`);
    }
    for (let off = 0; off < tmpl.length; off += XFRM_USER_TMPL_LEN) policy.templates.push(decodeTemplate(tmpl, off));
  }
  const mark = decodeMarkAttr(attrs, 'policy');
  if (mark) policy.mark = mark;
  return policy;
}
