// Types for the parts of sodium-native (libsodium bindings) this project uses.
declare module 'sodium-native' {
  type Buf = Uint8Array;
  const sodium: {
    crypto_box_PUBLICKEYBYTES: number;
    crypto_box_SECRETKEYBYTES: number;
    crypto_box_NONCEBYTES: number;
    crypto_box_MACBYTES: number;
    crypto_box_keypair(publicKey: Buf, secretKey: Buf): void;
    crypto_box_easy(c: Buf, m: Buf, n: Buf, pk: Buf, sk: Buf): void;
    crypto_scalarmult_BYTES: number;
    crypto_scalarmult_SCALARBYTES: number;
    crypto_scalarmult(q: Buf, n: Buf, p: Buf): void;
    crypto_scalarmult_base(q: Buf, n: Buf): void;
    crypto_hash_sha256_BYTES: number;
    crypto_hash_sha256(out: Buf, input: Buf): void;
    crypto_secretbox_KEYBYTES: number;
    crypto_secretbox_NONCEBYTES: number;
    crypto_secretbox_MACBYTES: number;
    crypto_secretbox_easy(c: Buf, m: Buf, n: Buf, k: Buf): void;
    crypto_secretbox_open_easy(m: Buf, c: Buf, n: Buf, k: Buf): boolean;
    crypto_stream_salsa20_xor(c: Buf, m: Buf, n: Buf, k: Buf): void;
    randombytes_buf(buf: Buf): void;
    sodium_memzero(buf: Buf): void;
  };
  export default sodium;
}
