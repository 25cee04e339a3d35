// The sleeve's capture socket (dataplane/sys/sockets.ts openPacketSocket) takes frames from its own
// interface only, from the moment it exists: frames on the host's other interfaces before its bind
// (underlay ARP and pings here) are not queued on it, so a router starting beside traffic never
// carries an underlay frame into the overlay. Real kernel, two hosts on a bridge underlay.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createTestbed, mustExec, pollUntil, type Testbed } from './lib/index.js';
import * as libc from '../../dataplane/sys/libc.js';
import { bindPacketSocket, interfaceIndex, openUnboundPacketSocket } from '../../dataplane/sys/sockets.js';
import { withNetns } from '../../dataplane/netlink/index.js';
import { VNET_HDR_SIZE } from '../../dataplane/sleeve/inject-coalescer.js';

/** An ARP request out of one end of the pair reaches the other within this. */
const CAPTURE_BOUND_MS = 2000;

let bed: Testbed;

before(async () => {
  bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
  const ns = bed.host(1).namespace;
  await mustExec('ip', ['-n', ns, 'link', 'add', 'cap0', 'type', 'veth', 'peer', 'name', 'cap1']);
  await mustExec('ip', ['-n', ns, 'addr', 'add', '10.99.0.1/24', 'dev', 'cap0']);
  for (const link of ['cap0', 'cap1']) await mustExec('ip', ['-n', ns, 'link', 'set', link, 'up']);
});

after(async () => {
  await bed?.teardown();
});

/** The ethertypes of the frames queued on `fd`, read until none is left. */
function drain(fd: number): number[] {
  const buf = Buffer.alloc(2048);
  const types: number[] = [];
  for (;;) {
    const n = libc.recvfrom(fd, buf, buf.length, libc.MSG_DONTWAIT, null, null);
    if (n < 0) return types;
    if (n >= VNET_HDR_SIZE + 14) types.push(buf.readUInt16BE(VNET_HDR_SIZE + 12));
  }
}

test('frames on other interfaces before the bind are not queued; after it, the bound interface\'s are', async () => {
  const h1 = bed.host(1);
  const fd = withNetns(h1.netnsPath, () => openUnboundPacketSocket());
  try {
    // Underlay traffic into h1's eth0 while the socket exists but is not bound yet: ARP and ICMP.
    await mustExec('ip', ['-n', h1.namespace, 'neigh', 'flush', 'dev', 'eth0']);
    assert.ok(await bed.host(2).ping(h1.address), 'h2 pings h1 over the underlay');
    assert.ok(await h1.ping(bed.host(2).address), 'h1 pings h2 over the underlay');
    const ifindex = withNetns(h1.netnsPath, () => interfaceIndex('cap1'));
    bindPacketSocket(fd, ifindex);
    assert.deepEqual(drain(fd), [], 'no frame of another interface was queued before the bind');
    // What cap0 sends reaches the socket on cap1: an ARP request for a neighbour that does not exist.
    const arping = h1.exec('ping', ['-c', '1', '-W', '1', '-I', 'cap0', '10.99.0.2']);
    const seen: number[] = [];
    const started = Date.now();
    assert.ok(await pollUntil(() => {
      seen.push(...drain(fd));
      return seen.includes(0x0806);
    }, CAPTURE_BOUND_MS, 10), `no ARP captured on cap1 within ${CAPTURE_BOUND_MS} ms (saw ${seen.map((t) => t.toString(16)).join(', ')})`);
    process.stdout.write(`# capture socket: nothing queued before the bind; ARP from cap0 captured ${Date.now() - started} ms after it was sent\n`);
    await arping;
  } finally {
    libc.close(fd);
  }
});
