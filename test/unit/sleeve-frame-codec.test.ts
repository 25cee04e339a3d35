// Sleeve datagram and frame format (spec §5.2) and batching (spec §5.7).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  batchFrames, decodeDatagram, decodeFrames, encodeDatagram, encodeFrames, encodedFramesLength,
  SleeveDecodeError, type SleeveFrame,
} from '../../dataplane/sleeve/frame-codec.js';
import { heartbeatFrame } from '../../dataplane/sleeve/special-frames.js';
import {
  ENCRYPTED_PACKET_OVERHEAD, FRAME_HEADER_SIZE, MAX_UDP_PAYLOAD, PLAIN_PACKET_OVERHEAD, overheadDF,
} from '../../dataplane/sleeve/constants.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const A = 0x0a0000000001n;
const B = 0x0a0000000002n;

const nameArb = fc.bigInt({ min: 0n, max: (1n << 48n) - 1n });
const frameArb: fc.Arbitrary<SleeveFrame> = fc.record({
  src: nameArb,
  dst: nameArb,
  frame: fc.uint8Array({ maxLength: 300 }),
});

test('golden: the heartbeat frame of the spec §5.3 test vector', () => {
  const body = encodeFrames([{ src: A, dst: B, frame: heartbeatFrame(0x0123456789abcdefn) }]);
  assert.equal(hex(body), '0a0000000001' + '0a0000000002' + '0016' + '0000000000000000000000000000' + '0123456789abcdef');
  assert.equal(hex(encodeDatagram(A, body).subarray(0, 6)), '0a0000000001');
});

test('constants: overheads as the spec states them (§5.3, §5.6)', () => {
  assert.equal(PLAIN_PACKET_OVERHEAD, 6);
  assert.equal(ENCRYPTED_PACKET_OVERHEAD, 30);
  assert.equal(FRAME_HEADER_SIZE, 14);
  assert.equal(overheadDF(true), 86);
  assert.equal(overheadDF(false), 62);
  assert.equal(MAX_UDP_PAYLOAD, 65507);
});

test('frames round-trip, several per datagram, including empty frames', () => {
  fc.assert(fc.property(nameArb, fc.array(frameArb, { maxLength: 20 }), (sender, frames) => {
    const datagram = encodeDatagram(sender, encodeFrames(frames));
    assert.equal(datagram.length, 6 + encodedFramesLength(frames));
    const { sender: got, body } = decodeDatagram(datagram);
    assert.equal(got, sender);
    const decoded = decodeFrames(body);
    assert.equal(decoded.error, undefined);
    const plain = (f: SleeveFrame) => ({ src: f.src, dst: f.dst, frame: Uint8Array.from(f.frame) });
    assert.deepEqual(decoded.frames.map(plain), frames.map(plain));
  }));
});

test('a length beyond the end is "too short"; frames before it are still delivered', () => {
  const good = encodeFrames([{ src: A, dst: B, frame: Uint8Array.of(1, 2, 3) }]);
  const bad = encodeFrames([{ src: B, dst: A, frame: new Uint8Array(10) }]).subarray(0, FRAME_HEADER_SIZE + 9);
  const { frames, error } = decodeFrames(Uint8Array.from([...good, ...bad]));
  assert.equal(frames.length, 1);
  assert.deepEqual(Array.from(frames[0]!.frame), [1, 2, 3]);
  assert.ok(error instanceof SleeveDecodeError);
  assert.equal(error.kind, 'frame-too-short');
  assert.match(error.message, /announces 10 bytes but only 9 remain/);
});

test('1..13 bytes after the last frame are "trailing garbage"', () => {
  const good = encodeFrames([{ src: A, dst: B, frame: Uint8Array.of(9) }]);
  for (let extra = 1; extra < FRAME_HEADER_SIZE; extra++) {
    const { frames, error } = decodeFrames(Uint8Array.from([...good, ...new Array<number>(extra).fill(0xee)]));
    assert.equal(frames.length, 1);
    assert.equal(error?.kind, 'trailing-garbage', `with ${extra} extra byte(s)`);
  }
  assert.equal(decodeFrames(new Uint8Array(0)).error, undefined, 'an empty body holds no frames and no error');
});

test('datagrams without a full sender name or over 65535 bytes are rejected', () => {
  for (let n = 0; n < 6; n++) {
    assert.throws(() => decodeDatagram(new Uint8Array(n)), (e: unknown) => e instanceof SleeveDecodeError && e.kind === 'datagram-too-short');
  }
  assert.throws(() => decodeDatagram(new Uint8Array(65536)), (e: unknown) => e instanceof SleeveDecodeError && e.kind === 'datagram-too-long');
  assert.equal(decodeDatagram(Uint8Array.of(0, 0, 0, 0, 0, 7)).body.length, 0);
});

test('encoding rejects names over 48 bits, frames over 65535 bytes and oversized datagrams', () => {
  assert.throws(() => encodeFrames([{ src: 1n << 48n, dst: B, frame: new Uint8Array(1) }]), /src peer name .* 48-bit/);
  assert.throws(() => encodeFrames([{ src: A, dst: -1n, frame: new Uint8Array(1) }]), /dst peer name/);
  assert.throws(() => encodeFrames([{ src: A, dst: B, frame: new Uint8Array(65536) }]), /exceeds the u16 length field/);
  assert.throws(() => encodeDatagram(A, new Uint8Array(65530)), /exceeds 65535/);
});

test('fuzz: the decoders only ever report SleeveDecodeError', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
    const r = decodeFrames(bytes);
    assert.ok(r.error === undefined || r.error instanceof SleeveDecodeError);
    const consumed = r.frames.reduce((n, f) => n + FRAME_HEADER_SIZE + f.frame.length, 0);
    assert.ok(consumed <= bytes.length);
    if (r.error === undefined) assert.equal(consumed, bytes.length);
    try {
      const d = decodeDatagram(bytes);
      assert.equal(d.body.length, bytes.length - 6);
    } catch (e) {
      assert.ok(e instanceof SleeveDecodeError, `unexpected ${String(e)}`);
    }
  }), { numRuns: 2000 });
});

test('batching: at most 100 frames and maxPayload bytes per datagram; oversize frames dropped', () => {
  const tiny = Array.from({ length: 250 }, (_, i): SleeveFrame => ({ src: A, dst: B, frame: Uint8Array.of(i & 0xff) }));
  const byCount = batchFrames(tiny, { maxPayload: MAX_UDP_PAYLOAD, packetOverhead: PLAIN_PACKET_OVERHEAD });
  assert.deepEqual(byCount.datagrams.map((d) => d.length), [100, 100, 50]);

  const frame = (n: number): SleeveFrame => ({ src: A, dst: B, frame: new Uint8Array(n) });
  // 30 + (14+500)*2 = 1058 fits in 1100; a third frame would not.
  const bySize = batchFrames([frame(500), frame(500), frame(500), frame(2000), frame(1)], { maxPayload: 1100, packetOverhead: 30 });
  assert.deepEqual(bySize.datagrams.map((d) => d.map((f) => f.frame.length)), [[500, 500], [500, 1]]);
  assert.deepEqual(bySize.dropped.map((f) => f.frame.length), [2000]);
  assert.throws(() => batchFrames([], { maxPayload: 100, packetOverhead: 6, maxFrames: 0 }), /maxFrames/);
});

test('batching keeps order and respects the limits (property)', () => {
  fc.assert(fc.property(fc.array(frameArb, { maxLength: 60 }), fc.integer({ min: 40, max: 2000 }), fc.integer({ min: 1, max: 10 }),
    (frames, maxPayload, maxFrames) => {
      const { datagrams, dropped } = batchFrames(frames, { maxPayload, packetOverhead: 30, maxFrames });
      for (const d of datagrams) {
        assert.ok(d.length >= 1 && d.length <= maxFrames);
        assert.ok(30 + encodedFramesLength(d) <= maxPayload);
      }
      assert.deepEqual([...datagrams.flat(), ...dropped].length, frames.length);
      assert.deepEqual(datagrams.flat(), frames.filter((f) => !dropped.includes(f)));
      for (const f of dropped) assert.ok(30 + FRAME_HEADER_SIZE + f.frame.length > maxPayload);
    }));
});
