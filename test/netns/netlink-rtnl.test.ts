// dataplane/netlink rtnl against the real kernel: every test works in fresh
// network namespaces named with this run's prefix, removed even on failure.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import {
  NETLINK_ROUTE,
  NetlinkError,
  NetlinkSocket,
  RTM_NEWLINK,
  RTNLGRP_LINK,
  Rtnl,
  THREAD_NETNS_PATH,
  decodeLink,
  openNetns,
  withNetns,
} from '../../dataplane/netlink/index.js';

const prefix = `nlt${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
const created = new Set<string>();
let counter = 0;

function addNetns(): string {
  const name = `${prefix}-${counter++}`;
  execFileSync('ip', ['netns', 'add', name]);
  created.add(name);
  return name;
}

function delNetns(name: string): void {
  if (!created.delete(name)) return;
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

after(() => {
  for (const n of [...created]) delNetns(n);
});

/** Runs `fn` with an Rtnl handle inside a fresh namespace; tears both down afterwards. */
async function inFreshNetns(fn: (rtnl: Rtnl, ns: string) => Promise<void>): Promise<void> {
  const ns = addNetns();
  const rtnl = Rtnl.open({ netns: ns });
  try {
    await fn(rtnl, ns);
  } finally {
    rtnl.close();
    delNetns(ns);
  }
}

function ipJson(ns: string, args: string[]): unknown {
  return JSON.parse(execFileSync('ip', ['-n', ns, '-j', ...args], { encoding: 'utf8' }));
}

test('veth + bridge: create, enslave, up, mtu, address, route, read back, delete', async () => {
  await inFreshNetns(async (rtnl, ns) => {
    const veth = await rtnl.createVeth('ve0', 've1', { mtu: 1400 });
    assert.equal(veth.name, 've0');
    assert.equal(veth.kind, 'veth');
    assert.equal(veth.mtu, 1400);
    const br = await rtnl.createBridge('br0');
    assert.equal(br.kind, 'bridge');

    await rtnl.setMaster('ve0', 'br0');
    for (const l of ['ve0', 've1', 'br0']) await rtnl.setUp(l);
    await rtnl.setMtu('ve1', 1300);
    await rtnl.setMac('ve1', '02:aa:bb:cc:dd:01');
    await rtnl.addAddress('br0', '10.32.0.1/12');
    await rtnl.addRoute({ dst: '10.40.0.0/16', link: 'br0' });
    await rtnl.addRoute({ dst: '10.50.0.0/16', gateway: '10.32.0.2' });

    const links = new Map((await rtnl.listLinks()).map((l) => [l.name, l]));
    const ve0 = links.get('ve0');
    const ve1 = links.get('ve1');
    const br0 = links.get('br0');
    assert.ok(ve0 && ve1 && br0, `links present: ${[...links.keys()].join(',')}`);
    assert.equal(ve0.masterIndex, br0.index);
    assert.equal(ve1.masterIndex, undefined);
    assert.equal(ve0.parentIndex, ve1.index, 'a veth reports its peer as IFLA_LINK');
    assert.equal(ve1.mtu, 1300);
    assert.equal(ve1.mac, '02:aa:bb:cc:dd:01');
    assert.ok(ve0.up && ve1.up && br0.up);
    // The kernel's link watcher moves operstate to "up" asynchronously (it can take a
    // second on a loaded machine), so wait for it with a deadline.
    let operstate = ve1.operstate;
    for (const deadline = Date.now() + 5000; operstate !== 'up' && Date.now() < deadline;) {
      await new Promise((r) => setTimeout(r, 50));
      operstate = (await rtnl.getLink('ve1')).operstate;
    }
    assert.equal(operstate, 'up');

    // Cross-check against iproute2's view of the same namespace.
    const ipLinks = ipJson(ns, ['link', 'show', 've1']) as { mtu: number; address: string; ifindex: number }[];
    assert.equal(ipLinks[0].mtu, 1300);
    assert.equal(ipLinks[0].address, '02:aa:bb:cc:dd:01');
    assert.equal(ipLinks[0].ifindex, ve1.index);

    const addrs = await rtnl.listAddresses('br0');
    assert.deepEqual(addrs.map((a) => `${a.address}/${a.prefixLen}`), ['10.32.0.1/12']);
    assert.equal(addrs[0].index, br0.index);

    const routes = await rtnl.listRoutes({ link: 'br0' });
    const byDst = new Map(routes.map((r) => [r.dst, r]));
    assert.equal(byDst.get('10.40.0.0/16')?.scope, 253, 'a route without gateway is link-scoped');
    assert.equal(byDst.get('10.50.0.0/16')?.gateway, '10.32.0.2');
    assert.equal(byDst.get('10.50.0.0/16')?.oifIndex, br0.index);
    assert.ok(byDst.has('10.32.0.0/12'), 'the kernel adds the prefix route of the address');

    await rtnl.deleteRoute({ dst: '10.40.0.0/16', link: 'br0' });
    assert.ok(!(await rtnl.listRoutes()).some((r) => r.dst === '10.40.0.0/16'));
    await rtnl.deleteAddress('br0', '10.32.0.1/12');
    assert.deepEqual(await rtnl.listAddresses('br0'), []);
    await rtnl.setNoMaster('ve0');
    assert.equal((await rtnl.getLink('ve0')).masterIndex, undefined);
    await rtnl.setDown('ve0');
    assert.equal((await rtnl.getLink('ve0')).up, false);

    await rtnl.deleteLink('ve0');
    await rtnl.deleteLink('br0');
    assert.equal(await rtnl.findLink('ve1'), undefined, 'deleting one veth end removes both');
    assert.deepEqual((await rtnl.listLinks()).map((l) => l.name), ['lo']);
  });
});

test('creating an existing link fails with EEXIST naming the link', async () => {
  await inFreshNetns(async (rtnl) => {
    await rtnl.createBridge('dupbr');
    await assert.rejects(rtnl.createBridge('dupbr'), (e: unknown) => {
      assert.ok(e instanceof NetlinkError);
      assert.equal(e.code, 'EEXIST');
      assert.equal(e.errno, 17);
      assert.match(e.message, /^EEXIST: .*"dupbr"/);
      return true;
    });
    await assert.rejects(rtnl.getLink('absent0'), /ENODEV: get link "absent0"/);
    await assert.rejects(rtnl.setMtu('dupbr', 10), (e: unknown) => e instanceof NetlinkError && e.code === 'EINVAL');
  });
});

test('a veth peer created directly inside a second namespace shows up there', async () => {
  await inFreshNetns(async (rtnl) => {
    const other = addNetns();
    const otherNs = openNetns(other);
    const there = Rtnl.open({ netns: otherNs });
    try {
      await rtnl.createVeth('here0', 'there0', { peerNetns: otherNs, peerMtu: 1376 });
      assert.equal(await rtnl.findLink('there0'), undefined, 'the peer is not in the first namespace');
      const peer = await there.getLink('there0');
      assert.equal(peer.kind, 'veth');
      assert.equal(peer.mtu, 1376);
      const local = await rtnl.getLink('here0');
      assert.equal(local.parentIndex, peer.index);
      assert.notEqual(local.parentNetnsId, undefined, 'the peer lives in another namespace');

      // Moving a link the other way, then renaming it there.
      await rtnl.createVeth('mv0', 'mv1');
      await rtnl.moveToNetns('mv0', otherNs);
      assert.equal(await rtnl.findLink('mv0'), undefined);
      await there.rename('mv0', 'moved0');
      assert.equal((await there.getLink('moved0')).kind, 'veth');
      // Bridges are namespace-local; the kernel's extended ack says so.
      await rtnl.createBridge('stay0');
      await assert.rejects(rtnl.moveToNetns('stay0', otherNs), (e: unknown) => {
        assert.ok(e instanceof NetlinkError);
        assert.match(e.message, /^EINVAL: move link "stay0" .*\(kernel: .+\)$/);
        return true;
      });
    } finally {
      there.close();
      otherNs.close();
      delNetns(other);
    }
  });
});

test('vxlan in external (collect_md) mode with a custom port reads back', async () => {
  await inFreshNetns(async (rtnl) => {
    const vx = await rtnl.createVxlan('vxe0', { external: true, port: 6784, learning: false });
    assert.equal(vx.kind, 'vxlan');
    assert.equal(vx.vxlan?.external, true);
    assert.equal(vx.vxlan?.port, 6784);
    assert.equal(vx.vxlan?.learning, false);
    const vn = await rtnl.createVxlan('vxn0', { id: 42, port: 4789, local: '127.0.0.1', udpChecksum: true });
    assert.equal(vn.vxlan?.id, 42);
    assert.equal(vn.vxlan?.external, false);
    assert.equal(vn.vxlan?.local, '127.0.0.1');
    await assert.rejects(rtnl.createVxlan('vxbad', {}), /give a VNI/);
  });
});

test('multicast: RTNLGRP_LINK reports a link created afterwards', async () => {
  await inFreshNetns(async (rtnl, ns) => {
    const events = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns, groups: [RTNLGRP_LINK] });
    try {
      await rtnl.createBridge('evbr0');
      const deadline = Date.now() + 5000;
      let seen: string | undefined;
      while (!seen && Date.now() < deadline) {
        for (const m of await events.receive(deadline - Date.now())) {
          if (m.type === RTM_NEWLINK && decodeLink(m).name === 'evbr0') seen = 'evbr0';
        }
      }
      assert.equal(seen, 'evbr0');
    } finally {
      events.close();
    }
  });
});

test('the event loop keeps running while a receive is pending', async () => {
  await inFreshNetns(async (rtnl, ns) => {
    const events = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns, groups: [RTNLGRP_LINK] });
    try {
      let received = false;
      const pending = events.receive(10_000).then((msgs) => {
        received = true;
        return msgs;
      });
      // A timer must fire while the receive waits: the wait is off the loop thread.
      let ticks = 0;
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (++ticks === 3) {
            clearInterval(t);
            resolve();
          }
        }, 10);
      });
      assert.equal(received, false, 'no event yet, so the receive is still pending');
      assert.equal(ticks, 3);
      await rtnl.createBridge('tick0');
      const msgs = await pending;
      assert.ok(msgs.some((m) => m.type === RTM_NEWLINK && decodeLink(m).name === 'tick0'));
      // A receive with nothing to read times out with an empty batch.
      assert.deepEqual(await events.receive(50), []);
    } finally {
      events.close();
    }
  });
});

test('closing a socket ends a pending receive', async () => {
  await inFreshNetns(async (_rtnl, ns) => {
    const events = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns, groups: [RTNLGRP_LINK] });
    const pending = events.receive();
    setImmediate(() => events.close());
    await assert.rejects(pending, /closed/);
    assert.equal(events.isClosed, true);
  });
});

test('withNetns switches the calling thread and always switches back', () => {
  const ns = addNetns();
  try {
    const home = statSync(THREAD_NETNS_PATH).ino;
    const target = statSync(`/run/netns/${ns}`).ino;
    assert.equal(withNetns(ns, () => statSync(THREAD_NETNS_PATH).ino), target);
    assert.equal(statSync(THREAD_NETNS_PATH).ino, home);
    assert.throws(() => withNetns(ns, () => {
      throw new Error('boom');
    }), /boom/);
    assert.equal(statSync(THREAD_NETNS_PATH).ino, home, 'restored after an exception');
    assert.throws(() => withNetns(`/run/netns/${prefix}-missing`, () => 1), /cannot open network namespace .*missing/);
  } finally {
    delNetns(ns);
  }
});
