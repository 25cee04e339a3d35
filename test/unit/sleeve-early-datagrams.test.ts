// The sleeve worker's hold of datagrams from senders without a forwarder yet:
// what it keeps, for how long, and its bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EARLY_DATAGRAM_MAX_BYTES, EARLY_HOLD_MS, EARLY_SENDERS_MAX, EarlyDatagrams } from '../../dataplane/sleeve/early-datagrams.js';
import type { PeerName } from '../../controlplane/mesh/types.js';

const FROM = { ip: '192.0.2.1', port: 6783 };
const name = (i: number): PeerName => BigInt(0x0a0000000000 + i) as PeerName;

test('the latest datagram of a sender is kept as a copy and handed over once, while recent', () => {
  const early = new EarlyDatagrams();
  const buffer = Uint8Array.of(1, 2, 3);
  early.keep(name(1), buffer, FROM, 1_000);
  buffer[0] = 9; // the receive buffer is reused for the next batch
  early.keep(name(1), Uint8Array.of(4, 5), FROM, 1_010);
  const got = early.take(name(1), 1_020);
  assert.deepEqual(got && [...got.datagram], [4, 5], 'the newer datagram replaced the older');
  assert.deepEqual(got?.from, FROM);
  assert.equal(early.take(name(1), 1_030), undefined, 'handed over once');

  early.keep(name(2), Uint8Array.of(1), FROM, 0);
  assert.equal(early.take(name(2), EARLY_HOLD_MS + 1), undefined, 'too old to act on');
  assert.equal(early.size, 0, 'and forgotten');

  const kept = Uint8Array.of(7);
  early.keep(name(3), kept, FROM, 0);
  kept[0] = 8;
  assert.deepEqual([...early.take(name(3), 1)!.datagram], [7], 'a copy, not a view of the receive buffer');
});

test('bounded: datagrams over the size limit are not kept, and the oldest sender goes past the sender limit', () => {
  const early = new EarlyDatagrams();
  early.keep(name(0), new Uint8Array(EARLY_DATAGRAM_MAX_BYTES + 1), FROM, 0);
  assert.equal(early.size, 0);
  for (let i = 0; i < EARLY_SENDERS_MAX * 4; i++) early.keep(name(i), new Uint8Array(EARLY_DATAGRAM_MAX_BYTES), FROM, i);
  assert.equal(early.size, EARLY_SENDERS_MAX);
  assert.equal(early.take(name(EARLY_SENDERS_MAX * 3 - 1), EARLY_SENDERS_MAX * 4), undefined, 'pushed out');
  assert.ok(early.take(name(EARLY_SENDERS_MAX * 4 - 1), EARLY_SENDERS_MAX * 4), 'the newest are held');
  // A sender that sends again moves to the back: it is not the next to go.
  early.keep(name(EARLY_SENDERS_MAX * 3), Uint8Array.of(1), FROM, 10_000);
  early.keep(name(1_000_000), Uint8Array.of(1), FROM, 10_001);
  early.keep(name(1_000_001), Uint8Array.of(1), FROM, 10_002);
  assert.ok(early.take(name(EARLY_SENDERS_MAX * 3), 10_003), 'refreshed sender kept');
});
