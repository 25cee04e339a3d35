// The overlay switch (wire spec §2.4, §5.9): for every control connection it
// starts a forwarder on each overlay both peers offer, carries their control
// messages over the connection (tag 7 with the overlay index, or bare tags
// 1-3 towards legacy peers), picks the best forwarder, tells the mesh when
// the connection is established, and closes it when no forwarder is left.
import { splitHostPort } from '../host-port.js';
import type { MeshConnection } from '../mesh/connection.js';
import type { PeerName } from '../mesh/types.js';
import { formatPeerName } from '../mesh/peer.js';
import type { Datapath, ForwarderParams, ForwarderStatus, OverlayForwarder, OverlayName } from './datapath.js';

/** Control message tags (wire spec §2.2). */
const TAG_OVERLAY_CONTROL = 7;
const SLEEVE_TAGS_IN_COMPAT_MODE = new Set([1, 2, 3]);
/** An overlay index is one byte (wire spec §2.4). */
const MAX_OVERLAYS = 256;

/** The part of a mesh connection the switch uses (a MeshConnection in production). */
export type SwitchConnection = Pick<
  MeshConnection,
  'remoteName' | 'remoteNickName' | 'outbound' | 'remoteAddr' | 'localAddr' | 'connUID' | 'handshake' | 'send' | 'close' | 'closed'
>;

/** The part of the mesh Router the switch reports to. */
export interface SwitchMesh {
  setConnectionEstablished(name: PeerName, established: boolean): boolean;
}

export interface OverlaySwitchOptions {
  /** Datapaths in our preference order (fastdp before sleeve); their overlay names are what we advertise. */
  datapaths: readonly Datapath[];
  mesh: SwitchMesh;
  /** Whether the data plane to this connection's peer must be encrypted (password set and not trusted both ways). */
  encryptFor(conn: SwitchConnection): boolean;
  /** UDP port of the remote's overlay (sleeve: its mesh port; fastdp: mesh port + 1; spec §0). */
  remotePortFor(overlay: OverlayName, conn: SwitchConnection): number;
  /**
   * Overlays this host does not offer, with the reason (e.g. fastdp when the
   * kernel has neither OVS nor BPF): shown as why a connection is not on them.
   */
  unavailable?: ReadonlyMap<OverlayName, string>;
  /** The chosen forwarder of some connection changed: the forwarding state must be recomputed. */
  onSelectionChanged?(): void;
  /** A connection's forwarder learned the remote's overlay MTU (fastdp heartbeats); `peer` as `name(nickname)`. */
  onRemoteMtu?(peer: string, overlay: OverlayName, mtu: number): void;
  log?(message: string): void;
  /** Milliseconds clock for "no acknowledgement after N s" reasons (default Date.now). */
  now?(): number;
  /** How long a new connection waits for a preferred overlay still starting (default PREFERRED_OVERLAY_WAIT_MS; 0: never). */
  preferredOverlayWaitMs?: number;
}

/**
 * A new connection's preferred overlay that is still starting (its forwarder
 * neither established nor failed) is waited for this long before a lesser one
 * that established first carries the peer's traffic. At a router's start the
 * sleeve establishes a few hundred ms before fastdp (its programs still
 * loading, its heartbeats at OVERLAY_HEARTBEAT_FAST_MS); taking the sleeve
 * for those ms would start the sleeve's packet worker, a thread of its own,
 * only to park it again a minute later. The connection is established for
 * the mesh meanwhile (spec §2.5): only the data plane waits. Four fast
 * heartbeats: a fastdp that has not answered by then is not coming soon.
 */
export const PREFERRED_OVERLAY_WAIT_MS = 2_000;

/** A forwarder not established after this long is reported as probably blocked. */
export const SILENT_PATH_AFTER_MS = 10_000;

/**
 * What `weave status connections`, the report and /metrics show about one
 * connection's data plane. The switch is the one record of which overlay a
 * connection uses and why; status reads it, nothing copies it.
 */
export interface ConnectionOverlayStatus {
  peer: PeerName;
  /** The selected forwarder, absent while none is (`none`); its MTU is read live (the sleeve's follows path MTU discovery). */
  inUse?: { overlay: OverlayName; mtu: number };
  /** Data-plane encryption towards this peer. */
  encrypted: boolean;
  /** Why a more preferred overlay is not in use (e.g. `fastdp: not offered by peer`). */
  reason?: string;
  /** Per shared overlay, in preference order. */
  forwarders: Array<{ overlay: OverlayName; state: ForwarderStatus['state']; reason?: string }>;
}

interface Slot {
  overlay: OverlayName;
  datapath: Datapath;
  forwarder?: OverlayForwarder;
  established: boolean;
  healthy: boolean;
  failed: boolean;
  reason?: string;
  startedAt: number;
  remotePort: number;
}

interface ConnEntry {
  conn: SwitchConnection;
  /** Shared overlays in our preference order; the index of a slot is its tag-7 overlay index. */
  slots: Slot[];
  /** The remote sent no `Overlays`: sleeve only, control messages as bare tags 1-3 (spec §2.4). */
  compat: boolean;
  /** Overlays we offer that this peer does not, with why (for status). */
  notShared: Array<{ overlay: OverlayName; reason: string }>;
  chosen?: Slot;
  reportedEstablished: boolean;
  closing: boolean;
  /** Selects again when the wait for a preferred overlay still starting ends. */
  waitTimer?: ReturnType<typeof setTimeout>;
}

/** Host part of `ip:port` or `[v6]:port`. */
export function hostOf(address: string): string {
  const host = splitHostPort(address)?.host ?? address;
  return host.startsWith('::ffff:') && host.includes('.') ? host.slice(7) : host;
}

export class OverlaySwitch {
  private readonly entries = new Map<PeerName, ConnEntry>();
  private readonly log: (message: string) => void;
  private readonly now: () => number;
  private readonly preferredOverlayWaitMs: number;

  constructor(private readonly opts: OverlaySwitchOptions) {
    if (opts.datapaths.length > MAX_OVERLAYS) throw new Error(`overlay switch: at most ${MAX_OVERLAYS} overlays (got ${opts.datapaths.length})`);
    const names = opts.datapaths.map((d) => d.overlay);
    if (new Set(names).size !== names.length) throw new Error(`overlay switch: overlay offered twice in [${names.join(' ')}]`);
    this.log = opts.log ?? (() => undefined);
    this.now = opts.now ?? Date.now;
    this.preferredOverlayWaitMs = opts.preferredOverlayWaitMs ?? PREFERRED_OVERLAY_WAIT_MS;
  }

  /** The `Overlays` handshake feature value: our overlays in preference order (spec §1.5). */
  overlayNames(): OverlayName[] {
    return this.opts.datapaths.map((d) => d.overlay);
  }

  // --- OverlayHandler (mesh router) ---

  connectionAdded(conn: SwitchConnection): void {
    const replaced = this.entries.get(conn.remoteName);
    if (replaced) this.forget(replaced);
    const remoteOverlays = conn.handshake.remote.overlays;
    const compat = remoteOverlays === undefined;
    const notShared: ConnEntry['notShared'] = [];
    const slots: Slot[] = [];
    for (const dp of this.opts.datapaths) {
      const shared = compat ? dp.overlay === 'sleeve' : remoteOverlays.includes(dp.overlay);
      if (shared) {
        slots.push({
          overlay: dp.overlay, datapath: dp, established: false, healthy: true, failed: false,
          startedAt: this.now(), remotePort: this.opts.remotePortFor(dp.overlay, conn),
        });
      }
      else notShared.push({ overlay: dp.overlay, reason: compat ? 'peer predates overlay negotiation (sleeve only)' : 'not offered by peer' });
    }
    const entry: ConnEntry = { conn, slots, compat, notShared, reportedEstablished: false, closing: false };
    this.entries.set(conn.remoteName, entry);
    if (slots.length === 0) {
      const ours = this.overlayNames().join(' ') || '(none)';
      const theirs = compat ? '(none advertised)' : remoteOverlays.join(' ') || '(none)';
      this.closeConnection(entry, `no overlay in common with ${this.describe(conn)}: ours [${ours}], theirs [${theirs}]`);
      return;
    }
    slots.forEach((slot, index) => this.startForwarder(entry, slot, index));
    this.select(entry);
  }

  /** A body with tag 1, 2, 3 or 7 (tag byte first) from the connection (spec §2.4). */
  message(conn: SwitchConnection, body: Uint8Array): void {
    const entry = this.entries.get(conn.remoteName);
    if (!entry || entry.conn !== conn || body.length === 0) return;
    const tag = body[0]!;
    if (tag === TAG_OVERLAY_CONTROL) {
      if (body.length < 3) throw new Error(`overlay control message from ${this.describe(conn)} is ${body.length} bytes; needs at least 3`);
      const index = body[1]!;
      const slot = entry.slots[index];
      if (!slot) {
        this.log(`overlay_switch ${this.arrow(conn)}: ignoring control message for overlay index ${index} (we share ${entry.slots.length})`);
        return;
      }
      // Messages for an overlay that failed locally are dropped (spec §2.4).
      if (!slot.failed) slot.forwarder?.handleControlMessage(body[2]!, body.subarray(3));
      return;
    }
    if (SLEEVE_TAGS_IN_COMPAT_MODE.has(tag)) {
      const sleeve = entry.slots.find((s) => s.overlay === 'sleeve');
      if (sleeve && !sleeve.failed) sleeve.forwarder?.handleControlMessage(tag, body.subarray(1));
    }
  }

  connectionRemoved(conn: SwitchConnection): void {
    const entry = this.entries.get(conn.remoteName);
    if (!entry || entry.conn !== conn) return;
    this.entries.delete(conn.remoteName);
    this.forget(entry);
    if (entry.chosen) this.opts.onSelectionChanged?.();
  }

  // --- what others read ---

  /** The overlay carrying traffic to a neighbour, if any. */
  chosenOverlay(peer: PeerName): OverlayName | undefined {
    return this.entries.get(peer)?.chosen?.overlay;
  }

  /** Neighbours with a chosen overlay (for the forwarding state). */
  neighbours(): Array<{ name: PeerName; overlay: OverlayName; remoteIp: string }> {
    const out: Array<{ name: PeerName; overlay: OverlayName; remoteIp: string }> = [];
    for (const [name, e] of this.entries) {
      if (e.chosen) out.push({ name, overlay: e.chosen.overlay, remoteIp: hostOf(e.conn.remoteAddr) });
    }
    return out;
  }

  status(peer: PeerName): ConnectionOverlayStatus | undefined {
    const e = this.entries.get(peer);
    return e ? this.entryStatus(peer, e) : undefined;
  }

  /** Every connection's data-plane status, keyed by peer name: one read per status snapshot. */
  statuses(): Map<PeerName, ConnectionOverlayStatus> {
    const out = new Map<PeerName, ConnectionOverlayStatus>();
    for (const [peer, e] of this.entries) out.set(peer, this.entryStatus(peer, e));
    return out;
  }

  /** Stop every forwarder (router stopping). */
  stop(): void {
    for (const e of this.entries.values()) this.forget(e);
    this.entries.clear();
  }

  // --- internals ---

  /** Stops a connection's forwarders and its timer (removed, replaced or the switch stopping). */
  private forget(entry: ConnEntry): void {
    clearTimeout(entry.waitTimer);
    for (const s of entry.slots) s.forwarder?.stop();
  }

  private entryStatus(peer: PeerName, e: ConnEntry): ConnectionOverlayStatus {
    const chosen = e.chosen;
    const fs = chosen?.forwarder?.status();
    const forwarders = e.slots.map((s) => {
      const st = s.forwarder?.status();
      const reason = s.reason ?? st?.reason;
      return { overlay: s.overlay, state: s.failed ? 'failed' as const : (st?.state ?? 'initiating'), ...(reason ? { reason } : {}) };
    });
    const reason = this.whyNotPreferred(e);
    return {
      peer,
      ...(chosen ? { inUse: { overlay: chosen.overlay, mtu: fs?.mtu ?? chosen.datapath.mtu } } : {}),
      encrypted: fs?.encrypted ?? this.opts.encryptFor(e.conn),
      ...(reason ? { reason } : {}),
      forwarders,
    };
  }

  private startForwarder(entry: ConnEntry, slot: Slot, index: number): void {
    const conn = entry.conn;
    const h = conn.handshake;
    const params: ForwarderParams = {
      remoteName: conn.remoteName,
      ...(h.remote.shortId !== undefined ? { remoteShortId: h.remote.shortId } : {}),
      remoteIp: hostOf(conn.remoteAddr),
      remotePort: slot.remotePort,
      localIp: hostOf(conn.localAddr),
      outbound: conn.outbound,
      connUID: conn.connUID,
      ...(h.sessionKey ? { sessionKey: h.sessionKey } : {}),
      encrypt: this.opts.encryptFor(conn),
    };
    const live = (): boolean => this.entries.get(conn.remoteName) === entry && !slot.failed && !entry.closing;
    try {
      slot.forwarder = slot.datapath.createForwarder(params, {
        sendControlMessage: (subTag, payload) => {
          if (live()) this.sendControl(entry, index, subTag, payload);
        },
        established: () => {
          if (!live() || slot.established) return;
          slot.established = true;
          slot.healthy = true;
          this.select(entry);
        },
        healthChanged: (healthy, reason) => {
          if (!live() || slot.healthy === healthy) return;
          slot.healthy = healthy;
          slot.reason = healthy ? undefined : (reason ?? 'no heartbeats from peer');
          this.log(`overlay_switch ${this.arrow(conn)} ${slot.overlay} ${healthy ? 'healthy again' : `unhealthy: ${slot.reason}`}`);
          this.select(entry);
        },
        failed: (err) => {
          if (!live()) return;
          this.fail(entry, slot, err.message);
        },
        remoteMtu: (mtu) => {
          if (live()) this.opts.onRemoteMtu?.(this.describe(conn), slot.overlay, mtu);
        },
      });
    } catch (err) {
      slot.failed = true;
      slot.reason = (err as Error).message;
      this.log(`Unable to use ${slot.overlay} for connection to ${this.describe(conn)}: ${slot.reason}`);
    }
  }

  private sendControl(entry: ConnEntry, index: number, subTag: number, payload: Uint8Array): void {
    if (entry.compat) {
      // Compatibility mode (spec §2.4): only the sleeve exists, its sub-tags go out as bare tags.
      if (!SLEEVE_TAGS_IN_COMPAT_MODE.has(subTag)) return;
      const body = new Uint8Array(1 + payload.length);
      body[0] = subTag;
      body.set(payload, 1);
      entry.conn.send(body);
      return;
    }
    // Never send an index the remote cannot resolve: a Go peer would crash (spec §2.4).
    if (index < 0 || index >= entry.slots.length || index >= MAX_OVERLAYS || subTag < 0 || subTag > 255) return;
    const body = new Uint8Array(3 + payload.length);
    body[0] = TAG_OVERLAY_CONTROL;
    body[1] = index;
    body[2] = subTag;
    body.set(payload, 3);
    entry.conn.send(body);
  }

  private fail(entry: ConnEntry, slot: Slot, reason: string): void {
    slot.failed = true;
    slot.reason = reason;
    slot.forwarder?.stop();
    this.log(`overlay_switch ${this.arrow(entry.conn)} ${slot.overlay} failed: ${reason}`);
    if (entry.slots.every((s) => s.failed)) {
      this.closeConnection(entry, `no working forwarders to ${this.describe(entry.conn)}`);
      return;
    }
    this.select(entry);
  }

  /**
   * Best = first established and healthy in preference order, else first still working (spec §5.9);
   * but a preferred one still starting is waited for, for a while (PREFERRED_OVERLAY_WAIT_MS).
   */
  private select(entry: ConnEntry): void {
    const working = entry.slots.filter((s) => !s.failed);
    let best = working.find((s) => s.established && s.healthy) ?? working[0];
    const wasWaiting = entry.waitTimer !== undefined;
    clearTimeout(entry.waitTimer);
    entry.waitTimer = undefined;
    const starting = working.find((s) => !s.established && s.healthy);
    if (best && starting && working.indexOf(starting) < working.indexOf(best)) {
      const waitLeft = starting.startedAt + this.preferredOverlayWaitMs - this.now();
      if (waitLeft > 0) {
        if (!wasWaiting) this.log(`overlay_switch ${this.arrow(entry.conn)} ${best.overlay} established; waiting up to ${waitLeft} ms for ${starting.overlay}`);
        best = starting;
        entry.waitTimer = setTimeout(() => {
          entry.waitTimer = undefined;
          if (this.entries.get(entry.conn.remoteName) === entry && !entry.closing) this.select(entry);
        }, waitLeft);
        entry.waitTimer.unref?.();
      }
    }
    const previous = entry.chosen;
    entry.chosen = best;
    if (best !== previous) {
      if (best) this.log(`overlay_switch ${this.arrow(entry.conn)} using ${best.overlay}${this.reasonSuffix(entry)}`);
      this.opts.onSelectionChanged?.();
    }
    // The connection is established once some forwarder is (spec §2.5); it stays so while any is.
    const anyEstablished = working.some((s) => s.established);
    if (anyEstablished !== entry.reportedEstablished) {
      entry.reportedEstablished = anyEstablished;
      this.opts.mesh.setConnectionEstablished(entry.conn.remoteName, anyEstablished);
    }
  }

  /** Why the overlays we prefer over the chosen one are not in use. */
  private whyNotPreferred(entry: ConnEntry): string | undefined {
    const reasons: string[] = [];
    const chosen = entry.chosen;
    if (chosen && !chosen.established && entry.waitTimer !== undefined) {
      const lesser = entry.slots.find((s) => s.established && s.healthy && !s.failed);
      if (lesser) reasons.push(`${chosen.overlay}: not acknowledged yet, waited for up to ${this.preferredOverlayWaitMs} ms before ${lesser.overlay}`);
    }
    for (const [overlay, why] of this.opts.unavailable ?? []) {
      if (entry.chosen?.overlay !== overlay) reasons.push(`${overlay}: ${why}`);
    }
    const preferredNames = this.overlayNames();
    const chosenRank = entry.chosen ? preferredNames.indexOf(entry.chosen.overlay) : preferredNames.length;
    for (const n of entry.notShared) {
      if (preferredNames.indexOf(n.overlay) < chosenRank) reasons.push(`${n.overlay}: ${n.reason}`);
    }
    for (const s of entry.slots) {
      if (s === entry.chosen) break;
      const st = s.forwarder?.status();
      const why = s.failed ? (s.reason ?? st?.reason ?? 'failed')
        : !s.healthy ? (s.reason ?? 'unhealthy')
          : !s.established ? (st?.reason ?? this.notEstablishedReason(s)) : undefined;
      if (why) reasons.push(`${s.overlay}: ${why}`);
    }
    return reasons.length > 0 ? reasons.join('; ') : undefined;
  }

  private notEstablishedReason(s: Slot): string {
    if (this.now() - s.startedAt < SILENT_PATH_AFTER_MS) return 'heartbeats not acknowledged yet';
    return `no heartbeat acks from peer (UDP ${s.remotePort} blocked?)`;
  }

  private reasonSuffix(entry: ConnEntry): string {
    const r = this.whyNotPreferred(entry);
    return r ? ` (${r})` : '';
  }

  private closeConnection(entry: ConnEntry, reason: string): void {
    if (entry.closing) return;
    entry.closing = true;
    this.log(`overlay_switch ${this.arrow(entry.conn)} ${reason}`);
    entry.conn.close(new Error(reason));
  }

  private arrow(conn: SwitchConnection): string {
    return `${conn.outbound ? '->' : '<-'}[${this.describe(conn)}]`;
  }

  private describe(conn: SwitchConnection): string {
    return `${formatPeerName(conn.remoteName)}(${conn.remoteNickName})`;
  }
}
