// Isolation through subnets and container mobility, as Weave 2.8 users relied
// on them (user-surface spec §1.8, §1.9): two subnets on one weave network
// share the bridge and the overlay, yet neither gets the other's unicast,
// subnet broadcasts or multicast, in either direction, on one host or across
// hosts (multicast is held back by each container's own rules, as Weave's
// per-subnet INPUT rules did); and a container re-created on another host with
// the same address answers a third host at once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionsMatch, createTestbed, launchFullMesh, mustPing, mustWeave, pollUntil, stopRouters, type Container, type Host, type Testbed } from './lib/index.js';
import { runNft } from '../../dataplane/host/index.js';

const GROUP = '239.7.7.7';
const PORT = 6500;
/** Datagrams each sender sends to each destination. */
const DATAGRAMS = 5;
/** How soon a moved address must answer from its new host (one ARP round, as a user would expect). */
const MOVE_MS = 1_000;

let bed: Testbed;
let h1: Host;
let h2: Host;
let h3: Host;

before(async () => {
  bed = await createTestbed({ hosts: 3, underlay: 'bridge' });
  [h1, h2, h3] = bed.hosts as [Host, Host, Host];
  await launchFullMesh([h1, h2, h3]);
  for (const h of [h1, h2]) await connectionsMatch(h, /established fastdp \S+\(h3\)/);
});

after(async () => {
  if (bed) {
    await stopRouters([h1, h2, h3]);
    await bed.teardown();
  }
});

/** Joins GROUP on `ip` and listens on PORT for anything; prints `got <payload>` per datagram. */
function receiverScript(ip: string): string {
  return `const s=require('dgram').createSocket({type:'udp4',reuseAddr:true});`
    + `s.on('message',(m)=>console.log('got '+m.toString()));`
    + `s.bind(${PORT},()=>{s.addMembership(${JSON.stringify(GROUP)},${JSON.stringify(ip)});console.log('joined')})`;
}

/** Sends DATAGRAMS to each destination (the group, the subnet's broadcast address), payload `<tag>-<dest>-<n>`. */
function senderScript(ip: string, tag: string, destinations: string[]): string {
  return `const s=require('dgram').createSocket('udp4');s.bind(0,${JSON.stringify(ip)},()=>{`
    + `s.setBroadcast(true);s.setMulticastInterface(${JSON.stringify(ip)});s.setMulticastTTL(1);`
    + `const all=[];for(const d of ${JSON.stringify(destinations)})for(let i=0;i<${DATAGRAMS};i++)all.push([d,i]);`
    + `const next=()=>{const x=all.shift();if(!x)return s.close();`
    + `s.send(${JSON.stringify(tag)}+'-'+x[0]+'-'+x[1],${PORT},x[0],(e)=>{if(e){console.error(e.message);process.exit(1)}setTimeout(next,5)})};next()})`;
}

function received(output: string): string[] {
  return output.split('\n').filter((l) => l.startsWith('got ')).map((l) => l.slice(4)).sort();
}

async function attach(h: Host, name: string, cidr: string): Promise<Container> {
  const c = await h.addContainer(name);
  await mustWeave(h, ['attach', cidr, '--netns', c.netnsPath]);
  return c;
}

test('two subnets on one weave network: no unicast, subnet broadcast or multicast crosses, either way, on one host or across hosts', async () => {
  const a1 = await attach(h1, 'a1', '10.2.1.1/24');
  const b1 = await attach(h1, 'b1', '10.2.2.1/24');
  const a2 = await attach(h2, 'a2', '10.2.1.2/24');
  const b2 = await attach(h2, 'b2', '10.2.2.2/24');
  const ipOf = new Map<Container, string>([[a1, '10.2.1.1'], [b1, '10.2.2.1'], [a2, '10.2.1.2'], [b2, '10.2.2.2']]);

  // The rules Weave sets, in the container's own namespace: multicast only from its own subnet.
  const rules = await runNft(['list', 'table', 'ip', 'weave'], undefined, a1.netnsPath);
  assert.equal(rules.code, 0, rules.stderr);
  assert.match(rules.stdout, /iifname "ethwe" ip saddr 10\.2\.1\.0\/24 ip daddr 224\.0\.0\.0\/4 accept/);
  assert.match(rules.stdout, /iifname "ethwe" ip daddr 224\.0\.0\.0\/4 drop/);

  await mustPing(a1, '10.2.1.2', 'a1 reaches a2 across hosts');
  await mustPing(b2, '10.2.2.1', 'b2 reaches b1 across hosts');
  for (const [from, to] of [[a1, '10.2.2.1'], [a1, '10.2.2.2'], [b2, '10.2.1.1'], [b2, '10.2.1.2']] as const) {
    assert.equal(await from.ping(to, { count: 1, waitSeconds: 1 }), false, `unicast ${ipOf.get(from)} -> ${to} does not cross subnets`);
  }

  const receivers = [a1, b1, a2, b2].map((c) => ({ c, proc: c.spawn('node', ['-e', receiverScript(ipOf.get(c) ?? '')]) }));
  for (const r of receivers) assert.ok(await pollUntil(() => r.proc.output().includes('joined'), 10_000, 20), `${r.c.name} joined: ${r.proc.output()}`);
  // a1 sends to its subnet's broadcast and the group, then b2 does the same in its subnet.
  for (const [c, broadcast] of [[a1, '10.2.1.255'], [b2, '10.2.2.255']] as const) {
    const r = await c.exec('node', ['-e', senderScript(ipOf.get(c) ?? '', c.name, [broadcast, GROUP])], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
  }
  const expected = (tag: string, broadcast: string): string[] =>
    [broadcast, GROUP].flatMap((d) => Array.from({ length: DATAGRAMS }, (_, i) => `${tag}-${d}-${i}`)).sort();
  // Same subnet: everything arrives, on the sender's host and across hosts (the sender itself may loop its own back).
  const want = new Map<Container, string[]>([
    [a2, expected('a1', '10.2.1.255')],
    [b1, expected('b2', '10.2.2.255')],
  ]);
  for (const [c, w] of want) {
    const r = receivers.find((x) => x.c === c)!;
    assert.ok(await pollUntil(() => received(r.proc.output()).length >= w.length, 5_000, 20), `${c.name} got ${received(r.proc.output()).length}/${w.length}`);
    assert.deepEqual(received(r.proc.output()), w, `${c.name} gets its subnet's broadcasts and multicast and nothing of the other subnet`);
  }
  // Other subnet: nothing, in both directions (the senders' own loopback copies aside).
  assert.deepEqual(received(receivers.find((x) => x.c === a1)!.proc.output()).filter((m) => !m.startsWith('a1-')), [], 'a1 gets nothing of b2');
  assert.deepEqual(received(receivers.find((x) => x.c === b2)!.proc.output()).filter((m) => !m.startsWith('b2-')), [], 'b2 gets nothing of a1');
  for (const r of receivers) r.proc.kill('SIGTERM');

  // Detach takes the rules with the last address.
  for (const [h, c] of [[h1, a1], [h1, b1], [h2, a2], [h2, b2]] as const) await mustWeave(h, ['detach', `${ipOf.get(c)}/24`, '--netns', c.netnsPath]);
  assert.notEqual((await runNft(['list', 'table', 'ip', 'weave'], undefined, a1.netnsPath)).code, 0, 'no table left in a detached container');
});

test('a container moved to another host with the same address answers a third host within 1 s', async () => {
  const ip = '10.2.3.1';
  const watcher = await attach(h3, 'watcher', '10.2.3.3/24');
  const before = await attach(h1, 'mover-h1', `${ip}/24`);
  await mustPing(watcher, ip, 'the watcher on h3 reaches the container on h1');
  assert.ok(await before.ping('10.2.3.3'), 'and back');

  await mustWeave(h1, ['detach', `${ip}/24`, '--netns', before.netnsPath]);
  const after = await attach(h2, 'mover-h2', `${ip}/24`);
  const attached = Date.now();
  const moved = await pollUntil(() => watcher.ping(ip, { count: 1, waitSeconds: 1 }), MOVE_MS, 50);
  assert.ok(moved, `${ip} answers from h2 within ${MOVE_MS} ms of its attach (${Date.now() - attached} ms)`);
  assert.ok(await after.ping('10.2.3.3'), 'the moved container reaches the watcher');
});
