// Byte strings captured from a Weave Net 2.8 mesh peer (protocol header,
// features, topology and channel gossip, plain and encrypted) must decode with
// our codecs exactly as that peer meant them (spec §1.2-1.5, §3.1-3.2, §4.1, §4.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GobDecoder, decodeGobStream } from '../../controlplane/mesh/gob/index.js';
import {
  decodeFeatures, parseFeatures, featuresFromGob, decodeGossipMessage, decodeTopology, parseHeader, negotiateVersion, HEADER_SIZE,
} from '../../controlplane/mesh/wire/index.js';
import { ControlCipher, deriveSessionKey, keyPairFromSecretKey } from '../../crypto/index.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The V2 features message a mesh peer named 00:00:00:00:00:0a sent (no password). */
const GO_FEATURES_V2 = hex([
    '0eff81040102ff8200010c010c0000ff8eff820007044e616d651130303a30303a30303a30303a30303a3061084e69636b4e',
    '616d6506676f706565720753686f72744944033635310355494414313135363531383430363036343635343933373706436f',
    '6e6e494414313230373538313334353739333437363036333707547275737465640566616c73650f506565724e616d65466c',
    '61766f7572036d6163',
  ].join(''));

/** Its first topology gossip body after the handshake (tag 4, channel "topology"). */
const GO_TOPOLOGY_GOSSIP = hex([
    '040b0c0008746f706f6c6f67790306000afe01420a00fe013d62ff850301010b7065657253756d6d61727901ff8600010601',
    '084e616d6542797465010a0001084e69636b4e616d65010c000103554944010600010756657273696f6e010600010753686f',
    '72744944010600010a48617353686f72744944010200000025ff86010600000000000a0106676f7065657201f88846478bcc',
    '4442bc010201fe09e30101000dff89020102ff8a0001ff8800005bff8703010111636f6e6e656374696f6e53756d6d617279',
    '01ff8800010401084e616d6542797465010a00010d52656d6f746554435041646472010c0001084f7574626f756e64010200',
    '010b45737461626c6973686564010200000020ff8a0001010600000000000b010f3132372e302e302e313a35343635320201',
    '0023ff86010600000000000b010674737065657201f8132460b720488ef902fe012301010004ff8a0000',
  ].join(''));

/** Its first gossip on the application channel "default": an empty gob map. */
const GO_DEFAULT_GOSSIP = hex('040a0c000764656661756c740306000a170a00140eff83040102ff840001060104000004ff840000');

/** Everything a mesh peer sent after we offered versions 1..1: header, then the V1 gob features. */
const GO_V1_OPENING = hex([
    '776561766501020eff81040102ff8200010c010c000072ff82000506436f6e6e494413363638353434303530393237343731',
    '32303034044e616d651130303a30303a30303a30303a30303a3061084e69636b4e616d6506676f706565720f506565724e61',
    '6d65466c61766f7572036d6163035549441335343936383436373930313835393137383133',
  ].join(''));

test('Go V2 features message decodes and parses', () => {
  const f = parseFeatures(decodeFeatures(GO_FEATURES_V2));
  assert.equal(f.name, 0x0an);
  assert.equal(f.nickName, 'gopeer');
  assert.equal(f.uid, 11565184060646549377n);
  assert.equal(f.connId, 12075813457934760637n);
  assert.equal(f.shortId, 651);
  assert.equal(f.trusted, false);
  assert.equal(f.overlays, undefined);
});

test('Go topology gossip decodes to its peer records', () => {
  const env = decodeGossipMessage(GO_TOPOLOGY_GOSSIP);
  assert.equal(env.tag, 4);
  assert.equal(env.channel, 'topology');
  assert.equal(env.src, 0x0an);
  const recs = decodeTopology(env.payload);
  assert.equal(recs.length, 2);
  assert.deepEqual(recs[0]!.summary, { name: 0x0an, nickName: 'gopeer', uid: recs[0]!.summary.uid, version: 2n, shortId: 2531, hasShortId: true });
  assert.deepEqual(recs[0]!.connections, [{ name: 0x0bn, remoteTcpAddr: '127.0.0.1:54652', outbound: false, established: true }]);
  assert.equal(recs[1]!.summary.name, 0x0bn);
  assert.equal(recs[1]!.summary.nickName, 'tspeer');
  assert.equal(recs[1]!.summary.version, 0n);
  assert.equal(recs[1]!.summary.shortId, 0x123);
  assert.deepEqual(recs[1]!.connections, []);
});

test('Go channel gossip carries an empty gob map', () => {
  const env = decodeGossipMessage(GO_DEFAULT_GOSSIP);
  assert.equal(env.tag, 4);
  assert.equal(env.channel, 'default');
  assert.equal(env.src, 0x0an);
  const values = decodeGobStream(env.payload);
  assert.equal(values.length, 1);
  assert.ok(values[0] instanceof Map);
  assert.equal(values[0].size, 0);
});

test('Go V1 opening: header offers 1..2, features are the first gob value', () => {
  const header = parseHeader(GO_V1_OPENING.subarray(0, HEADER_SIZE));
  assert.deepEqual(header, { min: 1, max: 2 });
  assert.equal(negotiateVersion({ min: 1, max: 1 }, header), 1);
  const values = new GobDecoder().push(GO_V1_OPENING.subarray(HEADER_SIZE));
  assert.equal(values.length, 1);
  const f = parseFeatures(featuresFromGob(values[0]));
  assert.equal(f.name, 0x0an);
  assert.equal(f.uid, 5496846790185917813n);
  assert.equal(f.connId, 6685440509274712004n);
  assert.equal(f.shortId, undefined);
});

// An encrypted V2 connection we dialled with a fixed ephemeral secret key and
// password "s3cret": the peer's header, flag and public key, then its first
// three sealed messages (features, topology gossip, channel gossip).
const ENC = {
  ourSecret: hex('0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20'),
  ourPublic: '07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c',
  goOpening: hex('77656176650102019b9dac941cac734d70cda50cd0a56f47f24e5a83f81151c65108bd0183e6d113'),
  frames: [
    hex([
      '548251134308995768a789b0e09d42efac08647536d56d3cd7a146d1346d6c104d6f8163c4b8244a5a517f901684d8c1b3c3',
      '81f1a189017de4887b1b46c1df4810a33fd86d452cd9eb93302b53453b1cd34d64d9508da3acab4508413cf9657522eac767',
      'e39bcdb1ed127fafdaa31482a3c7193f6d6f7c4042313bd736a7bcad4d0c206f7f8611a1c99eaf1e0bb8ba25568a311fc567',
      'be75c3e325e9dfd2dba1a3ed1c7718092f3dffe2e053dc',
    ].join('')),
    hex([
      '6edaff1347894eb24b6c2e7b7c4a49498cb3a5048b26720cbf4b32abd30023ff70ac6d6cb11e30a6f62370810a5036dc1786',
      'fb6d484a2a138c79ee975a0dc2b96d72cd6e0e2c8853e41504bc8be1e3870ae901414761e5d38bd6be77a7a701b38a8bc307',
      'f99cd731bb9147ddf45d0930ca7e1764bf471814fbe7df1ad6eee4b12d1b58ae4511960464359c195d92123eeb76085b5b38',
      '5789eb6629f6ed309281687fe14c9c3f962034b84d93de2ef6e316ca91716735771437aa73162aead0e0e3d40d1514142321',
      '866a0c46f7b31bd04f9de6d1de837374138ad7e5c037c82b76993409552d8207b773c44793dc0880c6e9b3ca37a908fa0110',
      'b00ca21119eb84b3669cf145549443c45b4c89ea19ca4915747a3301ec0bbeb2d91a11bc0c6f1830ea82d39bd3736750c725',
      'e6b46e77b8eafe0b0b18adcc8c58180c4094a03fc4b572a558adcb5b30ceb03177094c0d9e7e795a1c2796c1ee8a77461bdf',
    ].join('')),
    hex('6dbf11f2ab9db799a4f1ace1ae62c256a091ffa5b3d072d949a7893bdb5005af3d9638e4b6a997fc5d4f7076248da3f86db1d1c569220cdc'),
  ],
};

test('Go encrypted connection: session key derivation and sealed messages open in sequence', () => {
  assert.equal(toHex(keyPairFromSecretKey(ENC.ourSecret).publicKey), ENC.ourPublic);
  assert.deepEqual(parseHeader(ENC.goOpening.subarray(0, HEADER_SIZE)), { min: 1, max: 2 });
  assert.equal(ENC.goOpening[HEADER_SIZE], 1, 'encryption flag');
  const goPublic = ENC.goOpening.subarray(HEADER_SIZE + 1);
  const key = deriveSessionKey(goPublic, ENC.ourSecret, new TextEncoder().encode('s3cret'));
  assert.equal(toHex(key), 'aa78b1214c42ddaff2c425047a674ccf576e74f0819ae07fc8b4b6dbb441e0d8');
  // We dialled, so the peer's messages carry the inbound nonce flag.
  const cipher = new ControlCipher(key, true);
  const f = parseFeatures(decodeFeatures(cipher.open(ENC.frames[0]!)));
  assert.equal(f.name, 0x0an);
  assert.equal(f.shortId, 2966);
  assert.equal(f.uid, 539231000011560010n);
  const topo = decodeGossipMessage(cipher.open(ENC.frames[1]!));
  assert.equal(topo.channel, 'topology');
  assert.equal(decodeTopology(topo.payload)[0]!.summary.name, 0x0an);
  const chan = decodeGossipMessage(cipher.open(ENC.frames[2]!));
  assert.equal(chan.channel, 'default');
});

test('Go encrypted messages do not open under a wrong password', () => {
  const goPublic = ENC.goOpening.subarray(HEADER_SIZE + 1);
  const key = deriveSessionKey(goPublic, ENC.ourSecret, new TextEncoder().encode('wrong'));
  assert.throws(() => new ControlCipher(key, true).open(ENC.frames[0]!), /password mismatch/);
});

// A mesh peer that rejects our version range resets the connection, and the
// reset can arrive before its header: the error must still point at the versions.
test('a reset during the header exchange names the version range to check', async () => {
  const { createServer, connect } = await import('node:net');
  const { performHandshake } = await import('../../controlplane/mesh/wire/index.js');
  const server = createServer((s) => { s.once('data', () => s.resetAndDestroy()); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as { port: number }).port;
    const sock = connect({ host: '127.0.0.1', port });
    await new Promise<void>((r) => sock.once('connect', () => r()));
    await assert.rejects(
      performHandshake(sock, { identity: { name: 0x0bn, nickName: 't', uid: 1n, shortId: 1 }, outbound: true, trustedRemote: false, maxVersion: 1 }),
      /protocol header exchange.*overlaps ours, 1\.\.1/,
    );
  } finally {
    server.close();
  }
});
