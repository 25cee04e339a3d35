// The effective overlay MTU in a mixed mesh. A fastdp heartbeat is padded to
// the sender's datapath MTU (wire spec §6.4: total = 14 + MTU), so every
// neighbour tells us the largest frame its containers accept; Weave 2.8's
// default is 1376 (§6.1), ours underlay - 50. A container here sending more
// than a neighbour's MTU reaches that neighbour's containers only to be
// dropped by their veth (TCP negotiates around it, UDP and ICMP do not), so
// this host follows the lowest MTU any neighbour announces. It never raises
// it while running: a neighbour leaving does not make the ones still
// connected accept more, and containers cannot be told to raise theirs
// safely; a relaunch starts again from our own MTU. Our heartbeats carry the
// lowered MTU, so the neighbours of this host follow in turn and the whole
// mesh converges on its smallest MTU (frames relayed through us fit too).

/** Below this an announcement is not taken: no IPv4 host must accept less (RFC 791), and our datapaths refuse it too. */
export const MIN_OVERLAY_MTU = 576;

export type MtuAnnouncement =
  | { action: 'lower'; from: number; to: number }
  | { action: 'keep' }
  | { action: 'ignore'; reason: string };

export class OverlayMtu {
  private current: number;

  constructor(readonly ours: number) {
    this.current = ours;
  }

  /** The MTU this host's overlay uses now: ours, or the lowest a neighbour announced. */
  get effective(): number {
    return this.current;
  }

  /** A neighbour's fastdp heartbeat announced `mtu`: what this host must do about it. */
  announced(mtu: number): MtuAnnouncement {
    if (!Number.isInteger(mtu) || mtu < MIN_OVERLAY_MTU) {
      return { action: 'ignore', reason: `MTU ${mtu} is below ${MIN_OVERLAY_MTU}` };
    }
    if (mtu >= this.current) return { action: 'keep' };
    const from = this.current;
    this.current = mtu;
    return { action: 'lower', from, to: mtu };
  }
}

/** The one info line a lowering logs. */
export function loweringMessage(peer: string, from: number, to: number): string {
  return `peer ${peer} announces MTU ${to} < ours ${from}: lowering overlay MTU to ${to}`;
}
