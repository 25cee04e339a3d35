// What the encrypted fast datapath tests check inside the kernel lab VM, for
// either kernel datapath: the SAs, policy and marking rules a connection
// installs (spec §7.4, §7.5), what crossed the underlay (counted at ingress,
// before XFRM, so as it was on the wire), and that `weave reset` leaves no
// XFRM state, policy or IPsec chain behind.
import assert from 'node:assert/strict';
import { addSecondAddress, ipPattern, mustExec, runIperfClient, startIperfServer, type Host, type SpawnedProcess, type Testbed } from '../../netns/lib/index.js';
import { attachContainer, connectionsMatch, mustPing, mustWeave } from './weave-fastdp-harness.js';

const COUNT_TABLE = 'wtesp';

/** Counts ESP and plain VXLAN frames arriving on h's underlay interface from now on. */
export async function countUnderlay(h: Host): Promise<void> {
  const script = [
    `table netdev ${COUNT_TABLE} {`,
    '  chain count {',
    '    type filter hook ingress device "eth0" priority 0; policy accept;',
    '    ip protocol esp counter comment "esp"',
    '    udp dport 6784 counter comment "vxlan"',
    '  }',
    '}',
    '',
  ].join('\n');
  await mustExec('ip', ['netns', 'exec', h.namespace, 'nft', '-f', '-'], { input: script });
}

export async function underlayCounts(h: Host): Promise<{ esp: number; vxlan: number }> {
  const out = (await mustExec('ip', ['netns', 'exec', h.namespace, 'nft', 'list', 'table', 'netdev', COUNT_TABLE])).stdout;
  const packets = (what: string): number => {
    const m = new RegExp(`counter packets (\\d+) bytes \\d+ comment "${what}"`).exec(out);
    assert.ok(m, `counter ${what} in:\n${out}`);
    return Number(m[1]);
  };
  return { esp: packets('esp'), vxlan: packets('vxlan') };
}

export async function xfrm(h: Host, what: 'state' | 'policy'): Promise<string> {
  return (await mustExec('ip', ['-n', h.namespace, 'xfrm', what])).stdout.trim();
}

/** Both ends encrypt: an inbound and an outbound ESP SA, a marked OUT policy and the marking chains (spec §7.4, §7.5). */
export async function assertIPsecInstalled(h: Host): Promise<void> {
  const states = await xfrm(h, 'state');
  assert.equal((states.match(/proto esp spi/g) ?? []).length, 2, `${h.label} has two ESP SAs:\n${states}`);
  assert.match(states, /rfc4106\(gcm\(aes\)\)/);
  assert.match(await xfrm(h, 'policy'), /dir out[\s\S]*mark 0x20000\/0x20000/);
  const rules = (await mustExec('ip', ['netns', 'exec', h.namespace, 'nft', 'list', 'table', 'inet', 'weave'])).stdout;
  assert.match(rules, /chain ipsec-out-mark/);
  assert.match(rules, /esp spi \d+ meta mark set/);
}

/** The broadcast address of the containers' subnet, 10.32.0.0/12. */
const CONTAINER_BROADCAST = '10.47.255.255';

/**
 * A container on `h` broadcasting 100 pings a second, attached before a peer joins:
 * while the peer's connection is being set up (fastdp chosen, its SA exchange under
 * way) these frames are what the datapath would tunnel in clear if it used a forwarder
 * whose outbound SA and marking rules are not in place yet. Returns a stop function.
 */
export async function startBroadcasting(h: Host, env: Record<string, string> = {}): Promise<() => Promise<void>> {
  const c = await h.addContainer('bcast');
  assert.equal(await mustWeave(h, ['attach', '10.32.0.9/12', '--netns', c.netnsPath], env), '10.32.0.9\n');
  const pinger: SpawnedProcess = c.spawn('ping', ['-b', '-q', '-i', '0.01', CONTAINER_BROADCAST]);
  return async () => {
    pinger.kill('SIGINT');
    await pinger.exited;
    // iputils ping prints its summary on SIGINT: the broadcasts did go out.
    const sent = /(\d+) packets transmitted/.exec(pinger.output());
    assert.ok(sent && Number(sent[1]) >= 100, `the broadcaster sent pings:\n${pinger.output()}`);
  };
}

/** Ping both ways, then a 4 MiB TCP transfer h1/c1 -> h2/c1 through the tunnel. */
export async function pingAndTcp(h1: Host, h2: Host): Promise<void> {
  const [c1, c2] = [await attachContainer(h1), await attachContainer(h2)];
  await mustPing(c1, '10.32.0.2', 'h1/c1 -> h2/c1 (encrypted fastdp)');
  await mustPing(c2, '10.32.0.1', 'h2/c1 -> h1/c1 (encrypted fastdp)');
  const server = await startIperfServer(c2, { bind: '10.32.0.2' });
  // runIperfClient throws unless the 4 MiB went over a TCP connection iperf3 closed cleanly.
  const report = await runIperfClient(c1, ['-c', '10.32.0.2', '-n', '4M'], { timeoutMs: 120_000 }).finally(() => server.stop());
  assert.ok(report.sentBytes >= 4 * 1024 * 1024, `sent ${report.sentBytes} bytes`);
  assert.ok(report.receivedBytes > 0, 'the receiver counted the transfer');
}

/** The transfer reached `h` as ESP only: never as plain VXLAN (UDP 6784). */
export async function assertOnlyEsp(h: Host): Promise<void> {
  const counts = await underlayCounts(h);
  assert.ok(counts.esp >= 1000, `the transfer crossed the underlay as ESP (${counts.esp} packets)`);
  assert.equal(counts.vxlan, 0, 'no plain VXLAN (UDP 6784) ever crossed the underlay');
}

/** `weave reset` on `h` (with its router's environment) leaves no SA, policy or IPsec chain. */
export async function assertResetClean(h: Host, env: Record<string, string> = {}): Promise<void> {
  await mustWeave(h, ['reset'], env);
  assert.equal(await xfrm(h, 'state'), '', `reset on ${h.label} removed every SA`);
  assert.equal(await xfrm(h, 'policy'), '', `reset on ${h.label} removed every policy`);
  const table = await h.exec('nft', ['list', 'table', 'inet', 'weave']);
  assert.doesNotMatch(table.stdout, /ipsec/, `reset on ${h.label} removed the IPsec chains`);
}

/**
 * h2 dials the second of h1's two addresses, which h1's route to h2 does not
 * prefer (it was added second): the connection, its SAs and so its tunnel
 * frames and heartbeats must use that address, or they are dropped unencrypted
 * and the pair stays on the sleeve. Then the data crosses as ESP only.
 */
export async function encryptedFastdpViaSecondAddress(bed: Testbed, password: string, envOf: (h: Host) => Record<string, string> = () => ({})): Promise<void> {
  const [h1, h2] = bed.hosts as [Host, Host];
  const secondary = await addSecondAddress(bed, h1, h2);
  await countUnderlay(h2);
  await mustWeave(h1, ['launch', '--password', password, '--nickname', 'h1'], envOf(h1));
  await mustWeave(h2, ['launch', '--password', password, '--nickname', 'h2', secondary], envOf(h2));
  await connectionsMatch(h2, new RegExp(`^-> ${ipPattern(secondary)}:6783\\s+established encrypted\\s+fastdp \\S+\\(h1\\)`, 'm'));
  await connectionsMatch(h1, /^<- \S+\s+established encrypted\s+fastdp \S+\(h2\)/m);
  assert.match(await xfrm(h1, 'state'), new RegExp(`src ${ipPattern(secondary)} dst ${ipPattern(h2.address)}\\b`), 'h1 encrypts from the secondary address');
  await pingAndTcp(h1, h2);
  await assertOnlyEsp(h2);
}

/**
 * h1 —encrypted— h2 —trusted— h3, with h1-h3 cut: h2's datapath relays h1's
 * frames to h3 and back. A frame from h1 arrives at h2 inside ESP, which marks
 * it, and keeps that mark through decapsulation; relayed to h3 as plain VXLAN
 * (trusted, no SA) it must leave h2 unmarked, or h2's OUTPUT filter takes it
 * for a packet that lost its encryption and drops it.
 */
export async function relayFromEncryptedToTrusted(bed: Testbed, password: string, envOf: (h: Host) => Record<string, string> = () => ({})): Promise<void> {
  const [h1, h2, h3] = bed.hosts as [Host, Host, Host];
  await bed.cutLink(h1, h3);
  await mustWeave(h2, ['launch', '--password', password, '--trusted-subnets', `${h3.address}/32`, '--nickname', 'h2'], envOf(h2));
  await mustWeave(h1, ['launch', '--password', password, '--nickname', 'h1', h2.address], envOf(h1));
  await mustWeave(h3, ['launch', '--password', password, '--trusted-subnets', `${h2.address}/32`, '--nickname', 'h3', h2.address], envOf(h3));
  await connectionsMatch(h1, /^-> \S+:6783\s+established encrypted\s+fastdp \S+\(h2\)/m);
  await connectionsMatch(h3, /^-> \S+:6783\s+established unencrypted\s+fastdp \S+\(h2\)/m);
  const [c1, c3] = [await attachContainer(h1), await attachContainer(h3)];
  await mustPing(c1, '10.32.0.3', 'h1/c1 -> h3/c1, relayed by h2 from ESP to plain VXLAN');
  await mustPing(c3, '10.32.0.1', 'h3/c1 -> h1/c1, relayed by h2 from plain VXLAN into ESP');
}
