// Turns of the event loop, for tests of what a busy router does per turn
// (accept queues: dataplane/sys/accept-queue.ts).

/** Counts turns of the event loop by a chain of setImmediate callbacks, one per turn's check phase. */
export class TurnCounter {
  turn = 0;
  private counting = false;

  start(): void {
    this.counting = true;
    const next = (): void => {
      this.turn++;
      if (this.counting) setImmediate(next);
    };
    setImmediate(next);
  }

  stop(): void {
    this.counting = false;
  }
}

/**
 * Lets the connect() calls made so far go out (net.connect issues them on the
 * next tick), then holds the event loop for `ms` while the kernel completes
 * every handshake: the connections all wait in the accept queue, as at a busy
 * router.
 */
export async function holdWhileConnectionsQueue(ms = 200): Promise<void> {
  await new Promise<void>((resolve) => process.nextTick(resolve));
  const until = Date.now() + ms;
  while (Date.now() < until) { /* busy: the listening socket's queue fills */ }
}
