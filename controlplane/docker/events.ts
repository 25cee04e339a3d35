// Docker's event stream (GET /events: one JSON object per line, for as long as the connection
// lasts), as an async iterator over one connection (streamEvents) and as a watcher that
// survives daemon restarts (EventWatcher): it reconnects with backoff and, each time the
// stream is open again, lets its owner re-list and reconcile before any new event is handed
// over, so nothing that happened while disconnected is lost and nothing stale is kept.
import type { EngineClient, DockerFilters } from './engine-client.js';

/** One Docker event (API ≥1.22 shape; the older `status`/`id`/`from` keys are also sent). */
export interface DockerEvent {
  /** `container`, `network`, `image`, `volume`, `daemon`, `plugin`, ... */
  Type: string;
  /** `start`, `die`, `destroy`, `connect`, `disconnect`, `health_status: healthy`, ... */
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope?: string;
  time: number;
  timeNano?: number;
}

/** A line longer than this is not an event Docker sends; it is dropped and counted. */
const MAX_EVENT_LINE_BYTES = 1024 * 1024;

export interface EventStreamOptions {
  filters?: DockerFilters;
  /** Unix seconds: replay events since then (Docker keeps a bounded backlog). */
  since?: number;
  signal?: AbortSignal;
  /** Called for each line that is not a valid event (after it was dropped). */
  onMalformed?: (line: string) => void;
}

/** Validates one decoded line; undefined if it is not an event. */
export function toDockerEvent(v: unknown): DockerEvent | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.Type !== 'string' || typeof o.Action !== 'string') return undefined;
  const actor = o.Actor as Record<string, unknown> | undefined;
  if (typeof actor !== 'object' || actor === null || typeof actor.ID !== 'string') return undefined;
  const attrs: Record<string, string> = {};
  if (typeof actor.Attributes === 'object' && actor.Attributes !== null) {
    for (const [k, val] of Object.entries(actor.Attributes as Record<string, unknown>)) if (typeof val === 'string') attrs[k] = val;
  }
  const ev: DockerEvent = { Type: o.Type, Action: o.Action, Actor: { ID: actor.ID, Attributes: attrs }, time: typeof o.time === 'number' ? o.time : 0 };
  if (typeof o.scope === 'string') ev.scope = o.scope;
  if (typeof o.timeNano === 'number') ev.timeNano = o.timeNano;
  return ev;
}

/**
 * Splits a byte stream into lines and decodes each as an event; malformed or oversized
 * lines are reported and skipped.
 */
export async function* decodeEventLines(chunks: AsyncIterable<Buffer | string>, onMalformed?: (line: string) => void): AsyncGenerator<DockerEvent> {
  let pending = '';
  let discarding = false;
  for await (const chunk of chunks) {
    pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (discarding) { discarding = false; continue; }
      if (line === '') continue;
      let ev: DockerEvent | undefined;
      try { ev = toDockerEvent(JSON.parse(line)); } catch { ev = undefined; }
      if (ev) yield ev;
      else onMalformed?.(line.slice(0, 200));
    }
    if (pending.length > MAX_EVENT_LINE_BYTES) {
      onMalformed?.(pending.slice(0, 200));
      pending = '';
      discarding = true;
    }
  }
}

function eventsQuery(opts: EventStreamOptions): string {
  const q = new URLSearchParams();
  if (opts.since !== undefined) q.set('since', String(opts.since));
  if (opts.filters) q.set('filters', JSON.stringify(opts.filters));
  return q.size > 0 ? `/events?${q}` : '/events';
}

/** An open event stream: events until the daemon or the caller ends it. */
export interface EventStream extends AsyncIterable<DockerEvent> {
  close(): void;
}

/**
 * Opens GET /events; resolves once Docker accepted it (so events from now on are not missed),
 * then iterate. The iteration ends when the connection ends; transport errors end it too.
 */
export async function openEventStream(client: EngineClient, opts: EventStreamOptions = {}): Promise<EventStream> {
  const open = await client.openStream(eventsQuery(opts), opts.signal ? { signal: opts.signal } : {});
  const res = open.response;
  // A reset connection is the normal end of a stream when the daemon stops: end quietly.
  async function* bytes(): AsyncGenerator<Buffer> {
    try {
      for await (const c of res) yield c as Buffer;
    } catch { /* connection reset */ }
  }
  return {
    close: open.close,
    [Symbol.asyncIterator]: () => decodeEventLines(bytes(), opts.onMalformed),
  };
}

/** One connection's events as an async iterator (opens lazily). */
export async function* streamEvents(client: EngineClient, opts: EventStreamOptions = {}): AsyncGenerator<DockerEvent> {
  const s = await openEventStream(client, opts);
  try {
    yield* s;
  } finally {
    s.close();
  }
}

export interface EventWatcherOptions {
  filters?: DockerFilters;
  /**
   * Called each time the stream is (re)opened, before any event from it is handled: list
   * what exists now and reconcile. Events that arrive meanwhile are queued, not lost.
   */
  onSync?: () => Promise<void>;
  /** Called for each event, one at a time, in order. A throw is reported and the watcher goes on. */
  onEvent: (ev: DockerEvent) => Promise<void> | void;
  onError?: (err: Error, during: 'connect' | 'sync' | 'event') => void;
  onConnectionChange?: (connected: boolean) => void;
  /** First reconnect delay, doubled up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export interface EventWatcherStats {
  connected: boolean;
  connects: number;
  events: number;
  malformed: number;
  handlerErrors: number;
}

/** Follows Docker's events across daemon restarts; start() once, stop() to end. */
export class EventWatcher {
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private current: EventStream | undefined;
  private wake: (() => void) | undefined;
  readonly stats: EventWatcherStats = { connected: false, connects: 0, events: 0, malformed: 0, handlerErrors: 0 };

  constructor(private readonly client: EngineClient, private readonly opts: EventWatcherOptions) {}

  start(): void {
    if (this.running === undefined) this.running = this.loop();
  }

  /** Ends the watcher; resolves when no handler runs any more. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.current?.close();
    this.wake?.();
    await this.running;
  }

  /** Skips the current backoff wait (e.g. when the owner learns the daemon is back). */
  retryNow(): void {
    this.wake?.();
  }

  private setConnected(c: boolean): void {
    if (this.stats.connected === c) return;
    this.stats.connected = c;
    this.opts.onConnectionChange?.(c);
  }

  private async loop(): Promise<void> {
    const min = this.opts.minBackoffMs ?? 100;
    const max = this.opts.maxBackoffMs ?? 5000;
    let backoff = min;
    while (!this.abort.signal.aborted) {
      let stream: EventStream;
      try {
        stream = await openEventStream(this.client, {
          ...(this.opts.filters ? { filters: this.opts.filters } : {}),
          signal: this.abort.signal,
          onMalformed: () => { this.stats.malformed++; },
        });
      } catch (e) {
        if (this.abort.signal.aborted) break;
        this.opts.onError?.(e as Error, 'connect');
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, max);
        continue;
      }
      this.current = stream;
      this.stats.connects++;
      this.setConnected(true);
      backoff = min;
      // Read events into a queue while onSync runs, so none are lost and none handled early.
      const iter = stream[Symbol.asyncIterator]();
      let next = iter.next();
      if (this.opts.onSync) {
        try {
          await this.opts.onSync();
        } catch (e) {
          this.opts.onError?.(e as Error, 'sync');
          stream.close();
          this.setConnected(false);
          if (this.abort.signal.aborted) break;
          await this.sleep(backoff);
          backoff = Math.min(backoff * 2, max);
          continue;
        }
      }
      for (;;) {
        const r = await next;
        if (r.done) break;
        next = iter.next();
        this.stats.events++;
        try {
          await this.opts.onEvent(r.value);
        } catch (e) {
          this.stats.handlerErrors++;
          this.opts.onError?.(e as Error, 'event');
        }
      }
      this.current = undefined;
      this.setConnected(false);
      if (!this.abort.signal.aborted) await this.sleep(min);
    }
    this.setConnected(false);
  }

  private sleep(ms: number): Promise<void> {
    if (this.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void { clearTimeout(t); resolve(); }
      this.wake = () => { this.wake = undefined; done(); };
    });
  }
}
