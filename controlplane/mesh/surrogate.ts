// The surrogate gossiper (spec §4.9): stands in for channels this peer does
// not implement so their messages still cross it.
import type { Clock } from './clock.js';
import { RawGossipData, type GossipData, type Gossiper } from './gossip.js';
import type { PeerName } from './types.js';

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const MASK64 = (1n << 64n) - 1n;

/** FNV-1a, 64 bit. */
export function fnv64a(bytes: Uint8Array): bigint {
  let h = FNV64_OFFSET;
  for (const b of bytes) h = ((h ^ BigInt(b)) * FNV64_PRIME) & MASK64;
  return h;
}

interface Seen {
  payload: Uint8Array;
  at: number;
}

export class SurrogateGossiper implements Gossiper {
  private readonly seen = new Map<bigint, Seen[]>();

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number,
  ) {}

  /** Unicasts addressed to us on an unknown channel have nowhere to go. */
  onGossipUnicast(_src: PeerName, _payload: Uint8Array): void {}

  onGossipBroadcast(_src: PeerName, payload: Uint8Array): GossipData {
    return new RawGossipData([payload]);
  }

  /** Surrogates never originate periodic gossip. */
  gossip(): undefined {
    return undefined;
  }

  /** Relay unless the identical payload was seen within the last gossip interval. */
  onGossip(payload: Uint8Array): GossipData | undefined {
    const now = this.clock.now();
    this.expire(now);
    const hash = fnv64a(payload);
    const bucket = this.seen.get(hash) ?? [];
    if (bucket.some((s) => equalBytes(s.payload, payload))) return undefined;
    bucket.push({ payload: payload.slice(), at: now });
    this.seen.set(hash, bucket);
    return new RawGossipData([payload]);
  }

  private expire(now: number): void {
    for (const [hash, bucket] of this.seen) {
      const live = bucket.filter((s) => now - s.at < this.windowMs);
      if (live.length === 0) this.seen.delete(hash);
      else this.seen.set(hash, live);
    }
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
