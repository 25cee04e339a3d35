// Type descriptors and values for the Go gob subset on Weave's wire (spec §1.8).
// The codec (encoder.ts / decoder.ts, exported from index.ts) works from these.

/** A gob wire type, described the way the Go side declares it (spec §1.8.9). */
export type GobType =
  | { kind: 'uint' }
  | { kind: 'int' }
  | { kind: 'bool' }
  | { kind: 'string' }
  | { kind: 'bytes' }
  | { kind: 'float' }
  /**
   * Struct: fields in definition order (that order is the field number). The
   * encoder reads a field from the value's property `key`, or `name` when it
   * has none: a record kept under its own property names is then encoded as
   * it is, without a renamed copy of it per message.
   */
  | { kind: 'struct'; name: string; fields: ReadonlyArray<{ name: string; type: GobType; key?: string }> }
  /** Slice: `name` only for named slice types (e.g. `entries`); unnamed otherwise. */
  | { kind: 'slice'; name?: string; elem: GobType }
  | { kind: 'map'; name?: string; key: GobType; elem: GobType };

/**
 * A decoded or to-be-encoded value:
 * uint/int -> bigint, bool -> boolean, string -> string, bytes -> Uint8Array,
 * float -> number, slice -> GobValue[], map -> Map, struct -> GobStruct.
 * Struct fields that are zero are not sent (gob rule) and decode as absent.
 */
export type GobValue = bigint | boolean | string | number | Uint8Array | GobValue[] | GobMap | GobStruct;
export type GobMap = Map<GobValue, GobValue>;
export interface GobStruct { [field: string]: GobValue | undefined }

/** Predefined gob type ids (spec §1.8.6). */
export const GobTypeId = {
  bool: 1, int: 2, uint: 3, float: 4, bytes: 5, string: 6,
  complex: 7, interface: 8, wireType: 16, arrayType: 17, commonType: 18,
  sliceType: 19, structType: 20, fieldType: 21, mapType: 23,
  firstUserId: 65,
} as const;
