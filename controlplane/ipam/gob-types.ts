// Gob type descriptors of the IPAM gossip payloads (spec §1.8.9, §8.2).
// Field order is the field numbering; names are those the Go side declares.
import type { GobType } from '../mesh/gob/types.js';

const uint: GobType = { kind: 'uint' };

export const nodeIDType: GobType = {
  kind: 'struct', name: 'NodeID', fields: [{ name: 'Name', type: uint }, { name: 'UID', type: uint }],
};

export const proposalIDType: GobType = {
  kind: 'struct', name: 'ProposalID', fields: [{ name: 'Round', type: uint }, { name: 'Proposer', type: nodeIDType }],
};

export const paxosValueType: GobType = { kind: 'slice', name: 'Value', elem: uint };

export const acceptedValueType: GobType = {
  kind: 'struct', name: 'AcceptedValue', fields: [{ name: 'Value', type: paxosValueType }, { name: 'Origin', type: proposalIDType }],
};

export const nodeClaimsType: GobType = {
  kind: 'struct', name: 'NodeClaims', fields: [
    { name: 'Promise', type: proposalIDType },
    { name: 'Accepted', type: proposalIDType },
    { name: 'AcceptedVal', type: acceptedValueType },
  ],
};

/** Paxos `GossipState`: map NodeID -> NodeClaims. */
export const paxosGossipStateType: GobType = { kind: 'map', name: 'GossipState', key: nodeIDType, elem: nodeClaimsType };

export const entryType: GobType = {
  kind: 'struct', name: 'entry', fields: [
    { name: 'Token', type: uint }, { name: 'Peer', type: uint }, { name: 'Version', type: uint }, { name: 'Free', type: uint },
  ],
};

export const entriesType: GobType = { kind: 'slice', name: 'entries', elem: entryType };

export const peerNameSliceType: GobType = { kind: 'slice', name: '[]mesh.PeerName', elem: uint };

export const ringType: GobType = {
  kind: 'struct', name: 'Ring', fields: [
    { name: 'Start', type: uint }, { name: 'End', type: uint }, { name: 'Peer', type: uint },
    { name: 'Entries', type: entriesType }, { name: 'Seeds', type: peerNameSliceType },
  ],
};

export const nicknamesType: GobType = { kind: 'map', name: 'map[mesh.PeerName]string', key: uint, elem: { kind: 'string' } };

/** The IPAM gossip payload (spec §8.2 `gossipState`). */
export const gossipStateType: GobType = {
  kind: 'struct', name: 'gossipState', fields: [
    { name: 'Now', type: { kind: 'int' } },
    { name: 'Nicknames', type: nicknamesType },
    { name: 'Paxos', type: paxosGossipStateType },
    { name: 'Ring', type: ringType },
  ],
};

/** `address.Range`, the body of space requests and denials (spec §8.2). */
export const rangeType: GobType = {
  kind: 'struct', name: 'Range', fields: [{ name: 'Start', type: uint }, { name: 'End', type: uint }],
};
