// Multicast and broadcast over the sleeve across three simulated hosts in a
// line A-B-C: frames to a group MAC are never learned and travel along the
// Broadcast(S) trees (spec §5.8), so a receiver in every other host's
// container gets every datagram the sender sends to the group — C's copies
// relayed by B. Containers carry the multicast route Weave gives them
// (`224.0.0.0/4 dev ethwe`, user-surface spec: container routes).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createTestbed, pollUntil, waitForPing, type Testbed } from './lib/index.js';
import { plugNode, startLineOfThree, stopSleeve, type Link, type SleeveNode } from './sleeve-harness.js';

const CONTAINER_MTU = 1376;
const GROUP = '239.1.2.3';
const GROUP_PORT = 5353 + 1000;
const DATAGRAMS = 20;

/** Joins GROUP on the container's address and prints each payload on its own line. */
function receiverScript(localIp: string): string {
  return `const s=require('dgram').createSocket({type:'udp4',reuseAddr:true});`
    + `s.on('message',(m)=>console.log('got '+m.toString()));`
    + `s.bind(${GROUP_PORT},()=>{s.addMembership(${JSON.stringify(GROUP)},${JSON.stringify(localIp)});console.log('joined')})`;
}

/** Sends DATAGRAMS numbered payloads to GROUP out of the container's interface, then exits. */
function senderScript(localIp: string): string {
  return `const s=require('dgram').createSocket('udp4');s.bind(0,()=>{`
    + `s.setMulticastInterface(${JSON.stringify(localIp)});s.setMulticastTTL(1);let i=0;`
    + `const next=()=>{if(i===${DATAGRAMS})return s.close();s.send('mcast-'+(i++),${GROUP_PORT},${JSON.stringify(GROUP)},(e)=>{if(e){console.error(e.message);process.exit(1)}setTimeout(next,5)})};next()})`;
}

function received(output: string): Set<string> {
  return new Set(output.split('\n').filter((l) => l.startsWith('got ')).map((l) => l.slice(4)));
}

describe('sleeve multicast and broadcast across three hosts A-B-C', () => {
  let bed: Testbed;
  const nodes: SleeveNode[] = [];
  const links: Link[] = [];

  before(async () => {
    bed = await createTestbed({ hosts: 3, underlay: 'bridge' });
    for (let i = 1; i <= 3; i++) {
      const n = await plugNode(bed.host(i), i, CONTAINER_MTU);
      const r = await n.container.run('ip route add 224.0.0.0/4 dev eth0 scope link');
      assert.equal(r.code, 0, r.stderr);
      nodes.push(n);
    }
    links.push(...await startLineOfThree(nodes, CONTAINER_MTU));
  });

  after(async () => {
    for (const n of nodes) await stopSleeve(n);
    await bed?.teardown();
  });

  test('every receiver in the other hosts gets every datagram sent to the group', async () => {
    const [a, b, c] = nodes as [SleeveNode, SleeveNode, SleeveNode];
    const receivers = [b, c].map((n) => ({ node: n, proc: n.container.spawn('node', ['-e', receiverScript(n.ip)]) }));
    for (const r of receivers) {
      assert.ok(await pollUntil(() => r.proc.output().includes('joined'), 10_000, 20), `receiver in ${r.node.host.label} did not join: ${r.proc.output()}`);
    }
    const capturedBefore = a.dp!.workerStats()?.captured ?? 0;
    const send = await a.container.exec('node', ['-e', senderScript(a.ip)], { timeoutMs: 20_000 });
    assert.equal(send.code, 0, `sender failed: ${send.stderr}`);
    const want = new Set(Array.from({ length: DATAGRAMS }, (_, i) => `mcast-${i}`));
    for (const r of receivers) {
      assert.ok(await pollUntil(() => received(r.proc.output()).size === DATAGRAMS, 10_000, 20),
        `receiver in ${r.node.host.label} got ${received(r.proc.output()).size}/${DATAGRAMS}: ${r.proc.output()}`);
      assert.deepEqual(received(r.proc.output()), want);
    }
    // The group traffic really went through A's sleeve, not some other path.
    // (Worker statistics arrive every 500 ms.)
    assert.ok(await pollUntil(() => (a.dp!.workerStats()?.captured ?? 0) - capturedBefore >= DATAGRAMS, 5000, 50),
      `A's sleeve captured ${(a.dp!.workerStats()?.captured ?? 0) - capturedBefore} frames, want >= ${DATAGRAMS}`);
    for (const r of receivers) r.proc.kill('SIGTERM');
  });

  test('ARP for an unknown address is answered across the sleeve, and a broadcast ping reaches B and C', async () => {
    const [a, b, c] = nodes as [SleeveNode, SleeveNode, SleeveNode];
    await a.container.run('ip neigh flush all');
    assert.ok(await waitForPing(a.container, c.ip, 10_000), 'A cannot reach C');
    const neigh = await a.container.run(`ip neigh show ${c.ip}`);
    assert.match(neigh.stdout, /lladdr 02:73:00:00:00:03/, `A did not learn C's MAC by ARP: ${neigh.stdout}`);
    for (const n of nodes) {
      const r = await n.container.run('sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=0');
      assert.equal(r.code, 0, r.stderr);
    }
    const r = await a.container.run('ping -b -c 3 -W 1 10.47.255.255 2>&1 || true', { timeoutMs: 15_000 });
    assert.match(r.stdout, new RegExp(`from ${b.ip.replace(/\./g, '\\.')}`), `no reply from B: ${r.stdout}`);
    assert.match(r.stdout, new RegExp(`from ${c.ip.replace(/\./g, '\\.')}`), `no reply from C: ${r.stdout}`);
  });
});
