// Runs INSIDE the kernel lab VM (the host kernel has no ESP): two namespaces
// joined by a veth play two peers. Each installs its half of an encrypted
// fast datapath connection with dataplane/ipsec (spec §7.4) and the nft
// marking rules (spec §7.5); UDP to port 6784 then flows as ESP, which the SA
// counters prove; teardown and flush leave no SA or policy behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mustRun, pollUntil, runCommand, uniqueSuffix } from '../../support/exec.js';
import * as libc from '../../../dataplane/sys/libc.js';
import { withNetns } from '../../../dataplane/netlink/netns.js';
import { replaceTable } from '../../../dataplane/netlink/nftables.js';
import { deriveIPsecKey } from '../../../crypto/ipsec-keys.js';
import { IPsec, IPSEC_MARK, IPSEC_REQID, ipsecChains, type IPsecConnectionSpec, type IPsecConnectionState } from '../../../dataplane/ipsec/index.js';

const suffix = uniqueSuffix();
const nsA = `wti-a-${suffix}`;
const nsB = `wti-b-${suffix}`;
const ipA = '172.31.77.1';
const ipB = '172.31.77.2';
const PORT = 6784;
// The session key of spec §3.6 and two mac-flavour names.
const sessionKey = Buffer.from('56739a695eb5240b3f8c075736725a9b5e729ad6e4be9c0af91523fc18f63151', 'hex');
const nameA = 0x0a0000000001n;
const nameB = 0x0a0000000002n;
const connUID = 0x5eed1234abcdn;
const AF_INET = 2;
const SOCK_DGRAM = 2;

let ipsecA: IPsec | undefined;
let ipsecB: IPsec | undefined;
const fds: number[] = [];

function sockaddr(ip: string, port: number): Buffer {
  const a = Buffer.alloc(16); // struct sockaddr_in
  a.writeUInt16LE(AF_INET, 0);
  a.writeUInt16BE(port, 2);
  Buffer.from(ip.split('.').map(Number)).copy(a, 4);
  return a;
}

/** A non-blocking UDP socket created inside `ns` and bound to ip:port. */
function udpSocket(ns: string, ip: string, port: number): number {
  const fd = withNetns(ns, () => libc.socket(AF_INET, SOCK_DGRAM | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC, 0));
  assert.ok(fd >= 0, `socket() in ${ns}: errno ${libc.lastErrno()}`);
  fds.push(fd);
  assert.equal(libc.bindSocket(fd, sockaddr(ip, port), 16), 0, `bind ${ip}:${port} in ${ns}: errno ${libc.lastErrno()}`);
  return fd;
}

function send(fd: number, ip: string, port: number, text: string): void {
  const b = Buffer.from(text);
  assert.equal(libc.sendto(fd, b, b.length, 0, sockaddr(ip, port), 16), b.length, `sendto: errno ${libc.lastErrno()}`);
}

/** Every datagram queued on the socket, as text. */
function drain(fd: number): string[] {
  const out: string[] = [];
  const buf = Buffer.alloc(2048);
  for (;;) {
    const n = libc.recvfrom(fd, buf, buf.length, libc.MSG_DONTWAIT, null, null);
    if (n < 0) return out;
    out.push(buf.toString('utf8', 0, n));
  }
}

function spec(local: 'A' | 'B'): IPsecConnectionSpec {
  return local === 'A'
    ? { connUID, localIp: ipA, remoteIp: ipB, localName: nameA, remoteName: nameB, sessionKey }
    : { connUID, localIp: ipB, remoteIp: ipA, localName: nameB, remoteName: nameA, sessionKey };
}

async function xfrmText(ns: string, what: 'state' | 'policy'): Promise<string> {
  return (await mustRun('ip', ['-n', ns, 'xfrm', what])).trim();
}

before(async () => {
  await mustRun('ip', ['netns', 'add', nsA]);
  await mustRun('ip', ['netns', 'add', nsB]);
  await mustRun('ip', ['-n', nsA, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', nsB]);
  await mustRun('ip', ['-n', nsA, 'addr', 'add', `${ipA}/24`, 'dev', 'va']);
  await mustRun('ip', ['-n', nsB, 'addr', 'add', `${ipB}/24`, 'dev', 'vb']);
  for (const [ns, dev] of [[nsA, 'va'], [nsB, 'vb']]) {
    await mustRun('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    await mustRun('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  ipsecA = IPsec.open({ netns: nsA });
  ipsecB = IPsec.open({ netns: nsB });
});

after(async () => {
  for (const fd of fds) libc.close(fd);
  ipsecA?.close();
  ipsecB?.close();
  await runCommand('ip', ['netns', 'del', nsA]);
  await runCommand('ip', ['netns', 'del', nsB]);
});

test('the guest kernel runs ESP with rfc4106(gcm(aes)), and the probe leaves nothing behind', async () => {
  assert.equal(await ipsecA!.probeEsp(), true);
  assert.equal(await xfrmText(nsA, 'state'), '');
});

test('two peers set up IPsec, carry UDP 6784 as ESP, and tear down to nothing', async () => {
  const a = ipsecA!;
  const b = ipsecB!;

  // spec §7.4 step 1 on both sides: inbound SAs, and the messages to exchange.
  const a1 = await a.setupConnection(spec('A'));
  const b1 = await b.setupConnection(spec('B'));
  assert.ok(a1.spiIn >= 0x100 && b1.spiIn >= 0x100);
  assert.equal(a1.spiOut, undefined);
  // step 3 on receipt of the peer's CryptoInitSARemote.
  const a2: IPsecConnectionState = await a.setupConnection({ ...spec('A'), remoteInit: b1.localInit });
  const b2: IPsecConnectionState = await b.setupConnection({ ...spec('B'), remoteInit: a1.localInit });
  assert.equal(a2.spiIn, a1.spiIn, 'the inbound SA is not replaced by the second call');
  assert.equal(a2.spiOut, b1.spiIn, "A sends with B's inbound SPI");
  assert.equal(b2.spiOut, a1.spiIn, "B sends with A's inbound SPI");
  // Desired state: the same spec again changes nothing.
  assert.deepEqual(await a.setupConnection({ ...spec('A'), remoteInit: b1.localInit }), a2);
  assert.equal((await a.xfrm.dumpSAs()).length, 2);
  assert.equal((await a.xfrm.dumpPolicies()).length, 1);

  // Both ends hold the same key for each direction, the one spec §7.3 derives.
  const outA = await a.xfrm.getSA({ dst: ipB, spi: a2.spiOut! });
  const inB = await b.xfrm.getSA({ dst: ipB, spi: b2.spiIn });
  assert.equal(outA.aead?.name, 'rfc4106(gcm(aes))');
  assert.equal(outA.aead?.icvBits, 128);
  assert.deepEqual(outA.aead?.key, inB.aead?.key);
  assert.deepEqual(outA.aead?.key, deriveIPsecKey(sessionKey, b1.localInit.nonce, nameB));
  assert.equal(outA.esn?.replayWindow, 256);
  assert.equal(outA.reqid, IPSEC_REQID);
  const policy = (await a.xfrm.dumpPolicies())[0];
  assert.deepEqual(policy.mark, { value: IPSEC_MARK, mask: IPSEC_MARK });
  assert.equal(policy.templates[0].spi, a2.spiOut);

  // spec §7.5 marking rules, as nft chains loaded over netlink, in each namespace.
  for (const [ns, ipsec] of [[nsA, a], [nsB, b]] as const) {
    await replaceTable('inet', 'weave_ipsec_test', ipsecChains(ipsec.firewallEntries()), `/run/netns/${ns}`);
  }

  const rx = udpSocket(nsB, ipB, PORT);
  const tx = udpSocket(nsA, ipA, 0);
  const sent = ['esp-0', 'esp-1', 'esp-2', 'esp-3', 'esp-4'];
  for (const m of sent) send(tx, ipB, PORT, m);
  const received: string[] = [];
  await pollUntil('5 datagrams in B', 15_000, async () => {
    received.push(...drain(rx));
    return received.length >= sent.length ? true : undefined;
  });
  assert.deepEqual(received.sort(), sent);

  // The datagrams went through the SAs: A's outbound and B's inbound counted them.
  const outAfter = await a.xfrm.getSA({ dst: ipB, spi: a2.spiOut! });
  const inAfter = await b.xfrm.getSA({ dst: ipB, spi: b2.spiIn });
  assert.ok(outAfter.current.packets >= 5n, `A outbound SA counted ${outAfter.current.packets} packets`);
  assert.ok(inAfter.current.packets >= 5n, `B inbound SA counted ${inAfter.current.packets} packets`);
  assert.equal(inAfter.stats.integrityFailed, 0);
  assert.match(await mustRun('ip', ['-n', nsB, '-s', 'xfrm', 'state']), /proto esp spi/);

  // Without A's SAs and policy, the still-marked packets must not leave in clear.
  await a.teardownConnection(connUID);
  assert.equal(await xfrmText(nsA, 'state'), '');
  assert.equal(await xfrmText(nsA, 'policy'), '');
  // The output drop rule (spec §7.5) refuses it at once: the sender sees EPERM.
  const plain = Buffer.from('plain');
  const rc = libc.sendto(tx, plain, plain.length, 0, sockaddr(ipB, PORT), 16);
  assert.equal(rc, -1, 'a marked datagram without a transform was sent in clear');
  assert.equal(libc.lastErrno(), 1 /* EPERM: dropped by netfilter */);
  // And nothing arrives. Absence cannot be awaited as an event: give it a bounded chance.
  await assert.rejects(pollUntil('a plaintext datagram in B', 1500, async () => (drain(rx).length > 0 ? true : undefined)));
  const inFinal = await b.xfrm.getSA({ dst: ipB, spi: b2.spiIn });
  assert.equal(inFinal.current.packets, inAfter.current.packets, 'no more ESP reached B');

  // weave reset on B: removes what we installed (by mark and reqid), nothing else.
  const report = await b.flushAll();
  assert.deepEqual(report, { policies: 1, sas: 2 });
  assert.equal(await xfrmText(nsB, 'state'), '');
  assert.equal(await xfrmText(nsB, 'policy'), '');
});

test('flushAll leaves SAs and policies it did not install', async () => {
  await mustRun('ip', ['-n', nsA, 'xfrm', 'state', 'add', 'src', ipA, 'dst', ipB, 'proto', 'esp', 'spi', '0x777', 'reqid', '7',
    'mode', 'transport', 'aead', 'rfc4106(gcm(aes))', '0x' + '11'.repeat(36), '128']);
  await mustRun('ip', ['-n', nsA, 'xfrm', 'policy', 'add', 'src', `${ipA}/32`, 'dst', `${ipB}/32`, 'proto', 'tcp', 'dir', 'out',
    'tmpl', 'src', ipA, 'dst', ipB, 'proto', 'esp', 'reqid', '7', 'mode', 'transport']);
  const a1 = await ipsecA!.setupConnection(spec('A'));
  assert.ok(a1.spiIn >= 0x100);
  assert.deepEqual(await ipsecA!.flushAll(), { policies: 0, sas: 1 });
  assert.match(await xfrmText(nsA, 'state'), /spi 0x00000777 reqid 7/);
  assert.match(await xfrmText(nsA, 'policy'), /proto tcp/);
  await ipsecA!.xfrm.flushSAs();
  await ipsecA!.xfrm.flushPolicies();
  assert.equal(await xfrmText(nsA, 'state'), '');
  assert.equal(await xfrmText(nsA, 'policy'), '');
});
