// IPsec transform (NETLINK_XFRM) as a handle bound to one namespace: adds,
// replaces, reads and deletes SAs and policies. The bytes are xfrm-codec.ts's.

import { isNetlinkError } from './errors.js';
import { NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, type NetlinkMessage } from './message.js';
import { NETLINK_XFRM, NetlinkSocket, type OpenOptions } from './socket.js';
import {
  IPSEC_PROTO_ANY,
  MalformedXfrmError,
  XFRM_MSG_ALLOCSPI,
  XFRM_MSG_DELPOLICY,
  XFRM_MSG_DELSA,
  XFRM_MSG_FLUSHPOLICY,
  XFRM_MSG_FLUSHSA,
  XFRM_MSG_GETPOLICY,
  XFRM_MSG_GETSA,
  XFRM_MSG_NEWPOLICY,
  XFRM_MSG_NEWSA,
  XFRM_MSG_UPDPOLICY,
  XFRM_MSG_UPDSA,
  decodePolicyPayload,
  decodeStatePayload,
  encodeAllocSpiPayload,
  encodeFlushSaPayload,
  encodePolicyIdPayload,
  encodePolicyPayload,
  encodeStateIdPayload,
  encodeStatePayload,
  type XfrmPolicy,
  type XfrmPolicyId,
  type XfrmPolicySpec,
  type XfrmState,
  type XfrmStateId,
  type XfrmStateSpec,
} from './xfrm-codec.js';

function describeSa(id: { src?: string; dst: string; spi: number }): string {
  return `ESP SA ${id.src ?? '*'} -> ${id.dst} spi 0x${id.spi.toString(16).padStart(8, '0')}`;
}

function describePolicy(id: XfrmPolicyId): string {
  const s = id.selector;
  return `xfrm policy dir ${id.dir} ${s.src ?? '0.0.0.0'}/${s.srcPrefixLen ?? 0} -> ${s.dst ?? '0.0.0.0'}/${s.dstPrefixLen ?? 0} proto ${s.proto ?? 0}`;
}

/** Adds the likely fix to errors whose kernel reason is terse. */
function hint(e: unknown): unknown {
  if (isNetlinkError(e, 'ENOSYS') || isNetlinkError(e, 'ENOENT') || isNetlinkError(e, 'EPROTONOSUPPORT')) {
    // A missing algorithm or ESP protocol handler is reported this way.
    return e.withOperation(`${e.operation} (is ESP with rfc4106(gcm(aes)) available? load esp4, gcm, seqiv)`);
  }
  return e;
}

/** A NETLINK_XFRM handle bound to one network namespace. */
export class Xfrm {
  constructor(readonly socket: NetlinkSocket) {}

  /** Opens a NETLINK_XFRM socket, optionally inside another namespace. */
  static open(options: Omit<OpenOptions, 'groups'> = {}): Xfrm {
    return new Xfrm(NetlinkSocket.open(NETLINK_XFRM, options));
  }

  close(): void {
    this.socket.close();
  }

  private call(type: number, flags: number, payload: Buffer, operation: string): Promise<NetlinkMessage[]> {
    return this.socket.request({ type, flags, payload }, { operation });
  }

  /** Adds an SA; EEXIST if one with the same {dst, spi, proto} exists. */
  async newSA(sa: XfrmStateSpec): Promise<void> {
    try {
      await this.call(XFRM_MSG_NEWSA, NLM_F_CREATE | NLM_F_EXCL, encodeStatePayload(sa), `add ${describeSa(sa)}`);
    } catch (e) {
      throw hint(e);
    }
  }

  /** Replaces an existing SA (or completes one reserved by allocSpi); ESRCH if there is none. */
  async updateSA(sa: XfrmStateSpec): Promise<void> {
    try {
      await this.call(XFRM_MSG_UPDSA, 0, encodeStatePayload(sa), `update ${describeSa(sa)}`);
    } catch (e) {
      throw hint(e);
    }
  }

  /**
   * Asks the kernel for an SPI in [min, max] unique for {dst, proto}; this
   * reserves a larval SA that updateSA completes (or that expires on its own).
   */
  async allocSpi(sa: Omit<XfrmStateSpec, 'spi'>, min = 0x100, max = 0xffffffff): Promise<number> {
    const what = `allocate SPI for ESP SA ${sa.src} -> ${sa.dst}`;
    const replies = await this.call(XFRM_MSG_ALLOCSPI, 0, encodeAllocSpiPayload(sa, min, max), what);
    const reply = replies.find((m) => m.type === XFRM_MSG_NEWSA);
    if (!reply) throw new MalformedXfrmError(`${what}: the kernel sent no SA back`);
    return decodeStatePayload(reply.payload).spi;
  }

  async deleteSA(id: XfrmStateId): Promise<void> {
    await this.call(XFRM_MSG_DELSA, 0, encodeStateIdPayload(id), `delete ${describeSa(id)}`);
  }

  /** Deletes the SA; true if it existed. */
  async deleteSAIfPresent(id: XfrmStateId): Promise<boolean> {
    try {
      await this.deleteSA(id);
      return true;
    } catch (e) {
      if (isNetlinkError(e, 'ESRCH') || isNetlinkError(e, 'ENOENT')) return false;
      throw e;
    }
  }

  /** The SA with its counters (current lifetime: bytes/packets), or NetlinkError ESRCH. */
  async getSA(id: XfrmStateId): Promise<XfrmState> {
    const what = `get ${describeSa(id)}`;
    const replies = await this.call(XFRM_MSG_GETSA, 0, encodeStateIdPayload(id), what);
    const reply = replies.find((m) => m.type === XFRM_MSG_NEWSA);
    if (!reply) throw new MalformedXfrmError(`${what}: the kernel sent no SA back`);
    return decodeStatePayload(reply.payload);
  }

  async dumpSAs(): Promise<XfrmState[]> {
    // The dump request carries no header: the kernel reads only optional filter attributes.
    const replies = await this.call(XFRM_MSG_GETSA, NLM_F_DUMP, Buffer.alloc(0), 'list xfrm SAs');
    return replies.filter((m) => m.type === XFRM_MSG_NEWSA).map((m) => decodeStatePayload(m.payload));
  }

  /** Adds a policy; EEXIST if one with the same selector, direction and mark exists. */
  async newPolicy(p: XfrmPolicySpec): Promise<void> {
    await this.call(XFRM_MSG_NEWPOLICY, NLM_F_CREATE | NLM_F_EXCL, encodePolicyPayload(p), `add ${describePolicy(p)}`);
  }

  /** Adds or replaces a policy (idempotent). */
  async updatePolicy(p: XfrmPolicySpec): Promise<void> {
    await this.call(XFRM_MSG_UPDPOLICY, 0, encodePolicyPayload(p), `update ${describePolicy(p)}`);
  }

  async getPolicy(id: XfrmPolicyId): Promise<XfrmPolicy> {
    const what = `get ${describePolicy(id)}`;
    const replies = await this.call(XFRM_MSG_GETPOLICY, 0, encodePolicyIdPayload(id), what);
    const reply = replies.find((m) => m.type === XFRM_MSG_NEWPOLICY);
    if (!reply) throw new MalformedXfrmError(`${what}: the kernel sent no policy back`);
    return decodePolicyPayload(reply.payload);
  }

  async deletePolicy(id: XfrmPolicyId): Promise<void> {
    await this.call(XFRM_MSG_DELPOLICY, 0, encodePolicyIdPayload(id), `delete ${describePolicy(id)}`);
  }

  /** Deletes the policy; true if it existed. */
  async deletePolicyIfPresent(id: XfrmPolicyId): Promise<boolean> {
    try {
      await this.deletePolicy(id);
      return true;
    } catch (e) {
      if (isNetlinkError(e, 'ENOENT') || isNetlinkError(e, 'ESRCH')) return false;
      throw e;
    }
  }

  async dumpPolicies(): Promise<XfrmPolicy[]> {
    const replies = await this.call(XFRM_MSG_GETPOLICY, NLM_F_DUMP, Buffer.alloc(0), 'list xfrm policies');
    return replies.filter((m) => m.type === XFRM_MSG_NEWPOLICY).map((m) => decodePolicyPayload(m.payload));
  }

  /** Deletes every SA of `proto` (default: all) in this namespace. Not for routine use: it removes others' SAs too. */
  async flushSAs(proto = IPSEC_PROTO_ANY): Promise<void> {
    await this.call(XFRM_MSG_FLUSHSA, 0, encodeFlushSaPayload(proto), 'flush xfrm SAs');
  }

  /** Deletes every (main-type) policy in this namespace. Not for routine use: it removes others' policies too. */
  async flushPolicies(): Promise<void> {
    await this.call(XFRM_MSG_FLUSHPOLICY, 0, Buffer.alloc(0), 'flush xfrm policies');
  }
}
