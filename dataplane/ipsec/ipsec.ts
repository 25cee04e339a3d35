// Kernel IPsec (XFRM) for the encrypted fast datapath, per connection, as
// desired state (spec §7.4). Each connection has two ESP SAs in transport mode:
//  * inbound (remote -> local): set up first; its SPI comes from the kernel and
//    its key from a nonce we choose; both go to the peer in CryptoInitSARemote;
//  * outbound (local -> remote) plus an OUT policy selecting marked UDP to the
//    peer: set up when the peer's CryptoInitSARemote arrives.
// setupConnection() is called again with the same connection, now carrying
// the peer's message, and converges; teardownConnection() removes everything
// the connection installed; flushAll() removes everything this product
// installed (identified by mark and reqid), for `weave reset` and start-up.
import { deriveIPsecKey, IPSEC_SPI_MAX, IPSEC_SPI_MIN, newIPsecNonce } from '../../crypto/ipsec-keys.js';
import type { NetnsHandle } from '../netlink/netns.js';
import { Xfrm } from '../netlink/xfrm.js';
import {
  IPPROTO_ESP,
  IPPROTO_UDP,
  AF_INET,
  type XfrmMark,
  type XfrmPolicyId,
  type XfrmStateId,
  type XfrmStateSpec,
} from '../netlink/xfrm-codec.js';
import {
  IPSEC_AEAD_ALGORITHM,
  IPSEC_ICV_BITS,
  IPSEC_MARK,
  IPSEC_REPLAY_BITMAP_WORDS,
  IPSEC_REPLAY_WINDOW,
  IPSEC_REQID,
} from './constants.js';
import type { IPsecFirewallEntry } from './firewall-rules.js';
import type { CryptoInitSARemote } from './messages.js';
import { DEFAULT_FASTDP_PORT } from '../../controlplane/well-known.js';

/** The desired IPsec state of one connection. */
export interface IPsecConnectionSpec {
  /** Connection UID (spec §1.6): the same on both ends; keys the state here. */
  connUID: bigint;
  /** Our and the peer's underlay IPv4 addresses (the control connection's endpoints). */
  localIp: string;
  remoteIp: string;
  /** 48-bit peer names (spec §1.6); the HKDF info of each direction's key. */
  localName: bigint;
  remoteName: bigint;
  /** The control connection's 32-byte session key (spec §3.1). */
  sessionKey: Uint8Array;
  /** The forwarder's remote VXLAN port, for the firewall rules (default 6784). */
  vxlanPort?: number;
  /** The peer's CryptoInitSARemote, once received: then the outbound half is installed too. */
  remoteInit?: CryptoInitSARemote;
}

/** What setupConnection has installed for a connection. */
export interface IPsecConnectionState {
  /** SPI of our inbound SA (announced to the peer). */
  spiIn: number;
  /** The message to send to the peer (spec §7.2); the same on every call for this connection. */
  localInit: CryptoInitSARemote;
  /** SPI of our outbound SA, once the peer's message was applied. */
  spiOut?: number;
}

export interface IPsecOptions {
  /** reqid of our SAs and templates (default IPSEC_REQID); local only, never on the wire. */
  reqid?: number;
  /** Policy mark (default IPSEC_MARK, 0x20000/0x20000, spec §7.4). */
  mark?: number;
}

export interface FlushReport {
  policies: number;
  sas: number;
}

interface Installed {
  spec: Omit<IPsecConnectionSpec, 'remoteInit'>;
  localInit: CryptoInitSARemote;
  spiIn: number;
  /** The applied remote message (its nonce and SPI), when the outbound half exists. */
  remoteInit?: CryptoInitSARemote;
}

export class IPsecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IPsecError';
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

function describe(spec: { connUID: bigint; localIp: string; remoteIp: string }): string {
  return `IPsec connection ${spec.localIp} <-> ${spec.remoteIp} (conn ${spec.connUID.toString(16)})`;
}

export class IPsec {
  private readonly conns = new Map<bigint, Installed>();
  private queue: Promise<unknown> = Promise.resolve();
  readonly reqid: number;
  readonly mark: XfrmMark;

  constructor(
    readonly xfrm: Xfrm,
    options: IPsecOptions = {},
  ) {
    this.reqid = options.reqid ?? IPSEC_REQID;
    const mark = options.mark ?? IPSEC_MARK;
    this.mark = { value: mark, mask: mark };
  }

  /** Opens an XFRM socket (in `netns` if given) and wraps it. */
  static open(options: IPsecOptions & { netns?: NetnsHandle | string } = {}): IPsec {
    return new IPsec(Xfrm.open({ netns: options.netns }), options);
  }

  close(): void {
    this.xfrm.close();
  }

  /** Runs kernel changes one at a time, so two calls never interleave their steps. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.queue.then(fn, fn);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /**
   * Converges the connection to `spec`. Without `remoteInit`: installs the
   * inbound SA (spec §7.4 step 1) and returns the CryptoInitSARemote to send.
   * With it: also installs the outbound SA and policy (step 3). Calling again
   * with the same spec changes nothing; a new remote SPI/nonce replaces the
   * outbound half; changed addresses, names or key rebuild the connection.
   */
  setupConnection(spec: IPsecConnectionSpec): Promise<IPsecConnectionState> {
    return this.serial(() => this.converge(spec));
  }

  /** Removes both SAs and the policy of a connection; unknown connections are a no-op. */
  teardownConnection(connUID: bigint): Promise<void> {
    return this.serial(async () => {
      const c = this.conns.get(connUID);
      if (c) await this.remove(c);
    });
  }

  /**
   * Removes every policy carrying our mark and every SA carrying our reqid,
   * whether this process installed it or an earlier one did (spec §7.1).
   */
  flushAll(): Promise<FlushReport> {
    return this.serial(async () => {
      const report: FlushReport = { policies: 0, sas: 0 };
      for (const p of await this.xfrm.dumpPolicies()) {
        if (p.mark?.value !== this.mark.value || p.mark.mask !== this.mark.mask) continue;
        if (p.dir !== 'out' && p.dir !== 'in' && p.dir !== 'fwd') continue;
        if (await this.xfrm.deletePolicyIfPresent({ selector: p.selector, dir: p.dir, mark: p.mark })) report.policies++;
      }
      for (const s of await this.xfrm.dumpSAs()) {
        if (s.reqid !== this.reqid || s.proto !== IPPROTO_ESP || s.family !== AF_INET) continue;
        if (await this.xfrm.deleteSAIfPresent({ dst: s.dst, spi: s.spi, proto: s.proto, mark: s.mark })) report.sas++;
      }
      this.conns.clear();
      return report;
    });
  }

  /**
   * True when this kernel can run ESP with rfc4106(gcm(aes)) (spec §7): a
   * throwaway SA between TEST-NET-1 addresses is created and deleted. False
   * means: keep such connections on encrypted sleeve, never in clear.
   */
  probeEsp(): Promise<boolean> {
    return this.serial(async () => {
      const src = '192.0.2.1';
      const dst = '192.0.2.2';
      const spi = await this.xfrm.allocSpi({ src, dst, proto: IPPROTO_ESP, mode: 'transport', reqid: this.reqid }, IPSEC_SPI_MIN, IPSEC_SPI_MAX);
      try {
        await this.xfrm.updateSA(this.saSpec(src, dst, spi, Buffer.alloc(36)));
        return true;
      } catch (e) {
        if (e instanceof Error && 'code' in e && (e.code === 'ENOSYS' || e.code === 'EPROTONOSUPPORT' || e.code === 'ENOENT')) return false;
        throw e;
      } finally {
        await this.xfrm.deleteSAIfPresent({ dst, spi, proto: IPPROTO_ESP });
      }
    });
  }

  /** The state of a connection, if any. */
  connection(connUID: bigint): IPsecConnectionState | undefined {
    const c = this.conns.get(connUID);
    return c ? this.stateOf(c) : undefined;
  }

  /** Firewall entries for every connection (for ipsecChains, spec §7.5). */
  firewallEntries(): IPsecFirewallEntry[] {
    return [...this.conns.values()].map((c) => ({
      localIp: c.spec.localIp,
      remoteIp: c.spec.remoteIp,
      vxlanPort: c.spec.vxlanPort ?? DEFAULT_FASTDP_PORT,
      spiIn: c.spiIn,
    }));
  }

  // ---- internals

  private stateOf(c: Installed): IPsecConnectionState {
    const s: IPsecConnectionState = { spiIn: c.spiIn, localInit: c.localInit };
    if (c.remoteInit) s.spiOut = c.remoteInit.spi;
    return s;
  }

  private async converge(spec: IPsecConnectionSpec): Promise<IPsecConnectionState> {
    let c = this.conns.get(spec.connUID);
    if (c && !this.sameBase(c.spec, spec)) {
      await this.remove(c);
      c = undefined;
    }
    if (!c) {
      c = await this.installInbound(spec);
      this.conns.set(spec.connUID, c);
    }
    if (spec.remoteInit && !(c.remoteInit && c.remoteInit.spi === spec.remoteInit.spi && sameBytes(c.remoteInit.nonce, spec.remoteInit.nonce))) {
      await this.installOutbound(c, spec.remoteInit);
    }
    return this.stateOf(c);
  }

  private sameBase(a: Omit<IPsecConnectionSpec, 'remoteInit'>, b: IPsecConnectionSpec): boolean {
    return (
      a.localIp === b.localIp &&
      a.remoteIp === b.remoteIp &&
      a.localName === b.localName &&
      a.remoteName === b.remoteName &&
      (a.vxlanPort ?? DEFAULT_FASTDP_PORT) === (b.vxlanPort ?? DEFAULT_FASTDP_PORT) &&
      sameBytes(a.sessionKey, b.sessionKey)
    );
  }

  /** The SA fields both directions share (spec §7.4): ESP, transport, ESN window 256, rfc4106 AES-GCM. */
  private saSpec(src: string, dst: string, spi: number, key: Uint8Array): XfrmStateSpec {
    return {
      src,
      dst,
      spi,
      proto: IPPROTO_ESP,
      mode: 'transport',
      reqid: this.reqid,
      replayWindow: 0,
      esn: { replayWindow: IPSEC_REPLAY_WINDOW, bmpLen: IPSEC_REPLAY_BITMAP_WORDS },
      aead: { name: IPSEC_AEAD_ALGORITHM, key, icvBits: IPSEC_ICV_BITS },
    };
  }

  private policyId(localIp: string, remoteIp: string): XfrmPolicyId {
    return {
      selector: { family: AF_INET, src: localIp, srcPrefixLen: 32, dst: remoteIp, dstPrefixLen: 32, proto: IPPROTO_UDP },
      dir: 'out',
      mark: this.mark,
    };
  }

  /** spec §7.4 step 1: a kernel-allocated SPI for R -> L, keyed with our fresh nonce and our name. */
  private async installInbound(spec: IPsecConnectionSpec): Promise<Installed> {
    const nonce = newIPsecNonce();
    const key = deriveIPsecKey(spec.sessionKey, nonce, spec.localName);
    const base = this.saSpec(spec.remoteIp, spec.localIp, 0, key);
    const spi = await this.xfrm.allocSpi({ src: base.src, dst: base.dst, proto: IPPROTO_ESP, mode: 'transport', reqid: this.reqid }, IPSEC_SPI_MIN, IPSEC_SPI_MAX);
    try {
      await this.xfrm.updateSA({ ...base, spi });
    } catch (e) {
      // Do not leave the reserved (larval) SA behind.
      await this.xfrm.deleteSAIfPresent({ dst: spec.localIp, spi, proto: IPPROTO_ESP }).catch(() => false);
      throw e;
    }
    const kept: Omit<IPsecConnectionSpec, 'remoteInit'> = {
      connUID: spec.connUID,
      localIp: spec.localIp,
      remoteIp: spec.remoteIp,
      localName: spec.localName,
      remoteName: spec.remoteName,
      sessionKey: Uint8Array.from(spec.sessionKey),
      vxlanPort: spec.vxlanPort ?? DEFAULT_FASTDP_PORT,
    };
    return { spec: kept, localInit: { nonce, spi }, spiIn: spi };
  }

  /** spec §7.4 step 3: the L -> R SA with the peer's SPI and key, then the OUT policy pointing at it. */
  private async installOutbound(c: Installed, remote: CryptoInitSARemote): Promise<void> {
    const { localIp, remoteIp, sessionKey, remoteName } = c.spec;
    const key = deriveIPsecKey(sessionKey, remote.nonce, remoteName);
    const sa = this.saSpec(localIp, remoteIp, remote.spi, key);
    try {
      await this.xfrm.newSA(sa);
    } catch (e) {
      // An SA with this SPI already exists: ours from an earlier attempt. Replace its key.
      if (!(e instanceof Error && 'code' in e && e.code === 'EEXIST')) throw e;
      await this.xfrm.updateSA(sa);
    }
    try {
      await this.xfrm.updatePolicy({
        ...this.policyId(localIp, remoteIp),
        priority: 0,
        index: 0,
        action: 'allow',
        templates: [{ src: localIp, dst: remoteIp, proto: IPPROTO_ESP, mode: 'transport', spi: remote.spi, reqid: this.reqid }],
      });
    } catch (e) {
      if (c.remoteInit?.spi !== remote.spi) await this.xfrm.deleteSAIfPresent({ dst: remoteIp, spi: remote.spi }).catch(() => false);
      throw e;
    }
    const previous = c.remoteInit;
    c.remoteInit = { nonce: Buffer.from(remote.nonce), spi: remote.spi };
    // The policy now points at the new SA: the old one carries nothing more.
    if (previous && previous.spi !== remote.spi) await this.xfrm.deleteSAIfPresent({ dst: remoteIp, spi: previous.spi });
  }

  /**
   * spec §7.4 step 4: inbound SA, the policy if it still points at our
   * outbound SPI, the outbound SA. Every step runs even if an earlier one
   * fails, and the connection is forgotten either way; failures are reported.
   */
  private async remove(c: Installed): Promise<void> {
    this.conns.delete(c.spec.connUID);
    const { localIp, remoteIp } = c.spec;
    const failures: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        failures.push(`${what}: ${(e as Error).message}`);
      }
    };
    const inbound: XfrmStateId = { dst: localIp, spi: c.spiIn, proto: IPPROTO_ESP };
    await attempt('delete inbound SA', () => this.xfrm.deleteSAIfPresent(inbound));
    const out = c.remoteInit;
    if (out) {
      const pid = this.policyId(localIp, remoteIp);
      await attempt('delete outbound policy', async () => {
        let policy;
        try {
          policy = await this.xfrm.getPolicy(pid);
        } catch (e) {
          if (e instanceof Error && 'code' in e && e.code === 'ENOENT') return;
          throw e;
        }
        // Another connection to the same peer may have replaced it: leave that one alone.
        if (policy.templates.some((t) => t.spi === out.spi)) await this.xfrm.deletePolicyIfPresent(pid);
      });
      await attempt('delete outbound SA', () => this.xfrm.deleteSAIfPresent({ dst: remoteIp, spi: out.spi, proto: IPPROTO_ESP }));
    }
    if (failures.length > 0) throw new IPsecError(`${describe(c.spec)}: teardown incomplete: ${failures.join('; ')}`);
  }
}
