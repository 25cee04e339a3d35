// The router's ForwardingState indexed for the miss handler: short id <->
// peer, unicast next hops, fastdp neighbours and broadcast trees (spec §4.6,
// §5.8, §6.2). A fingerprint tells whether a new state changes anything that
// installed flows depend on (spec §6.5 invalidation).

import type { ForwardingState, OverlayName } from '../../controlplane/router/datapath.js';
import type { PeerName, PeerShortID } from '../../controlplane/mesh/types.js';

export interface Routing {
  ourName: PeerName;
  ourShortId: PeerShortID;
  peerByShortId: ReadonlyMap<PeerShortID, PeerName>;
  shortIdOf: ReadonlyMap<PeerName, PeerShortID>;
  nextHop: ReadonlyMap<PeerName, PeerName>;
  neighbours: ReadonlyMap<PeerName, { overlay: OverlayName; remoteIp: string }>;
  broadcast: ReadonlyMap<PeerName, readonly PeerName[]>;
  /** Equal fingerprints: flows installed under one state are valid under the other. */
  fingerprint: string;
}

export function indexForwardingState(state: ForwardingState): Routing {
  const peerByShortId = new Map<PeerShortID, PeerName>([[state.ourShortId, state.ourName]]);
  const shortIdOf = new Map<PeerName, PeerShortID>([[state.ourName, state.ourShortId]]);
  const nextHop = new Map<PeerName, PeerName>();
  for (const p of state.peers) {
    if (p.shortId !== undefined && p.name !== state.ourName) {
      shortIdOf.set(p.name, p.shortId);
      // spec §4.8: FetchByShortID returns the principal, the lowest name claiming the id.
      const holder = peerByShortId.get(p.shortId);
      if (holder === undefined || (holder !== state.ourName && p.name < holder)) peerByShortId.set(p.shortId, p.name);
    }
    if (p.name !== state.ourName) nextHop.set(p.name, p.nextHop);
  }
  const neighbours = new Map(state.neighbours.map((n) => [n.name, { overlay: n.overlay, remoteIp: n.remoteIp }]));
  const broadcast = new Map(state.broadcast.map((b) => [b.source, [...b.nextHops]]));
  const fingerprint = JSON.stringify({
    us: [state.ourName.toString(16), state.ourShortId],
    ids: [...shortIdOf].map(([n, id]) => `${n.toString(16)}=${id}`).sort(),
    hops: [...nextHop].map(([d, h]) => `${d.toString(16)}>${h.toString(16)}`).sort(),
    nbrs: [...neighbours].map(([n, v]) => `${n.toString(16)}:${v.overlay}:${v.remoteIp}`).sort(),
    bcast: [...broadcast].map(([s, hops]) => `${s.toString(16)}>${hops.map((h) => h.toString(16)).join(',')}`).sort(),
  });
  return { ourName: state.ourName, ourShortId: state.ourShortId, peerByShortId, shortIdOf, nextHop, neighbours, broadcast, fingerprint };
}
