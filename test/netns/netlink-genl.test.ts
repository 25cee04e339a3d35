// dataplane/netlink genl against the real kernel, from inside a fresh namespace.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  GENL_ID_CTRL,
  NETLINK_GENERIC,
  NetlinkError,
  NetlinkSocket,
  listFamilies,
  resolveFamily,
} from '../../dataplane/netlink/index.js';

const ns = `nlg${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
let sock: NetlinkSocket;

before(() => {
  execFileSync('ip', ['netns', 'add', ns]);
  sock = NetlinkSocket.open(NETLINK_GENERIC, { netns: ns });
});

after(() => {
  sock?.close();
  execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
});

test('resolves nlctrl: fixed id 16, a version and its notify group', async () => {
  const f = await resolveFamily(sock, 'nlctrl');
  assert.equal(f.name, 'nlctrl');
  assert.equal(f.id, GENL_ID_CTRL);
  assert.ok(f.version >= 1, `version ${f.version}`);
  assert.ok(f.multicastGroups.has('notify'), `groups: ${[...f.multicastGroups.keys()].join(',')}`);
});

test('lists families and each one resolves to the same id by name', async () => {
  const all = await listFamilies(sock);
  assert.ok(all.some((f) => f.name === 'nlctrl' && f.id === GENL_ID_CTRL));
  assert.ok(all.length >= 2, `families: ${all.map((f) => f.name).join(',')}`);
  // Cross-check with iproute2's genl where it is installed.
  let genlList = '';
  try {
    genlList = execFileSync('ip', ['netns', 'exec', ns, 'genl', 'ctrl', 'list'], { encoding: 'utf8' });
  } catch {
    // genl tool missing: the resolve loop below still checks consistency
  }
  for (const f of all) {
    const again = await resolveFamily(sock, f.name);
    assert.equal(again.id, f.id, f.name);
    assert.equal(again.version, f.version, f.name);
    if (genlList) assert.match(genlList, new RegExp(`Name: ${f.name}\\s+ID: 0x${f.id.toString(16)}\\b`));
  }
});

test('an unknown family is a clear ENOENT naming it', async () => {
  await assert.rejects(resolveFamily(sock, 'nosuchfam_x'), (e: unknown) => {
    assert.ok(e instanceof NetlinkError);
    assert.equal(e.code, 'ENOENT');
    assert.match(e.message, /^ENOENT: resolve generic netlink family "nosuchfam_x"/);
    return true;
  });
  await assert.rejects(resolveFamily(sock, 'a_name_longer_than_15'), /family names are 1-15 bytes/);
  // The socket stays usable after an error reply.
  assert.equal((await resolveFamily(sock, 'nlctrl')).id, GENL_ID_CTRL);
});

test('concurrent requests on one socket each get their own reply', async () => {
  const names = ['nlctrl', 'nlctrl', 'nosuchfam_y', 'nlctrl'];
  const results = await Promise.allSettled(names.map((n) => resolveFamily(sock, n)));
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
});
