// Kernel IPsec for the encrypted fast datapath (spec §7), as a fastdp
// datapath needs it, whichever kind it is (OVS or eBPF: both hand their VXLAN
// packets to the kernel's VXLAN driver, so the same SAs, policy and marking
// rules apply): one XFRM socket per datapath, the two steps of spec §7.4 per
// connection, and the marking rules of spec §7.5 re-rendered whenever the set
// of connections changes. The rules are applied through a callback so the
// datapath does not decide which firewall table holds them.
import type { PeerName } from '../../controlplane/mesh/types.js';
import type { NetnsHandle } from '../netlink/index.js';
import type { IPsecFirewallEntry } from './firewall-rules.js';
import { IPsec, type IPsecConnectionSpec } from './ipsec.js';
import { decodeCryptoInitSARemote, encodeCryptoInitSARemote } from './messages.js';

/** What one encrypted connection needs (ForwarderParams plus the VXLAN port). */
export interface FastdpIPsecConnection {
  connUID: bigint;
  localIp: string;
  remoteIp: string;
  remoteName: PeerName;
  sessionKey: Uint8Array;
  /** The remote's VXLAN UDP port (spec §7.5 P). */
  vxlanPort: number;
}

export interface FastdpIPsecOptions {
  netns?: NetnsHandle | string;
  /** Our peer name: the HKDF info of our inbound keys (spec §7.3). */
  ourName: PeerName;
  /** Installs the spec §7.5 rules for exactly these connections (replacing the previous set). */
  applyFirewall(entries: IPsecFirewallEntry[]): Promise<void>;
}

export class FastdpIPsec {
  private constructor(
    private readonly ipsec: IPsec,
    private readonly opts: FastdpIPsecOptions,
  ) {}

  /**
   * Opens the XFRM socket and checks that this kernel runs ESP with
   * rfc4106(gcm(aes)). Returns the reason instead when it cannot, so encrypted
   * connections stay on encrypted sleeve (never plaintext). On success, the
   * policies and SAs an earlier run left behind are removed (spec §7.1).
   */
  static async open(opts: FastdpIPsecOptions): Promise<FastdpIPsec | { unavailable: string }> {
    let ipsec: IPsec;
    try {
      ipsec = IPsec.open({ netns: opts.netns });
    } catch (e) {
      return { unavailable: `kernel IPsec (XFRM netlink) is not available: ${(e as Error).message}` };
    }
    try {
      if (!(await ipsec.probeEsp())) {
        ipsec.close();
        return { unavailable: 'the kernel cannot run IPsec ESP with rfc4106(gcm(aes)) (load the esp4 and gcm modules)' };
      }
      await ipsec.flushAll();
      const s = new FastdpIPsec(ipsec, opts);
      await s.syncFirewall();
      return s;
    } catch (e) {
      ipsec.close();
      return { unavailable: `kernel IPsec probe failed: ${(e as Error).message}` };
    }
  }

  private spec(c: FastdpIPsecConnection): IPsecConnectionSpec {
    return {
      connUID: c.connUID,
      localIp: c.localIp,
      remoteIp: c.remoteIp,
      localName: this.opts.ourName,
      remoteName: c.remoteName,
      sessionKey: c.sessionKey,
      vxlanPort: c.vxlanPort,
    };
  }

  /**
   * spec §7.4 step 1: the inbound SA and the inbound protection rules.
   * Returns the CryptoInitSARemote body to send to the peer.
   */
  async initLocal(c: FastdpIPsecConnection): Promise<Buffer> {
    const state = await this.ipsec.setupConnection(this.spec(c));
    await this.syncFirewall();
    return encodeCryptoInitSARemote(state.localInit);
  }

  /** spec §7.4 step 3: the outbound SA and policy from the peer's CryptoInitSARemote body. */
  async initRemote(c: FastdpIPsecConnection, body: Uint8Array): Promise<void> {
    const remoteInit = decodeCryptoInitSARemote(body);
    await this.ipsec.setupConnection({ ...this.spec(c), remoteInit });
    await this.syncFirewall();
  }

  /** spec §7.4 step 4: both SAs, the policy and the connection's rules. */
  async teardown(connUID: bigint): Promise<void> {
    try {
      await this.ipsec.teardownConnection(connUID);
    } finally {
      await this.syncFirewall();
    }
  }

  /** Everything this product installed (spec §7.1 shutdown), and the rules. */
  async flush(): Promise<void> {
    await this.ipsec.flushAll();
    await this.syncFirewall();
  }

  close(): void {
    this.ipsec.close();
  }

  private syncFirewall(): Promise<void> {
    return this.opts.applyFirewall(this.ipsec.firewallEntries());
  }
}
