import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GobEncoder, GobDecoder, encodeGobStream, decodeGobStream, GobDecodeError, GobEncodeError,
  type GobType, type GobValue,
} from '../../controlplane/mesh/gob/index.js';
import { ByteReader, ByteWriter } from '../../controlplane/mesh/gob/primitives.js';
import { TOPOLOGY_EXAMPLE, specBytes, toHex } from './wire-helpers.js';

const featuresT: GobType = { kind: 'map', key: { kind: 'string' }, elem: { kind: 'string' } };

const peerSummaryT: GobType = {
  kind: 'struct', name: 'peerSummary', fields: [
    { name: 'NameByte', type: { kind: 'bytes' } }, { name: 'NickName', type: { kind: 'string' } },
    { name: 'UID', type: { kind: 'uint' } }, { name: 'Version', type: { kind: 'uint' } },
    { name: 'ShortID', type: { kind: 'uint' } }, { name: 'HasShortID', type: { kind: 'bool' } },
  ],
};
const connectionSummaryT: GobType = {
  kind: 'struct', name: 'connectionSummary', fields: [
    { name: 'NameByte', type: { kind: 'bytes' } }, { name: 'RemoteTCPAddr', type: { kind: 'string' } },
    { name: 'Outbound', type: { kind: 'bool' } }, { name: 'Established', type: { kind: 'bool' } },
  ],
};
const connectionListT: GobType = { kind: 'slice', elem: connectionSummaryT };

test('uint and int primitives match spec §1.8.1 and §1.8.2 examples', () => {
  const cases: [bigint, string, 'uint' | 'int'][] = [
    [7n, '07', 'uint'], [128n, 'ff 80', 'uint'], [1234n, 'fe 04 d2', 'uint'],
    [0x0a0000000001n, 'fa 0a 00 00 00 00 01', 'uint'],
    [0n, '00', 'int'], [65n, 'ff 82', 'int'], [-65n, 'ff 81', 'int'], [-66n, 'ff 83', 'int'],
    [1700000000n, 'fc ca a7 e2 00', 'int'],
  ];
  for (const [v, hex, kind] of cases) {
    const w = new ByteWriter();
    if (kind === 'uint') w.uint(v); else w.int(v);
    assert.equal(toHex(w.toBytes()), hex, `${kind} ${v}`);
  }
});

test('uint and int read back exactly at every byte length and at the 32-, 53- and 64-bit edges', () => {
  const uints: bigint[] = [];
  for (let bits = 0n; bits <= 64n; bits++) {
    for (const v of [(1n << bits) - 1n, 1n << bits, (1n << bits) + 1n]) if (v >= 0n && v < 1n << 64n) uints.push(v);
  }
  uints.push(0xfedcba9876543210n, 0x0123456789abcdefn, (1n << 53n) - 1n, 0xffffffffn * 0x100000000n);
  const roundTrip = (kind: 'uint' | 'int', v: bigint): void => {
    const w = new ByteWriter();
    w[kind](v);
    const r = new ByteReader(w.toBytes());
    assert.equal(r[kind](), v, `${kind} ${v}`);
    assert.equal(r.remaining, 0, `${kind} ${v}: bytes left over`);
  };
  for (const v of uints) roundTrip('uint', v);
  for (const v of uints.filter((u) => u < 1n << 63n)) for (const i of [v, -v, -v - 1n]) roundTrip('int', i);
});

test('features map encodes exactly as spec §1.8.8', () => {
  const bytes = encodeGobStream([{ type: featuresT, value: new Map([['Name', '0a:00:00:00:00:01']]) }]);
  const expected = specBytes(`
    0e ff 81 04 01 02 ff 82 00 01 0c 01 0c 00 00
    1b ff 82 00 01 04 "Name" 11 "0a:00:00:00:00:01"`);
  assert.equal(toHex(bytes), toHex(expected));
  assert.deepEqual(decodeGobStream(bytes), [new Map([['Name', '0a:00:00:00:00:01']])]);
});

test('captured features prefix (spec §1.8.8) decodes: 7 entries follow the definition', () => {
  const enc = new GobEncoder();
  const m = new Map<GobValue, GobValue>([
    ['ShortID', '954'], ['UID', '9243940125061546774'], ['ConnID', '11104099411011336216'], ['Trusted', 'false'],
    ['PeerNameFlavour', 'mac'], ['Name', '0a:00:00:00:00:01'], ['NickName', 'alpha'],
  ]);
  enc.encode(featuresT, m);
  const bytes = enc.takeBytes();
  assert.equal(toHex(bytes.subarray(0, 29)), '0e ff 81 04 01 02 ff 82 00 01 0c 01 0c 00 00 ff 8c ff 82 00 07 07 53 68 6f 72 74 49 44');
  assert.equal(bytes.length, 157, 'spec §1.9: the features message is 157 bytes');
  assert.deepEqual(decodeGobStream(bytes), [m]);
});

const alpha = {
  NameByte: Uint8Array.from([0x0a, 0, 0, 0, 0, 1]), NickName: 'alpha', UID: 1234n, Version: 7n, ShortID: 0x123n, HasShortID: true,
};
const alphaConns = [{ NameByte: Uint8Array.from([0x0a, 0, 0, 0, 0, 2]), RemoteTCPAddr: '192.168.1.2:6783', Outbound: true, Established: true }];
const beta = {
  NameByte: Uint8Array.from([0x0a, 0, 0, 0, 0, 2]), NickName: 'beta', UID: 5678n, Version: 3n, ShortID: 0x456n, HasShortID: true,
};

test('topology example encodes byte for byte (spec §4.5, Go id order, first id 66)', () => {
  const bytes = encodeGobStream([
    { type: peerSummaryT, value: alpha }, { type: connectionListT, value: alphaConns },
    { type: peerSummaryT, value: beta }, { type: connectionListT, value: [] },
  ], { firstTypeId: 66 });
  assert.equal(toHex(bytes), toHex(TOPOLOGY_EXAMPLE));
});

test('topology example decodes to structs keyed by field name', () => {
  const values = decodeGobStream(TOPOLOGY_EXAMPLE);
  assert.deepEqual(values, [alpha, alphaConns, beta, []]);
});

test('struct fields: zero omitted, nested struct always sent, unknown fields tolerated', () => {
  const inner: GobType = { kind: 'struct', name: 'Inner', fields: [{ name: 'A', type: { kind: 'uint' } }] };
  const outer: GobType = {
    kind: 'struct', name: 'Outer', fields: [
      { name: 'Zero', type: { kind: 'int' } }, { name: 'In', type: inner }, { name: 'S', type: { kind: 'slice', name: '[]int', elem: { kind: 'int' } } },
      { name: 'F', type: { kind: 'float' } }, { name: 'M', type: { kind: 'map', key: { kind: 'uint' }, elem: { kind: 'string' } } },
    ],
  };
  const bytes = encodeGobStream([{ type: outer, value: { Zero: 0n, In: {}, S: [-3n, 5n], F: 1.5, M: new Map([[7n, 'x']]) } }]);
  const [v] = decodeGobStream(bytes);
  assert.deepEqual(v, { In: {}, S: [-3n, 5n], F: 1.5, M: new Map([[7n, 'x']]) });
});

test('type definitions are sent once per stream, again in a new stream', () => {
  const enc = new GobEncoder();
  enc.encode(featuresT, new Map([['a', 'b']]));
  const first = enc.takeBytes();
  enc.encode(featuresT, new Map([['c', 'd']]));
  const second = enc.takeBytes();
  assert.ok(first.length > second.length);
  assert.equal(second[1], 0xff); assert.equal(second[2], 0x82); // value message for id 65, no definition
  const dec = new GobDecoder();
  assert.deepEqual(dec.push(first), [new Map([['a', 'b']])]);
  assert.deepEqual(dec.push(second), [new Map([['c', 'd']])]);
});

test('decoder accepts the stream one byte at a time', () => {
  const dec = new GobDecoder();
  const out: GobValue[] = [];
  for (const b of TOPOLOGY_EXAMPLE) out.push(...dec.push(Uint8Array.of(b)));
  dec.end();
  assert.equal(out.length, 4);
  assert.deepEqual(out[0], alpha);
});

test('decoder limits: truncation, oversized message, forged lengths, nesting', () => {
  assert.throws(() => decodeGobStream(TOPOLOGY_EXAMPLE.subarray(0, 50)), GobDecodeError);
  assert.throws(() => decodeGobStream(specBytes('fc 7f ff ff ff')), /exceeds the 10485760-byte limit/);
  // a []byte value claiming 2^40 bytes
  assert.throws(() => decodeGobStream(specBytes('09 0a 00 fb 01 00 00 00 00 00 00')), /byte string length/);
  // a slice of slices ... nested 100 deep, against a limit of 10
  const deep: GobType[] = [{ kind: 'uint' }];
  for (let i = 0; i < 20; i++) deep.push({ kind: 'slice', name: `s${i}`, elem: deep[i]! });
  let v: GobValue = [];
  for (let i = 0; i < 19; i++) v = [v];
  const bytes = encodeGobStream([{ type: deep[20]!, value: v }]);
  assert.throws(() => decodeGobStream(bytes, { maxDepth: 10 }), /nested deeper than 10/);
  assert.doesNotThrow(() => decodeGobStream(bytes));
  // undefined type id, reserved definition id, extra data
  assert.throws(() => decodeGobStream(specBytes('03 ff 82 00')), /not defined/);
  assert.throws(() => decodeGobStream(specBytes('03 21 00 00')), /reserved/);
  assert.throws(() => decodeGobStream(specBytes('04 0c 00 00 00')), /extra data/);
});

test('encoder rejects values that do not match the type', () => {
  assert.throws(() => encodeGobStream([{ type: { kind: 'uint' }, value: 'x' }]), GobEncodeError);
  assert.throws(() => encodeGobStream([{ type: { kind: 'uint' }, value: -1n }]), GobEncodeError);
  assert.throws(() => encodeGobStream([{ type: peerSummaryT, value: [] }]), GobEncodeError);
});

const itemT: GobType = { kind: 'struct', name: 'item', fields: [{ name: 'N', type: { kind: 'uint' } }, { name: 'S', type: { kind: 'string' } }] };
const listT: GobType = { kind: 'slice', name: 'items', elem: itemT };
const holderT: GobType = {
  kind: 'struct', name: 'holder', fields: [
    { name: 'Stamp', type: { kind: 'int' } }, { name: 'Items', type: listT }, { name: 'After', type: { kind: 'string' } },
  ],
};

test('a struct field is encoded from the property its key names', () => {
  const renamedT: GobType = { kind: 'struct', name: 'item', fields: [{ name: 'N', key: 'count', type: { kind: 'uint' } }, { name: 'S', key: 'label', type: { kind: 'string' } }] };
  const withKeys = encodeGobStream([{ type: renamedT, value: { count: 7, label: 'x', N: 1n } as GobValue }]);
  assert.deepEqual(withKeys, encodeGobStream([{ type: itemT, value: { N: 7n, S: 'x' } }]));
  assert.deepEqual(decodeGobStream(withKeys), [{ N: 7n, S: 'x' }]);
});

test('a slice visitor is handed each element as it is decoded, after the fields before it', () => {
  const items = Array.from({ length: 5 }, (_, i) => ({ N: BigInt(i + 1), S: `s${i}` }));
  const bytes = encodeGobStream([{ type: holderT, value: { Stamp: 42n, Items: items, After: 'end' } }]);
  const seen: Array<{ element: GobValue; stamp: GobValue | undefined; after: GobValue | undefined }> = [];
  const values = decodeGobStream(bytes, {
    sliceVisitor: { typeName: 'items', visit: (element, enclosing) => seen.push({ element, stamp: enclosing.Stamp, after: enclosing.After }) },
  });
  assert.deepEqual(seen.map((s) => s.element), items);
  assert.ok(seen.every((s) => s.stamp === 42n && s.after === undefined), 'the fields before the slice are decoded, those after it not yet');
  assert.deepEqual(values, [{ Stamp: 42n, Items: [], After: 'end' }]);
  // Another name: decoded whole, as without a visitor.
  assert.deepEqual(decodeGobStream(bytes, { sliceVisitor: { typeName: 'other', visit: () => assert.fail('not this slice') } }),
    [{ Stamp: 42n, Items: items, After: 'end' }]);
});

test('a slice visitor stops the decode with its own error, and the stream limits still hold', () => {
  const items = Array.from({ length: 5 }, (_, i) => ({ N: BigInt(i + 1) }));
  const bytes = encodeGobStream([{ type: holderT, value: { Stamp: 1n, Items: items } }]);
  class Stop extends Error {}
  let visited = 0;
  assert.throws(() => decodeGobStream(bytes, {
    sliceVisitor: { typeName: 'items', visit: () => { if (++visited === 3) throw new Stop('enough'); } },
  }), Stop);
  assert.equal(visited, 3, 'no element decoded after the one the visitor refused');
  assert.throws(() => decodeGobStream(bytes, { maxValues: 4, sliceVisitor: { typeName: 'items', visit: () => {} } }),
    (err: unknown) => err instanceof GobDecodeError && /more than 4 values/.test(err.message));
});

test('a slice visitor sees only the top-level struct\'s fields: the same slice type deeper down decodes whole', () => {
  const wrapperT: GobType = { kind: 'struct', name: 'wrapper', fields: [{ name: 'Inner', type: holderT }] };
  const items = [{ N: 1n, S: 'a' }, { N: 2n, S: 'b' }];
  const bytes = encodeGobStream([{ type: wrapperT, value: { Inner: { Stamp: 5n, Items: items } } }]);
  assert.deepEqual(decodeGobStream(bytes, { sliceVisitor: { typeName: 'items', visit: () => assert.fail('nested slice visited') } }),
    [{ Inner: { Stamp: 5n, Items: items } }]);
});
