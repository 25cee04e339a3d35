// Typed accessors for decoded gob values. A field absent from a decoded struct
// means "zero" (gob never sends zero fields); a field of the wrong kind means
// the peer sent a type we cannot accept, reported as a GobDecodeError.
import type { GobValue, GobStruct, GobMap } from './types.js';
import { GobDecodeError } from './errors.js';

function kindOf(v: GobValue): string {
  if (Array.isArray(v)) return 'slice';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof Map) return 'map';
  if (typeof v === 'bigint') return 'integer';
  if (typeof v === 'object') return 'struct';
  return typeof v;
}

/** The value as a struct, or a GobDecodeError naming `what`. */
export function gobStruct(v: GobValue | undefined, what: string): GobStruct {
  if (v === undefined) return {};
  if (typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Map)) return v;
  throw new GobDecodeError(`${what}: expected a struct, got ${kindOf(v)}`);
}

export function gobUint(v: GobValue | undefined, what: string): bigint {
  if (v === undefined) return 0n;
  if (typeof v === 'bigint' && v >= 0n) return v;
  throw new GobDecodeError(`${what}: expected an unsigned integer, got ${kindOf(v)}`);
}

export function gobInt(v: GobValue | undefined, what: string): bigint {
  if (v === undefined) return 0n;
  if (typeof v === 'bigint') return v;
  throw new GobDecodeError(`${what}: expected an integer, got ${kindOf(v)}`);
}

export function gobString(v: GobValue | undefined, what: string): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  throw new GobDecodeError(`${what}: expected a string, got ${kindOf(v)}`);
}

export function gobBool(v: GobValue | undefined, what: string): boolean {
  if (v === undefined) return false;
  if (typeof v === 'boolean') return v;
  throw new GobDecodeError(`${what}: expected a bool, got ${kindOf(v)}`);
}

export function gobBytes(v: GobValue | undefined, what: string): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  if (v instanceof Uint8Array) return v;
  throw new GobDecodeError(`${what}: expected a byte string, got ${kindOf(v)}`);
}

export function gobSlice(v: GobValue | undefined, what: string): GobValue[] {
  if (v === undefined) return [];
  if (Array.isArray(v)) return v;
  throw new GobDecodeError(`${what}: expected a slice, got ${kindOf(v)}`);
}

export function gobMap(v: GobValue | undefined, what: string): GobMap {
  if (v === undefined) return new Map();
  if (v instanceof Map) return v;
  throw new GobDecodeError(`${what}: expected a map, got ${kindOf(v)}`);
}
