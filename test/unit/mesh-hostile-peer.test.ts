// A hostile neighbour gossiping a huge topology, thousands of fake peers or
// endless invented channel names: the router closes that connection and its
// tables stay bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TestMesh, handshakes, identity, linkPair, type MemoryLink } from './mesh-harness.js';
import { encodeGossipMessage, encodeTopology } from '../../controlplane/mesh/wire/index.js';
import { MAX_PEERS, MAX_SURROGATE_CHANNELS } from '../../controlplane/mesh/index.js';
import { ProtocolTag, type PeerName, type PeerRecord } from '../../controlplane/mesh/types.js';

const HOSTILE = identity(66);

/** A victim router with one connection from the hostile peer; returns the hostile end of the link. */
function victimWithHostile(): { mesh: TestMesh; hostile: MemoryLink; closeReasons: string[] } {
  const closeReasons: string[] = [];
  const mesh = new TestMesh(1, { logger: { info: (m) => { if (m.includes(' closed: ')) closeReasons.push(m); }, warn() {} } });
  const victim = mesh.peers[0]!;
  const [, hs] = handshakes(HOSTILE, '10.0.0.66', victim.identity, '10.0.0.1:6783', 5n);
  const [hostile, ours] = linkPair();
  victim.router.addConnection(hs, ours, { direct: true });
  hostile.start({ onMessage() {}, onClose() {} });
  return { mesh, hostile, closeReasons };
}

/** `count` fake peers from `first`, each connected to the hostile peer and it to them (so all reachable). */
function fakeTopology(first: number, count: number, version: bigint): Uint8Array {
  const fakes: PeerName[] = Array.from({ length: count }, (_, i) => 0x020000000000n + BigInt(first + i));
  const records: PeerRecord[] = [
    {
      summary: { name: HOSTILE.name, nickName: HOSTILE.nickName, uid: HOSTILE.uid, version, shortId: 66, hasShortId: true },
      connections: fakes.map((name) => ({ name, remoteTcpAddr: '10.9.9.9:6783', outbound: true, established: true })),
    },
    ...fakes.map((name, i): PeerRecord => ({
      summary: { name, nickName: `fake${i}`, uid: BigInt(i + 1), version: 1n, shortId: i & 0xfff, hasShortId: true },
      connections: [{ name: HOSTILE.name, remoteTcpAddr: '10.0.0.66:6783', outbound: false, established: true }],
    })),
  ];
  return encodeGossipMessage({ tag: ProtocolTag.Gossip, channel: 'topology', src: HOSTILE.name, payload: encodeTopology(records) });
}

test('a peer announcing more peers than the table holds is disconnected and nothing of it is applied', async () => {
  const { mesh, hostile, closeReasons } = victimWithHostile();
  try {
    const victim = mesh.peers[0]!.router;
    hostile.send(fakeTopology(0, MAX_PEERS + 10, 10n));
    await mesh.advance(10);
    assert.ok(hostile.closed, 'the hostile connection was closed');
    assert.match(closeReasons.join('\n'), /topology update would add 10010 peers to the 2 known, over the limit of 10000/);
    assert.ok(victim.peers.size <= 2, `${victim.peers.size} peers known`);
    await mesh.advance(2_000);
    assert.equal(victim.peers.size, 1, 'after garbage collection only the victim itself is left');
  } finally {
    mesh.stop();
  }
});

test('fake peers added a few thousand at a time stop at the bound; the table never passes it', async () => {
  const { mesh, hostile, closeReasons } = victimWithHostile();
  try {
    const victim = mesh.peers[0]!.router;
    let sent = 0;
    for (let round = 0; round < 6 && !hostile.closed; round++) {
      hostile.send(fakeTopology(round * 3000, 3000, BigInt(10 + round)));
      sent += 3000;
      await mesh.advance(10);
      assert.ok(victim.peers.size <= MAX_PEERS, `${victim.peers.size} peers after ${sent} announced`);
    }
    assert.ok(hostile.closed, 'the connection was closed once the bound was reached');
    assert.equal(closeReasons.length, 1);
    assert.match(closeReasons[0]!, /over the limit of 10000/);
    // The fakes hung off the hostile peer only: with it gone they are unreachable and collected.
    await mesh.advance(2_000);
    assert.equal(victim.peers.size, 1);
  } finally {
    mesh.stop();
  }
});

test(`gossip on more than ${MAX_SURROGATE_CHANNELS} invented channels closes the connection`, async () => {
  const { mesh, hostile, closeReasons } = victimWithHostile();
  try {
    let accepted = 0;
    for (let i = 0; i < 1000 && !hostile.closed; i++) {
      hostile.send(encodeGossipMessage({ tag: ProtocolTag.GossipBroadcast, channel: `junk-${i}`, src: HOSTILE.name, payload: Uint8Array.of(i & 0xff) }));
      await mesh.advance(1);
      if (!hostile.closed) accepted++;
    }
    assert.equal(accepted, MAX_SURROGATE_CHANNELS);
    assert.match(closeReasons.join('\n'), /gossip on unknown channel "junk-64": already relaying 64 unknown channels/);
  } finally {
    mesh.stop();
  }
});
