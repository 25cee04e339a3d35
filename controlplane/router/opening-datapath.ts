// A datapath still opening, behind the Datapath seam. Loading the kernel fast
// datapath (the eBPF verifier above all) is most of a router's start, and the
// mesh need not wait for it: connections form and establish on the sleeve
// while fastdp loads. The overlay is advertised from the start, so peers keep
// their fastdp forwarder; ours is created once the datapath has opened, and
// the overlay switch moves the connection to it when its heartbeats
// establish, as it does whenever fastdp establishes after the sleeve.
// Until then each forwarder reports "initiating" with why; if the datapath
// cannot open, each fails with the reason and the connection stays on the
// sleeve, as it would for any failed forwarder.
import type {
  Datapath, DatapathKind, DatapathStats, ForwarderEvents, ForwarderParams, ForwarderStatus, ForwardingState, OverlayForwarder, OverlayName,
} from './datapath.js';

const NO_STATS: DatapathStats = { kernelForwarded: 0n, userspace: 0n, drops: {} };

/** At most this many control messages are kept for a forwarder not created yet (a peer sends one or two before ours runs). */
const MAX_QUEUED_CONTROL = 16;

/** A forwarder asked for while the datapath opens: the real one is created once it has. */
class PendingForwarder implements OverlayForwarder {
  real: OverlayForwarder | undefined;
  stopped = false;
  failedReason: string | undefined;
  readonly queued: Array<[number, Uint8Array]> = [];

  constructor(readonly params: ForwarderParams, readonly events: ForwarderEvents, private readonly owner: OpeningDatapath) {}

  handleControlMessage(subTag: number, payload: Uint8Array): void {
    if (this.real) this.real.handleControlMessage(subTag, payload);
    else if (!this.stopped && this.queued.length < MAX_QUEUED_CONTROL) this.queued.push([subTag, Uint8Array.from(payload)]);
  }

  status(): ForwarderStatus {
    if (this.real) return this.real.status();
    if (this.failedReason !== undefined) return { state: 'failed', encrypted: this.params.encrypt, reason: this.failedReason };
    return { state: 'initiating', encrypted: this.params.encrypt, reason: `the ${this.owner.kind} datapath is still loading` };
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.queued.length = 0;
    this.real?.stop();
    this.owner.forget(this);
  }
}

export class OpeningDatapath implements Datapath {
  private opened: Datapath | undefined;
  private failure: string | undefined;
  private closing = false;
  private readonly pending = new Set<PendingForwarder>();
  private state: ForwardingState | undefined;
  /** The latest state given while opening, applied once the datapath has opened. */
  private stateApplied: Promise<void> | undefined;
  /** Resolves with the datapath once open, undefined when it could not open (never rejects). */
  readonly ready: Promise<Datapath | undefined>;

  constructor(
    readonly kind: DatapathKind,
    readonly overlay: OverlayName,
    private readonly initialMtu: number,
    opening: Promise<Datapath>,
  ) {
    this.ready = opening.then(
      async (dp) => {
        if (this.closing) {
          await dp.close();
          return undefined;
        }
        this.opened = dp;
        this.openForwarders(dp);
        return dp;
      },
      (err: unknown) => {
        this.failure = (err as Error).message;
        for (const f of this.pending) {
          f.failedReason = `cannot start: ${this.failure}`;
          f.events.failed(new Error(f.failedReason));
        }
        this.pending.clear();
        return undefined;
      },
    );
  }

  /** Why the datapath could not open, once that is known. */
  get failed(): string | undefined {
    return this.failure;
  }

  /** The datapath once it has opened. */
  get current(): Datapath | undefined {
    return this.opened;
  }

  get mtu(): number {
    return this.opened?.mtu ?? this.initialMtu;
  }

  private openForwarders(dp: Datapath): void {
    // The state first: forwarders established from now on find their peers in the kernel.
    // Callers of applyForwardingState see a failure (and retry it); the no-op handler only keeps
    // a failure nobody waits for any more from being an unhandled rejection.
    if (this.state) {
      const state = this.state;
      this.stateApplied = (async () => dp.applyForwardingState(state))();
      this.stateApplied.catch(() => undefined);
    }
    for (const f of [...this.pending]) {
      this.pending.delete(f);
      if (f.stopped) continue;
      try {
        f.real = dp.createForwarder(f.params, f.events);
      } catch (err) {
        f.failedReason = (err as Error).message;
        f.events.failed(err as Error);
        continue;
      }
      for (const [subTag, payload] of f.queued.splice(0)) f.real.handleControlMessage(subTag, payload);
    }
  }

  forget(f: PendingForwarder): void {
    this.pending.delete(f);
  }

  async lowerMtu(mtu: number): Promise<void> {
    const dp = await this.ready;
    await dp?.lowerMtu?.(mtu);
  }

  createForwarder(params: ForwarderParams, events: ForwarderEvents): OverlayForwarder {
    if (this.opened) return this.opened.createForwarder(params, events);
    if (this.failure !== undefined) throw new Error(`cannot start: ${this.failure}`);
    if (this.closing) throw new Error(`the ${this.kind} datapath is closed`);
    const f = new PendingForwarder(params, events, this);
    this.pending.add(f);
    return f;
  }

  applyForwardingState(state: ForwardingState): void | Promise<void> {
    if (this.opened) return this.opened.applyForwardingState(state);
    this.state = state;
    // In place once the datapath has opened and taken the latest state (nothing to place if it cannot open).
    return this.ready.then(() => this.stateApplied);
  }

  async portAdded(ifname: string): Promise<void> {
    const dp = await this.ready;
    await dp?.portAdded?.(ifname);
  }

  stats(): DatapathStats {
    return this.opened?.stats() ?? NO_STATS;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const f of this.pending) f.stopped = true;
    this.pending.clear();
    const dp = await this.ready;
    await dp?.close();
  }
}
