// Inbound connections still in their handshake, counted per source address
// and in total. Each may hold a socket for up to the handshake deadlines
// (10 s header + 60 s introduction, spec §1.2) and a features message of up
// to 64 KiB, so without a cap a flood of silent or slow connections would hold
// sockets and memory without bound. A connection over a cap is closed at once.

/** A single address rarely has more than one peer behind it; a NAT with several peers dialling at once fits. */
export const MAX_PENDING_HANDSHAKES_PER_SOURCE = 8;
/** All sources together; real peers finish their handshake in milliseconds. */
export const MAX_PENDING_HANDSHAKES = 64;

export class PendingHandshakes {
  private readonly bySource = new Map<string, number>();
  private total = 0;
  /** Connections closed because a cap was reached, since start. */
  refused = 0;

  constructor(
    private readonly perSource = MAX_PENDING_HANDSHAKES_PER_SOURCE,
    private readonly overall = MAX_PENDING_HANDSHAKES,
  ) {}

  get size(): number { return this.total; }

  /** Whether a handshake from `source` is in progress. */
  has(source: string): boolean { return this.bySource.has(source); }

  /** Counts a new handshake from `source`; undefined when admitted, else why it was refused. */
  admit(source: string): string | undefined {
    const n = this.bySource.get(source) ?? 0;
    let refusal: string | undefined;
    if (n >= this.perSource) refusal = `${n} handshakes from ${source} already in progress (limit ${this.perSource})`;
    else if (this.total >= this.overall) refusal = `${this.total} handshakes already in progress (limit ${this.overall})`;
    if (refusal) { this.refused++; return refusal; }
    this.bySource.set(source, n + 1);
    this.total++;
    return undefined;
  }

  /** The handshake from `source` admitted earlier has ended, either way. */
  done(source: string): void {
    const n = this.bySource.get(source);
    if (n === undefined) return;
    if (n <= 1) this.bySource.delete(source); else this.bySource.set(source, n - 1);
    this.total--;
  }
}
