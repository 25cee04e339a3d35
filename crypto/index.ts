// Cryptography for the control connection: key agreement and secretbox framing (spec §3).
export * from './session-key.js';
export * from './control-framing.js';
export { hsalsa20 } from './hsalsa20.js';
export * from './ipsec-keys.js';
