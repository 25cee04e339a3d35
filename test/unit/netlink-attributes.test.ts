// The netlink wire codec (attributes, message headers, error payloads): pure bytes, no kernel.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  AttributeWriter,
  MalformedAttributeError,
  NLA_F_NESTED,
  parseAttributes,
} from '../../dataplane/netlink/attributes.js';
import {
  MalformedMessageError,
  NLMSG_ERROR,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  decodeErrorPayload,
  decodeMessages,
  encodeMessage,
} from '../../dataplane/netlink/message.js';
import { NetlinkError, errnoName } from '../../dataplane/netlink/errors.js';

test('scalars encode with header, host or network order, and 4-byte padding', () => {
  const buf = new AttributeWriter().u8(1, 0xab).u16(2, 0x1234).u16be(3, 6784).u32(4, 0xdeadbeef).u64(5, 0x0102030405060708n).build();
  assert.equal(buf.toString('hex'),
    '0500' + '0100' + 'ab000000' + // len 5 (excludes padding), type 1, 1 byte + 3 pad
    '0600' + '0200' + '34120000' +
    '0600' + '0300' + '1a800000' + // 6784 = 0x1a80, big-endian
    '0800' + '0400' + 'efbeadde' +
    '0c00' + '0500' + '0807060504030201');
  const a = parseAttributes(buf);
  assert.equal(a.u8(1), 0xab);
  assert.equal(a.u16(2), 0x1234);
  assert.equal(a.u16be(3), 6784);
  assert.equal(a.u32(4), 0xdeadbeef);
  assert.equal(a.u64(5), 0x0102030405060708n);
  assert.equal(a.u32(99), undefined);
});

test('strings are NUL-terminated and padded; flags are empty', () => {
  const buf = new AttributeWriter().string(3, 'weave').flag(7).build();
  assert.equal(buf.length, 4 + 8 + 4);
  assert.equal(buf.readUInt16LE(0), 4 + 6, 'nla_len counts the NUL');
  const a = parseAttributes(buf);
  assert.equal(a.string(3), 'weave');
  assert.ok(a.has(7));
  assert.equal(a.bytes(7)?.length, 0);
  assert.throws(() => new AttributeWriter().string(1, 'a\0b'), /must not contain NUL/);
});

test('nested attributes set NLA_F_NESTED and parse back', () => {
  const buf = new AttributeWriter()
    .nested(18, (li) => li.string(1, 'vxlan').nested(2, (d) => d.u32(1, 42).u8(25, 1)))
    .build();
  assert.equal(buf.readUInt16LE(2), 18 | NLA_F_NESTED);
  const top = parseAttributes(buf);
  assert.equal(top.get(18)?.nested, true);
  const info = top.nested(18);
  assert.equal(info?.string(1), 'vxlan');
  assert.equal(info?.nested(2)?.u32(1), 42);
  assert.equal(info?.nested(2)?.u8(25), 1);
});

test('repeated attribute types are all kept, in order', () => {
  const a = parseAttributes(new AttributeWriter().u32(1, 10).u32(2, 0).u32(1, 11).u32(1, 12).build());
  assert.deepEqual(a.getAll(1).map((x) => x.value.readUInt32LE(0)), [10, 11, 12]);
  assert.equal(a.u32(1), 10);
});

test('malformed attribute lists are rejected with a clear error', () => {
  assert.throws(() => parseAttributes(Buffer.from([0x08, 0x00])), (e: unknown) =>
    e instanceof MalformedAttributeError && /too short for a 4-byte header/.test(e.message));
  assert.throws(() => parseAttributes(Buffer.from([0x20, 0x00, 0x01, 0x00, 0, 0, 0, 0])), /length 32, beyond the 8-byte buffer/);
  assert.throws(() => parseAttributes(Buffer.from([0x02, 0x00, 0x01, 0x00])), /length 2 < 4/);
  // A typed read of a too-short payload names the attribute.
  const short = parseAttributes(new AttributeWriter().u16(4, 1).build());
  assert.throws(() => short.u32(4), /attribute type 4 \(u32\) has 2 bytes, expected 4/);
  // An unpadded last attribute is accepted (the kernel may omit trailing padding).
  assert.equal(parseAttributes(Buffer.from([0x05, 0x00, 0x01, 0x00, 0x7f])).u8(1), 0x7f);
});

test('the builder rejects out-of-range values instead of wrapping them', () => {
  assert.throws(() => new AttributeWriter().u8(1, 256), RangeError);
  assert.throws(() => new AttributeWriter().u16(1, -1), RangeError);
  assert.throws(() => new AttributeWriter().u32(1, 2 ** 32), RangeError);
  assert.throws(() => new AttributeWriter().u32(0x8000, 1), /type 32768 is out of range/);
  assert.throws(() => new AttributeWriter().bytes(1, Buffer.alloc(70000)), /exceeds/);
});

test('messages: header round trip, several per datagram, malformed rejected', () => {
  const a = encodeMessage({ type: 16, flags: 0x605, seq: 7, pid: 0, payload: Buffer.from([1, 2, 3]) });
  const b = encodeMessage({ type: 3, flags: 2, seq: 8, pid: 99, payload: Buffer.alloc(4) });
  assert.equal(a.length, 20, 'padded to 4 bytes');
  const msgs = decodeMessages(Buffer.concat([a, b]));
  assert.deepEqual(msgs.map((m) => [m.type, m.flags, m.seq, m.pid, m.payload.length]), [[16, 0x605, 7, 0, 3], [3, 2, 8, 99, 4]]);
  assert.throws(() => decodeMessages(Buffer.alloc(10)), (e: unknown) => e instanceof MalformedMessageError);
  const lying = Buffer.from(a);
  lying.writeUInt32LE(100, 0);
  assert.throws(() => decodeMessages(lying), /claims length 100/);
});

test('NLMSG_ERROR: errno, request header, extended-ack message', () => {
  const ext = new AttributeWriter().string(1, 'Unknown device type').u32(2, 36).build();
  const payload = Buffer.alloc(4 + 16);
  payload.writeInt32LE(-95, 0);
  payload.writeUInt32LE(40, 4);
  payload.writeUInt16LE(16, 8);
  payload.writeUInt32LE(1234, 12);
  const msg = { type: NLMSG_ERROR, flags: NLM_F_CAPPED | NLM_F_ACK_TLVS, seq: 1234, pid: 1, payload: Buffer.concat([payload, ext]) };
  const e = decodeErrorPayload(msg);
  assert.equal(e.errno, 95);
  assert.equal(e.request.type, 16);
  assert.equal(e.request.seq, 1234);
  assert.equal(e.message, 'Unknown device type');
  assert.equal(e.offset, 36);
  const err = new NetlinkError(e.errno, 'create link "x"', e.message);
  assert.equal(err.message, 'EOPNOTSUPP: create link "x" (kernel: Unknown device type)');
  assert.equal(errnoName(17), 'EEXIST');
  assert.equal(errnoName(4242), 'errno 4242');
  assert.throws(() => decodeErrorPayload({ ...msg, payload: Buffer.alloc(8) }), /shorter than struct nlmsgerr/);
});

const attrArb = fc.record({
  type: fc.integer({ min: 0, max: 0x3fff }),
  value: fc.uint8Array({ maxLength: 64 }),
});

test('fuzz: any attribute list round-trips exactly', () => {
  fc.assert(fc.property(fc.array(attrArb, { maxLength: 20 }), (attrs) => {
    const w = new AttributeWriter();
    for (const a of attrs) w.bytes(a.type, a.value);
    const buf = w.build();
    assert.equal(buf.length % 4, 0);
    const parsed = parseAttributes(buf);
    assert.deepEqual(parsed.list.map((p) => [p.type, Buffer.from(p.value).toString('hex')]),
      attrs.map((a) => [a.type, Buffer.from(a.value).toString('hex')]));
  }));
});

test('fuzz: arbitrary bytes either parse or throw a Malformed error, never anything else', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 128 }), (bytes) => {
    try {
      const a = parseAttributes(bytes);
      for (const x of a.list) {
        try { parseAttributes(x.value); } catch (e) { assert.ok(e instanceof MalformedAttributeError); }
      }
    } catch (e) {
      assert.ok(e instanceof MalformedAttributeError, String(e));
    }
    try {
      decodeMessages(Buffer.from(bytes));
    } catch (e) {
      assert.ok(e instanceof MalformedMessageError, String(e));
    }
  }), { numRuns: 2000 });
});
