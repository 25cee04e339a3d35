// XFRM (linux/xfrm.h) struct encodings against byte layouts written out by
// hand from the uapi header, and decoding of dump replies captured from a
// real kernel (Linux 6.x, x86_64).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MalformedXfrmError,
  XFRM_INF,
  XFRM_USERSA_INFO_LEN,
  XFRMA_ALG_AEAD,
  XFRMA_MARK,
  XFRMA_REPLAY_ESN_VAL,
  XFRMA_TMPL,
  decodePolicyPayload,
  decodeSelector,
  decodeStatePayload,
  encodeAlgoAead,
  encodeAllocSpiPayload,
  encodeFlushSaPayload,
  encodeMark,
  encodePolicyIdPayload,
  encodePolicyPayload,
  encodeReplayEsn,
  encodeSelector,
  encodeStateIdPayload,
  encodeStatePayload,
  encodeUsersaInfo,
  encodeUserTmpl,
  encodeUserpolicyInfo,
} from '../../dataplane/netlink/xfrm-codec.js';
import { parseAttributes } from '../../dataplane/netlink/attributes.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/[\s|]/g, ''), 'hex');
const Z = (n: number): string => '00'.repeat(n);
const INF = 'ff'.repeat(8);

// A NEWSA dump part for a larval SA from XFRM_MSG_ALLOCSPI (src 172.31.9.2, dst 172.31.9.1,
// SPI 0x4000, reqid 0x20000), followed by XFRMA_REPLAY_VAL, as a 6.x kernel sent it.
const KERNEL_SA =
  'ac1f0901000000000000000000000000ac1f0902000000000000000000000000000000000000000000002020000000000000000000000000' +
  'ac1f09010000000000000000000000000000400032000000ac1f0902000000000000000000000000ffffffffffffffffffffffffffffffff' +
  'ffffffffffffffffffffffffffffffff00000000000000001e00000000000000000000000000000000000000000000000000000000000000' +
  '00000000000000004470046b0000000000000000000000000000000000000000000000000000000000000200020000000000000000000000' +
  '10000a00000000000000000000000000';
// A NEWPOLICY dump part: dir out, 172.31.9.1/32 -> 172.31.9.2/32 udp, one ESP template with
// SPI 0x1234 and reqid 0x20000, mark 0x20000/0x20000, and XFRMA_POLICY_TYPE.
const KERNEL_POLICY =
  'ac1f0902000000000000000000000000ac1f0901000000000000000000000000000000000000000002002020110000000000000000000000' +
  'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff000000000000000000000000000000000000000000000000' +
  '0000000000000000000000000000000000000000000000004470046b00000000000000000000000000000000010000000100000000000000' +
  '44000500ac1f0902000000000000000000000000000012343200000002000000ac1f09010000000000000000000000000000020000000000' +
  'ffffffffffffffffffffffff0a00100000000000000000000c0015000000020000000200';

test('xfrm_selector: 56 bytes, addresses in the first 4 bytes of each 16, ports big-endian', () => {
  const sel = encodeSelector({ family: 2, src: '172.31.9.1', srcPrefixLen: 32, dst: '172.31.9.2', dstPrefixLen: 32, proto: 17, dport: 6784, dportMask: 0xffff });
  const expected = hex(
    'ac1f0902' + Z(12) + // daddr
      'ac1f0901' + Z(12) + // saddr
      '1a80 ffff 0000 0000' + // dport, dport_mask, sport, sport_mask (__be16)
      '0200 20 20' + // family (host order), prefixlen_d, prefixlen_s
      '11 000000' + // proto, 3 bytes padding before int ifindex
      '00000000 00000000', // ifindex, user
  );
  assert.deepEqual(sel, expected);
  assert.deepEqual(decodeSelector(sel), {
    dst: '172.31.9.2', src: '172.31.9.1', dport: 6784, dportMask: 0xffff, sport: 0, sportMask: 0,
    family: 2, dstPrefixLen: 32, srcPrefixLen: 32, proto: 17, ifindex: 0, user: 0,
  });
});

test('xfrm_usersa_info: the spec §7.4 outbound SA, byte by byte', () => {
  const info = encodeUsersaInfo({ src: '10.0.0.1', dst: '10.0.0.2', spi: 0x12345678, reqid: 0x20000, mode: 'transport', esn: { replayWindow: 256 } });
  const expected = hex(
    Z(56) + // sel: all zero (AF_UNSPEC: not matched)
      '0a000002' + Z(12) + '12345678' + '32' + Z(3) + // id: daddr, spi (__be32), proto ESP, pad
      '0a000001' + Z(12) + // saddr
      INF + INF + INF + INF + Z(32) + // lft: byte/packet limits infinite, no expiry times
      Z(32) + // curlft
      Z(12) + // stats
      Z(4) + // seq
      '00000200' + // reqid
      '0200' + '00' + '00' + '80' + Z(7), // family, mode transport, replay_window 0, flags ESN, pad to 224
  );
  assert.equal(info.length, XFRM_USERSA_INFO_LEN);
  assert.deepEqual(info, expected);
});

test('xfrm_algo_aead, xfrm_replay_state_esn and xfrm_mark layouts', () => {
  const key = Buffer.from(Array.from({ length: 36 }, (_, i) => i));
  const aead = encodeAlgoAead({ name: 'rfc4106(gcm(aes))', key, icvBits: 128 });
  assert.deepEqual(aead, Buffer.concat([hex(Buffer.from('rfc4106(gcm(aes))').toString('hex') + Z(64 - 17) + '20010000' + '80000000'), key]));
  // bmp_len 8, oseq, seq, oseq_hi, seq_hi, replay_window 256, then 8 zero bitmap words
  assert.deepEqual(encodeReplayEsn({ replayWindow: 256 }), hex('08000000' + Z(16) + '00010000' + Z(32)));
  assert.deepEqual(encodeMark({ value: 0x20000, mask: 0x20000 }), hex('00000200 00000200'));
  assert.throws(() => encodeReplayEsn({ replayWindow: 300, bmpLen: 8 }), RangeError);
  assert.throws(() => encodeAlgoAead({ name: 'x'.repeat(64), key, icvBits: 128 }), RangeError);
});

test('xfrm_user_tmpl encodes to the bytes the kernel reports back for it', () => {
  const t = encodeUserTmpl({ src: '172.31.9.1', dst: '172.31.9.2', spi: 0x1234, reqid: 0x20000 });
  const expected = hex(
    'ac1f0902' + Z(12) + '00001234' + '32 000000' + // id {daddr, spi, proto ESP, pad}
      '0200 0000' + 'ac1f0901' + Z(12) + // family, pad, saddr
      '00000200' + '00 00 00 00' + // reqid, mode transport, share, optional, pad
      'ffffffff ffffffff ffffffff', // aalgos, ealgos, calgos
  );
  assert.deepEqual(t, expected);
  const kernel = hex(KERNEL_POLICY);
  assert.deepEqual(t, kernel.subarray(168 + 4, 168 + 4 + 64));
});

test('NEWSA payload: usersa_info then AEAD, ESN and mark attributes, 4-byte aligned', () => {
  const p = encodeStatePayload({
    src: '10.0.0.1', dst: '10.0.0.2', spi: 0x100, esn: { replayWindow: 256, bmpLen: 8 },
    aead: { name: 'rfc4106(gcm(aes))', key: Buffer.alloc(36, 7), icvBits: 128 }, mark: { value: 1, mask: 3 },
  });
  const attrs = parseAttributes(p.subarray(XFRM_USERSA_INFO_LEN));
  assert.deepEqual(attrs.list.map((a) => [a.type, a.value.length]), [[XFRMA_ALG_AEAD, 108], [XFRMA_REPLAY_ESN_VAL, 56], [XFRMA_MARK, 8]]);
  // nla_len 4+108 = 0x70, type 18, starting right after the 224-byte header
  assert.deepEqual(p.subarray(224, 228), hex('7000 1200'));
  // round trip through the decoder
  const back = decodeStatePayload(p);
  assert.equal(back.spi, 0x100);
  assert.equal(back.flags, 128);
  assert.deepEqual(back.aead, { name: 'rfc4106(gcm(aes))', key: Buffer.alloc(36, 7), icvBits: 128 });
  assert.deepEqual(back.esn, { bmpLen: 8, oseq: 0, seq: 0, oseqHi: 0, seqHi: 0, replayWindow: 256 });
  assert.deepEqual(back.mark, { value: 1, mask: 3 });
});

test('id, policy-id, allocspi and flush payloads', () => {
  assert.deepEqual(encodeStateIdPayload({ dst: '10.0.0.2', spi: 0xabcdef01 }), hex('0a000002' + Z(12) + 'abcdef01' + '0200' + '32' + '00'));
  const withSrc = encodeStateIdPayload({ dst: '10.0.0.2', spi: 0x100, src: '10.0.0.1' });
  assert.deepEqual(withSrc.subarray(24), hex('1400 0d00' + '0a000001' + Z(12)));
  const spi = encodeAllocSpiPayload({ src: '10.0.0.1', dst: '10.0.0.2' }, 0x100, 0xffffffff);
  assert.equal(spi.length, 232);
  assert.deepEqual(spi.subarray(224), hex('00010000 ffffffff'));
  assert.throws(() => encodeAllocSpiPayload({ src: '10.0.0.1', dst: '10.0.0.2' }, 5, 4), RangeError);
  const pid = encodePolicyIdPayload({ selector: { family: 2 }, dir: 'out', index: 9, mark: { value: 0x20000, mask: 0x20000 } });
  assert.deepEqual(pid.subarray(56), hex('09000000 01 000000' + '0c00 1500 00000200 00000200'));
  assert.deepEqual(encodeFlushSaPayload(50), hex('32000000'));
});

test('NEWPOLICY payload: userpolicy_info, XFRMA_TMPL, XFRMA_MARK', () => {
  const p = encodePolicyPayload({
    selector: { family: 2, src: '172.31.9.1', srcPrefixLen: 32, dst: '172.31.9.2', dstPrefixLen: 32, proto: 17 },
    dir: 'out',
    mark: { value: 0x20000, mask: 0x20000 },
    templates: [{ src: '172.31.9.1', dst: '172.31.9.2', spi: 0x1234, reqid: 0x20000 }],
  });
  const info = encodeUserpolicyInfo({ selector: { family: 2, src: '172.31.9.1', srcPrefixLen: 32, dst: '172.31.9.2', dstPrefixLen: 32, proto: 17 }, dir: 'out' });
  assert.deepEqual(info.subarray(152), hex('00000000 00000000 01 00 00 00' + Z(4))); // priority, index, dir OUT, action allow, flags, share, pad
  assert.deepEqual(p.subarray(0, 168), info);
  const kernel = hex(KERNEL_POLICY);
  // Same attributes as the kernel reports (it adds XFRMA_POLICY_TYPE between them).
  const mine = parseAttributes(p.subarray(168));
  const theirs = parseAttributes(kernel.subarray(168));
  assert.deepEqual(mine.bytes(XFRMA_TMPL), theirs.bytes(XFRMA_TMPL));
  assert.deepEqual(mine.bytes(XFRMA_MARK), theirs.bytes(XFRMA_MARK));
  // Selector and limits equal the kernel's; curlft and index are the kernel's own.
  assert.deepEqual(p.subarray(0, 120), kernel.subarray(0, 120));
});

test('decodes an SA dump part captured from the kernel', () => {
  const sa = decodeStatePayload(hex(KERNEL_SA));
  assert.equal(sa.src, '172.31.9.2');
  assert.equal(sa.dst, '172.31.9.1');
  assert.equal(sa.spi, 0x4000);
  assert.equal(sa.proto, 50);
  assert.equal(sa.reqid, 0x20000);
  assert.equal(sa.family, 2);
  assert.equal(sa.mode, 'transport');
  assert.equal(sa.lifetime.hardByteLimit, XFRM_INF);
  assert.equal(sa.lifetime.hardAddExpiresSeconds, 30n); // a larval SA expires unless completed
  assert.equal(sa.current.packets, 0n);
  assert.equal(sa.selector.srcPrefixLen, 32);
  assert.equal(sa.aead, undefined);
});

test('decodes a policy dump part captured from the kernel', () => {
  const p = decodePolicyPayload(hex(KERNEL_POLICY));
  assert.equal(p.dir, 'out');
  assert.equal(p.action, 'allow');
  assert.equal(p.index, 1);
  assert.deepEqual(p.mark, { value: 0x20000, mask: 0x20000 });
  assert.equal(p.selector.src, '172.31.9.1');
  assert.equal(p.selector.proto, 17);
  assert.deepEqual(p.templates, [{
    dst: '172.31.9.2', spi: 0x1234, proto: 50, src: '172.31.9.1', reqid: 0x20000, mode: 'transport',
    share: 0, optional: false, aalgos: 0xffffffff, ealgos: 0xffffffff, calgos: 0xffffffff,
  }]);
});

test('malformed replies are rejected with MalformedXfrmError', () => {
  assert.throws(() => decodeStatePayload(Buffer.alloc(100)), MalformedXfrmError);
  assert.throws(() => decodePolicyPayload(Buffer.alloc(167)), MalformedXfrmError);
  // An attribute claiming more bytes than there are.
  assert.throws(() => decodeStatePayload(Buffer.concat([Buffer.alloc(224), hex('ff00 1200')])), MalformedXfrmError);
  // A template attribute that is not a whole number of templates.
  assert.throws(() => decodePolicyPayload(Buffer.concat([Buffer.alloc(168), hex('0800 0500 00000000')])), MalformedXfrmError);
  // An AEAD attribute whose key length exceeds its payload.
  const aead = encodeAlgoAead({ name: 'gcm', key: Buffer.alloc(4), icvBits: 64 });
  aead.writeUInt32LE(1024, 64);
  const msg = Buffer.concat([Buffer.alloc(224), hex((4 + aead.length).toString(16).padStart(2, '0') + '00 1200'), aead]);
  assert.throws(() => decodeStatePayload(msg), MalformedXfrmError);
  assert.throws(() => encodeSelector({ src: '300.1.1.1' }), RangeError);
  assert.throws(() => encodeUsersaInfo({ src: '1.1.1.1', dst: '1.1.1.2', spi: 2 ** 32 }), RangeError);
});

test('fuzz: arbitrary bytes decode or fail with MalformedXfrmError, never anything else', () => {
  const check = (decode: (b: Buffer) => unknown, header: number) =>
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), fc.boolean(), (bytes, pad) => {
        const b = pad ? Buffer.concat([Buffer.alloc(header), Buffer.from(bytes)]) : Buffer.from(bytes);
        try {
          decode(b);
        } catch (e) {
          assert.ok(e instanceof MalformedXfrmError, `unexpected ${(e as Error).name}: ${(e as Error).message}`);
        }
      }),
      { numRuns: 400 },
    );
  check(decodeStatePayload, 224);
  check(decodePolicyPayload, 168);
});
