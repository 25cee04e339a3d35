// Path MTU handling of the sleeve on the real kernel (spec §5.6, §5.7), with
// containers whose MTU (1500) is larger than the overlay's:
// * a DF packet too big for the overlay is answered by the sleeve itself with
//   an ICMP "fragmentation needed" carrying the overlay MTU, injected into the
//   sender's container, whose kernel then lowers its path MTU;
// * a packet without DF that is too big still arrives whole — on the non-DF
//   path when the underlay passes IP fragments, and fragmented by the sleeve
//   onto the DF path when it does not;
// * a lowered underlay MTU lowers the overlay MTU the forwarders report.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createTestbed, execCommand, pollUntil, waitForPing, type Testbed } from './lib/index.js';
import { applyTopology, connectNodes, plugNode, startSleeve, stopSleeve, type Link, type SleeveNode } from './sleeve-harness.js';
import { overheadDF } from '../../dataplane/sleeve/constants.js';

const CONTAINER_MTU = 1500;
const UDP_PORT = 7000;
const BIG_DATAGRAM = 3000;
const PATTERN = 'PMTU-PAYLOAD-';

interface Pair {
  bed: Testbed;
  a: SleeveNode;
  b: SleeveNode;
  link: Link;
}

/** Two hosts, containers at CONTAINER_MTU; `prepare` runs on each host before its sleeve starts. */
async function startPair(encrypt: boolean, prepare: (bed: Testbed) => Promise<void>): Promise<Pair> {
  const bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
  const a = await plugNode(bed.host(1), 1, CONTAINER_MTU);
  const b = await plugNode(bed.host(2), 2, CONTAINER_MTU);
  await prepare(bed);
  await startSleeve(a, CONTAINER_MTU);
  await startSleeve(b, CONTAINER_MTU);
  const link = connectNodes(a, b, encrypt);
  applyTopology([a, b], [[a, b]]);
  const timeout = new Promise<string>((r) => setTimeout(() => r('timeout'), 10_000).unref());
  assert.equal(await Promise.race([link.established.then(() => 'ok'), timeout]), 'ok', 'forwarders did not establish');
  return { bed, a, b, link };
}

async function stopPair(p: Partial<Pair>): Promise<void> {
  await stopSleeve(p.a);
  await stopSleeve(p.b);
  await p.bed?.teardown();
}

async function waitForMtu(link: Link, want: number): Promise<void> {
  assert.ok(await pollUntil(() => link.fa.status().mtu === want && link.fb.status().mtu === want, 15_000, 50),
    `overlay mtu a=${link.fa.status().mtu} b=${link.fb.status().mtu}, want ${want}`);
}

/** Sends one BIG_DATAGRAM-byte UDP datagram from `from` to `to`; returns what the receiver saw ("<bytes> <sha256>"). */
async function bigDatagram(from: SleeveNode, to: SleeveNode, port: number): Promise<string> {
  const sink = to.container.spawn('node', ['-e',
    `const s=require('dgram').createSocket('udp4');s.on('message',(m)=>{console.log(m.length+' '+require('crypto').createHash('sha256').update(m).digest('hex'));s.close()});s.bind(${port},()=>console.log('bound'))`]);
  assert.ok(await pollUntil(() => sink.output().includes('bound'), 10_000, 20), `sink did not start: ${sink.output()}`);
  // Sent a few times a second until it arrives: the first copy may wait for ARP.
  const sender = from.container.spawn('node', ['-e',
    `const s=require('dgram').createSocket('udp4');const b=Buffer.alloc(${BIG_DATAGRAM},${JSON.stringify(PATTERN)});setInterval(()=>s.send(b,${port},${JSON.stringify(to.ip)}),200);s.send(b,${port},${JSON.stringify(to.ip)})`]);
  try {
    assert.ok(await pollUntil(() => /^\d+ [0-9a-f]{64}$/m.test(sink.output()), 10_000, 20), `datagram did not arrive: ${sink.output()}`);
  } finally {
    sender.kill('SIGKILL');
    sink.kill('SIGKILL');
  }
  return sink.output().split('\n').find((l) => /^\d+ /.test(l))!;
}

const expectedBig = `${BIG_DATAGRAM} ${createHash('sha256').update(Buffer.alloc(BIG_DATAGRAM, PATTERN)).digest('hex')}`;

for (const encrypt of [false, true]) {
  describe(`sleeve PMTU with containers above the overlay MTU (${encrypt ? 'encrypted' : 'plain'})`, () => {
    const overlayMtu = 1500 - overheadDF(encrypt);
    let p: Partial<Pair> = {};

    before(async () => {
      p = await startPair(encrypt, async () => undefined);
    });
    after(() => stopPair(p));

    test('the overlay MTU is the underlay path MTU less the sleeve overhead', async () => {
      await waitForMtu(p.link!, overlayMtu);
      assert.ok(await waitForPing(p.a!.container, p.b!.ip, 10_000), 'a cannot ping b');
    });

    test('a large datagram without DF arrives whole (kernel-fragmented in the container)', async () => {
      assert.equal(await bigDatagram(p.a!, p.b!, UDP_PORT), expectedBig);
      assert.equal(await bigDatagram(p.b!, p.a!, UDP_PORT + 1), expectedBig);
    });

    test('a full-size 1500-byte packet without DF is carried (ping -M dont)', async () => {
      const r = await p.a!.container.run(`ping -M dont -s 1472 -c 3 -W 2 ${p.b!.ip}`, { timeoutMs: 20_000 });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /1480 bytes from/);
    });

    test('a DF packet above the overlay MTU gets ICMP fragmentation-needed with the overlay MTU', async () => {
      const { a, b } = p as Pair;
      const dropsBefore = a.dp!.stats().drops['df-too-big'] ?? 0n;
      const pcap = `${a.host.dir}/icmp.pcap`;
      // --immediate-mode: without it a captured packet can sit in the kernel's ring block past the SIGINT below.
      const dump = a.container.spawn('tcpdump', ['-i', 'eth0', '--immediate-mode', '-U', '-n', '-w', pcap, 'icmp[icmptype] == 3 and icmp[icmpcode] == 4']);
      assert.ok(await pollUntil(async () => (await a.container.run(`test -s ${pcap}`)).code === 0, 5000, 50), 'tcpdump did not start');
      const r = await a.container.run(`ping -M do -s 1472 -c 3 -i 0.3 -W 1 ${b.ip} 2>&1 || true`, { timeoutMs: 20_000 });
      // iputils prints the ICMP error ("Frag needed and DF set (mtu = N)"), then refuses locally ("message too long, mtu=N").
      assert.match(r.stdout, new RegExp(`mtu ?= ?${overlayMtu}\\b`), `ping did not learn the overlay MTU: ${r.stdout}`);
      // A pcap holds a 24-byte header; anything beyond it is a captured packet.
      await pollUntil(async () => (await a.container.run(`test $(stat -c %s ${pcap}) -gt 24`)).code === 0, 5000, 50);
      dump.kill('SIGINT');
      await dump.exited;
      const read = await a.container.exec('tcpdump', ['-n', '-v', '-r', pcap]);
      assert.match(read.stdout, new RegExp(`${b.ip.replace(/\./g, '\\.')} > ${a.ip.replace(/\./g, '\\.')}: ICMP ${b.ip.replace(/\./g, '\\.')} unreachable - need to frag \\(mtu ${overlayMtu}\\)`),
        `no fragmentation-needed from ${b.ip} in ${a.container.namespace}: ${read.stdout}`);
      // The kernel took the MTU into its route cache for b.
      const route = await a.container.run(`ip route get ${b.ip}`);
      assert.match(route.stdout, new RegExp(`mtu ${overlayMtu}\\b`), route.stdout);
      assert.ok(await pollUntil(() => (a.dp!.stats().drops['df-too-big'] ?? 0n) > dropsBefore, 5000, 50), 'df-too-big not counted');
      // Packets at the overlay MTU with DF still pass.
      const fit = await a.container.run(`ping -M do -s ${overlayMtu - 28} -c 2 -W 2 ${b.ip}`, { timeoutMs: 20_000 });
      assert.equal(fit.code, 0, fit.stdout + fit.stderr);
    });
  });
}

describe('sleeve fragments non-DF packets itself when the underlay drops IP fragments', () => {
  const overlayMtu = 1500 - overheadDF(false);
  let p: Partial<Pair> = {};

  before(async () => {
    p = await startPair(false, async (bed) => {
      // Before defragmentation (priority -400): the fragmentation test (spec §5.4) never arrives, so
      // the forwarders keep stackFrag off and must fragment themselves (spec §5.7). Only on the
      // underlay interface: with br_netfilter loaded, bridged container traffic passes this hook too.
      for (const h of bed.hosts) {
        const r = await h.run(`nft add table ip fragblock && nft add chain ip fragblock pre '{ type filter hook prerouting priority -500; }' && nft add rule ip fragblock pre 'iifname "eth0" ip frag-off & 0x3fff != 0 counter drop'`);
        assert.equal(r.code, 0, r.stderr);
      }
    });
  });
  after(() => stopPair(p));

  test('the underlay really drops the fragmentation test', async () => {
    await waitForMtu(p.link!, overlayMtu);
    // The 60001-byte fragmentation test was sent when the forwarders established.
    assert.ok(await pollUntil(async () => /packets [1-9]/.test((await p.b!.host.run('nft list chain ip fragblock pre')).stdout), 5000, 50),
      'no fragments were dropped on the underlay');
  });

  test('a large datagram and a 1500-byte ping without DF arrive whole', async () => {
    const { a, b } = p as Pair;
    assert.equal(await bigDatagram(a, b, UDP_PORT), expectedBig);
    assert.equal(await bigDatagram(b, a, UDP_PORT + 1), expectedBig);
    const r = await a.container.run(`ping -M dont -s 1472 -c 3 -W 2 ${b.ip}`, { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});

describe('sleeve over an underlay with MTU 1400', () => {
  const overlayMtu = 1400 - overheadDF(false);
  let p: Partial<Pair> = {};

  before(async () => {
    p = await startPair(false, async (bed) => {
      for (const h of bed.hosts) {
        const r = await h.run('ip link set eth0 mtu 1400');
        assert.equal(r.code, 0, r.stderr);
      }
    });
  });
  after(() => stopPair(p));

  test('the forwarders report the lower overlay MTU and DF packets above it get ICMP', async () => {
    const { a, b, link } = p as Pair;
    await waitForMtu(link, overlayMtu);
    assert.ok(await waitForPing(a.container, b.ip, 10_000), 'a cannot ping b');
    const fit = await a.container.run(`ping -M do -s ${overlayMtu - 28} -c 2 -W 2 ${b.ip}`, { timeoutMs: 20_000 });
    assert.equal(fit.code, 0, fit.stdout + fit.stderr);
    const big = await a.container.run(`ping -M do -s ${overlayMtu - 27} -c 2 -i 0.3 -W 1 ${b.ip} 2>&1 || true`, { timeoutMs: 20_000 });
    assert.match(big.stdout, new RegExp(`mtu ?= ?${overlayMtu}\\b`), big.stdout);
  });
});


describe('sleeve over an underlay that silently drops datagrams above 1400 bytes', () => {
  let p: Partial<Pair> = {};

  before(async () => {
    p = await startPair(false, async (bed) => {
      // The hosts still think the path takes 1500: only the underlay bridge's ports are lowered, so no
      // EMSGSIZE or ICMP tells the sleeve — its MTU tests (spec §5.6) must find the limit.
      for (const h of bed.hosts) {
        const r = await execIn(bed.underlayNamespace!, `ip link set h${h.index} mtu 1400`);
        assert.equal(r.code, 0, r.stderr);
      }
    });
  });
  after(() => stopPair(p));

  test('the PMTU search settles on the largest overlay MTU that gets through', async () => {
    const { a, b, link } = p as Pair;
    // veth ports accept a frame of mtu + 4 bytes (VLAN allowance), so the path takes 1400..1404-byte packets.
    const lowest = 1400 - overheadDF(false);
    const highest = 1404 - overheadDF(false);
    const settled = (m: number | undefined): boolean => m !== undefined && m >= lowest && m <= highest;
    assert.ok(await pollUntil(() => settled(link.fa.status().mtu) && settled(link.fb.status().mtu), 60_000, 100),
      `overlay mtu a=${link.fa.status().mtu} b=${link.fb.status().mtu}, want ${lowest}..${highest}`);
    const mtu = link.fa.status().mtu!;
    const fit = await a.container.run(`ping -M do -s ${mtu - 28} -c 2 -W 2 ${b.ip}`, { timeoutMs: 20_000 });
    assert.equal(fit.code, 0, fit.stdout + fit.stderr);
    const big = await a.container.run(`ping -M do -s ${mtu - 27} -c 2 -i 0.3 -W 1 ${b.ip} 2>&1 || true`, { timeoutMs: 20_000 });
    assert.match(big.stdout, new RegExp(`mtu ?= ?${mtu}\\b`), big.stdout);
  });
});

function execIn(namespace: string, shell: string): ReturnType<typeof execCommand> {
  return execCommand('ip', ['netns', 'exec', namespace, 'sh', '-c', shell]);
}
