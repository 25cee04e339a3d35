// HSalsa20 (NaCl crypto_core_hsalsa20), which libsodium's bindings do not expose.
// NaCl's box.Precompute is HSalsa20(X25519 shared secret, 16 zero bytes), spec §3.1.

const SIGMA = Uint8Array.from(Buffer.from('expand 32-byte k', 'ascii'));

function load32(b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;
}

function rotl(v: number, n: number): number {
  return ((v << n) | (v >>> (32 - n))) >>> 0;
}

/** 32-byte HSalsa20 output for a 32-byte key and 16-byte input. */
export function hsalsa20(key: Uint8Array, input: Uint8Array, constant: Uint8Array = SIGMA): Uint8Array {
  if (key.length !== 32 || input.length !== 16 || constant.length !== 16) {
    throw new RangeError('hsalsa20: key must be 32 bytes, input and constant 16 bytes');
  }
  const x = new Uint32Array(16);
  x[0] = load32(constant, 0); x[5] = load32(constant, 4); x[10] = load32(constant, 8); x[15] = load32(constant, 12);
  for (let i = 0; i < 4; i++) { x[1 + i] = load32(key, i * 4); x[11 + i] = load32(key, 16 + i * 4); }
  for (let i = 0; i < 4; i++) x[6 + i] = load32(input, i * 4);
  const qr = (a: number, b: number, c: number, d: number): void => {
    x[b] = x[b]! ^ rotl((x[a]! + x[d]!) >>> 0, 7);
    x[c] = x[c]! ^ rotl((x[b]! + x[a]!) >>> 0, 9);
    x[d] = x[d]! ^ rotl((x[c]! + x[b]!) >>> 0, 13);
    x[a] = x[a]! ^ rotl((x[d]! + x[c]!) >>> 0, 18);
  };
  for (let i = 0; i < 20; i += 2) {
    qr(0, 4, 8, 12); qr(5, 9, 13, 1); qr(10, 14, 2, 6); qr(15, 3, 7, 11);
    qr(0, 1, 2, 3); qr(5, 6, 7, 4); qr(10, 11, 8, 9); qr(15, 12, 13, 14);
  }
  const out = new Uint8Array(32);
  const dv = new DataView(out.buffer);
  [0, 5, 10, 15, 6, 7, 8, 9].forEach((w, i) => dv.setUint32(i * 4, x[w]!, true));
  return out;
}
