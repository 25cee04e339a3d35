// libsodium (sodium-native), loaded on first use rather than at startup: a
// router without a password never calls it, and the addon's loader is among
// the larger module costs on the way to a listening API.
import { createRequire } from 'node:module';
import type sodiumNative from 'sodium-native';

export type Sodium = typeof sodiumNative;

let loaded: Sodium | undefined;

export function sodium(): Sodium {
  loaded ??= createRequire(import.meta.url)('sodium-native') as Sodium;
  return loaded;
}
