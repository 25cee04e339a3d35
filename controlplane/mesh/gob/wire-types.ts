// Gob's own type-definition structures (spec §1.8.6): what a `-id` message carries.
// The encoder writes them with the ordinary struct encoding; the decoder reads
// them with the ordinary struct decoding, using the fixed bootstrap ids below.
import type { GobType } from './types.js';
import { GobTypeId } from './types.js';

const str: GobType = { kind: 'string' };
const int: GobType = { kind: 'int' };

export const commonTypeT: GobType = {
  kind: 'struct', name: 'CommonType', fields: [{ name: 'Name', type: str }, { name: 'Id', type: int }],
};
const arrayTypeT: GobType = {
  kind: 'struct', name: 'arrayType',
  fields: [{ name: 'CommonType', type: commonTypeT }, { name: 'Elem', type: int }, { name: 'Len', type: int }],
};
const sliceTypeT: GobType = {
  kind: 'struct', name: 'sliceType', fields: [{ name: 'CommonType', type: commonTypeT }, { name: 'Elem', type: int }],
};
const fieldTypeT: GobType = {
  kind: 'struct', name: 'fieldType', fields: [{ name: 'Name', type: str }, { name: 'Id', type: int }],
};
const structTypeT: GobType = {
  kind: 'struct', name: 'structType',
  fields: [{ name: 'CommonType', type: commonTypeT }, { name: 'Field', type: { kind: 'slice', elem: fieldTypeT } }],
};
const mapTypeT: GobType = {
  kind: 'struct', name: 'mapType',
  fields: [{ name: 'CommonType', type: commonTypeT }, { name: 'Key', type: int }, { name: 'Elem', type: int }],
};
const marshalerTypeT: GobType = {
  kind: 'struct', name: 'gobEncoderType', fields: [{ name: 'CommonType', type: commonTypeT }],
};

/** The `wireType` struct: exactly one field is present per definition. */
export const wireTypeT: GobType = {
  kind: 'struct', name: 'wireType',
  fields: [
    { name: 'ArrayT', type: arrayTypeT },
    { name: 'SliceT', type: sliceTypeT },
    { name: 'StructT', type: structTypeT },
    { name: 'MapT', type: mapTypeT },
    { name: 'GobEncoderT', type: marshalerTypeT },
    { name: 'BinaryMarshalerT', type: marshalerTypeT },
    { name: 'TextMarshalerT', type: marshalerTypeT },
  ],
};

/** A type as the decoder knows it: by wire id, resolved lazily (definitions may refer forward). */
export type WireDef =
  | { kind: 'builtin'; type: 'bool' | 'int' | 'uint' | 'float' | 'bytes' | 'string' }
  | { kind: 'struct'; name: string; fields: { name: string; id: number }[] }
  | { kind: 'slice'; name: string; elem: number }
  | { kind: 'array'; name: string; elem: number; len: number }
  | { kind: 'map'; name: string; key: number; elem: number }
  /** GobEncoder / BinaryMarshaler / TextMarshaler: an opaque byte string. */
  | { kind: 'opaque'; name: string };

export const builtinDefs: ReadonlyMap<number, WireDef> = new Map<number, WireDef>([
  [GobTypeId.bool, { kind: 'builtin', type: 'bool' }],
  [GobTypeId.int, { kind: 'builtin', type: 'int' }],
  [GobTypeId.uint, { kind: 'builtin', type: 'uint' }],
  [GobTypeId.float, { kind: 'builtin', type: 'float' }],
  [GobTypeId.bytes, { kind: 'builtin', type: 'bytes' }],
  [GobTypeId.string, { kind: 'builtin', type: 'string' }],
]);

/** Internal id for the marshaler sub-struct (never on the wire, never reachable from user ids). */
const marshalerTypeId = 24;

/** Bootstrap definitions of gob's own structures, at the ids Go reserves for them. */
export const bootstrapDefs: ReadonlyMap<number, WireDef> = new Map<number, WireDef>([
  [GobTypeId.wireType, {
    kind: 'struct', name: 'wireType', fields: [
      { name: 'ArrayT', id: GobTypeId.arrayType }, { name: 'SliceT', id: GobTypeId.sliceType },
      { name: 'StructT', id: GobTypeId.structType }, { name: 'MapT', id: GobTypeId.mapType },
      { name: 'GobEncoderT', id: marshalerTypeId }, { name: 'BinaryMarshalerT', id: marshalerTypeId },
      { name: 'TextMarshalerT', id: marshalerTypeId },
    ],
  }],
  [GobTypeId.arrayType, {
    kind: 'struct', name: 'arrayType', fields: [
      { name: 'CommonType', id: GobTypeId.commonType }, { name: 'Elem', id: GobTypeId.int }, { name: 'Len', id: GobTypeId.int },
    ],
  }],
  [GobTypeId.commonType, {
    kind: 'struct', name: 'CommonType', fields: [{ name: 'Name', id: GobTypeId.string }, { name: 'Id', id: GobTypeId.int }],
  }],
  [GobTypeId.sliceType, {
    kind: 'struct', name: 'sliceType', fields: [{ name: 'CommonType', id: GobTypeId.commonType }, { name: 'Elem', id: GobTypeId.int }],
  }],
  [GobTypeId.structType, {
    kind: 'struct', name: 'structType', fields: [{ name: 'CommonType', id: GobTypeId.commonType }, { name: 'Field', id: 22 }],
  }],
  [GobTypeId.fieldType, {
    kind: 'struct', name: 'fieldType', fields: [{ name: 'Name', id: GobTypeId.string }, { name: 'Id', id: GobTypeId.int }],
  }],
  [22, { kind: 'slice', name: '', elem: GobTypeId.fieldType }],
  [GobTypeId.mapType, {
    kind: 'struct', name: 'mapType', fields: [
      { name: 'CommonType', id: GobTypeId.commonType }, { name: 'Key', id: GobTypeId.int }, { name: 'Elem', id: GobTypeId.int },
    ],
  }],
  [marshalerTypeId, { kind: 'struct', name: 'gobEncoderType', fields: [{ name: 'CommonType', id: GobTypeId.commonType }] }],
]);
