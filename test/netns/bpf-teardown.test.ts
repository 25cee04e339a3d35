// `weave reset`'s eBPF part (teardownBpfFastdp) removes the pinned maps whether
// the pin directory is a plain directory on a bpffs or a bpffs mount point of
// its own (a private bpffs per router, as tests and several routers per host
// use), and the receive fast path's filter that a killed router left on the
// underlay interface.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createTestbed } from './lib/index.js';
import { BpfFastDatapath } from '../../dataplane/bpf/fastdp.js';
import { Rtnl } from '../../dataplane/netlink/rtnl.js';

const DATAPATH_MODULE = fileURLToPath(new URL('../../dataplane/bpf/datapath/index.js', import.meta.url));
const PREFIX = `wtd${process.pid % 100000}`;

function teardownIn(ns: string, pinDir: string): void {
  execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e',
    `const m = await import(${JSON.stringify(DATAPATH_MODULE)}); await m.teardownBpfFastdp({ pinDir: ${JSON.stringify(pinDir)} });`]);
}

/** Runs the teardown inside a fresh namespace, so the tunnel device it deletes can only be that namespace's. */
function teardownInNamespace(pinDir: string): void {
  const ns = `${PREFIX}-ns`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    teardownIn(ns, pinDir);
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

test('teardown removes the receive fast path from the underlay interface a killed datapath left it on', async () => {
  const bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
  const mount = `/tmp/${PREFIX}-underlay-bpffs`;
  const pinDir = `${mount}/h1`;
  mkdirSync(mount, { recursive: true });
  execFileSync('mount', ['-t', 'bpf', 'bpf', mount]);
  const h1 = bed.host(1);
  let dp: BpfFastDatapath | undefined;
  try {
    dp = await BpfFastDatapath.open({ localShortId: 1, pinDir, netns: h1.namespace, bridge: true });
    await dp.apply({ localPorts: [], peers: [{ shortId: 2, underlayIp: bed.host(2).address }], broadcastTrees: [] });
    const [ifindex] = dp.underlayInterfaces;
    assert.ok(ifindex !== undefined, 'the fast path is on the interface that routes to the peer');
    assert.deepEqual([...dp.maps.listUnderlayAddresses()], [[h1.address, 6784]], 'it takes frames for the interface\'s address');
    const rtnl = Rtnl.open({ netns: h1.namespace });
    const dev = await rtnl.getLink(ifindex).finally(() => rtnl.close());
    const filters = (): string => execFileSync('ip', ['netns', 'exec', h1.namespace, 'tc', 'filter', 'show', 'dev', dev.name, 'ingress'], { encoding: 'utf8' });
    assert.match(filters(), /handle 0x6784 weave_from_unde/);
    dp.close(); // as a killed router: the filter and the pins stay
    dp = undefined;
    teardownIn(h1.namespace, pinDir);
    assert.doesNotMatch(filters(), /handle 0x6784/, 'reset removed the filter');
    assert.equal(existsSync(pinDir), false, 'and the pins');
  } finally {
    dp?.close();
    await bed.teardown();
    execFileSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  }
});


test('teardown empties a pin directory that is a bpffs mount point and leaves the mount', () => {
  const mount = `/tmp/${PREFIX}-bpffs`;
  mkdirSync(mount, { recursive: true });
  execFileSync('mount', ['-t', 'bpf', 'bpf', mount]);
  try {
    mkdirSync(`${mount}/maps-of-a-run`);
    teardownInNamespace(mount);
    assert.ok(existsSync(mount), 'the mount point stays');
    const left = readdirSync(mount).filter((e) => !e.endsWith('.debug'));
    assert.deepEqual(left, [], 'only the kernel\'s own entries remain');
  } finally {
    execFileSync('umount', [mount]);
    rmSync(mount, { recursive: true, force: true });
  }
});

test('teardown removes a plain pin directory whole', () => {
  const dir = `/tmp/${PREFIX}-pins`;
  mkdirSync(`${dir}/maps-of-a-run`, { recursive: true });
  try {
    teardownInNamespace(dir);
    assert.equal(existsSync(dir), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
