// Ageing of the MACs the kernel learns: the remote ones (weave_remote_macs)
// and, in bridge mode, the local ones (weave_local_macs entries the programs
// wrote, not those the control plane set). The remote map is an LRU, which
// forgets only when full; the local one is a hash that forgets nothing: a MAC
// learned behind the sleeve's port belongs to a remote container, which may
// leave while the port stays (entries behind a container's port also go with
// the port, fastdp.ts). Without ageing, departed containers' MACs would stay.
// As a Linux bridge does (ageing_time, 300 s), an entry no frame has
// refreshed for the ageing time is deleted; a MAC still in use is refreshed by
// the programs at most once a second and never reaches it. A deleted MAC that
// comes back is only flooded until it is learned again.
//
// The programs stamp entries with bpf_ktime_get_ns() (CLOCK_MONOTONIC), which
// DatapathMaps reads against process.hrtime: wall-clock jumps do not age
// anything.

import type { DatapathMaps } from './maps.js';

/** Linux bridges' default ageing_time. */
export const DEFAULT_MAC_AGEING_SEC = 300;
/** Sweeps at most this far apart: an entry is gone at most this long after its ageing time. */
const MAX_SWEEP_INTERVAL_MS = 30_000;

export class LearnedMacAgeing {
  private timer: NodeJS.Timeout | undefined;
  /** Entries deleted by the sweeps so far. */
  aged = 0;

  constructor(
    private readonly maps: DatapathMaps,
    readonly ageingSec: number = DEFAULT_MAC_AGEING_SEC,
    private readonly onError: (e: Error) => void = () => {},
  ) {
    if (!Number.isFinite(ageingSec) || ageingSec <= 0) throw new RangeError(`MAC ageing time ${ageingSec} s is not a positive number of seconds`);
  }

  /** Sweep every min(30 s, half the ageing time); the timer never keeps the process alive. */
  get intervalMs(): number {
    return Math.min(MAX_SWEEP_INTERVAL_MS, (this.ageingSec * 1000) / 2);
  }

  start(): this {
    if (this.timer) return this;
    this.timer = setInterval(() => {
      try {
        this.sweep();
      } catch (e) {
        this.onError(e as Error);
      }
    }, this.intervalMs);
    this.timer.unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Deletes the entries older than the ageing time; returns how many. An entry
   * refreshed between the read and the delete is lost too: its MAC floods until
   * the next frame from it (under a second of traffic).
   */
  sweep(): number {
    const n = this.maps.expireLearnedMacs(this.ageingSec);
    this.aged += n;
    return n;
  }
}
