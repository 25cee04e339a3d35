// The managed plugin (`--plugin-v2`, user-surface spec §7.2) built by
// scripts/build-net-plugin.sh from a local rootfs, created and enabled in real dockerd on two
// simulated hosts (no registry): the router runs inside the plugin, Docker activates its
// `weave.sock`, and, in Swarm mode, containers on a network of the plugin's driver on the two
// hosts reach each other.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mustRun } from '../support/exec.js';
import { pollUntil } from '../netns/lib/exec.js';
import { weave } from '../netns/lib/weave.js';
import { createPluginBed, containerIp, type DockerHost, type PluginBed } from './lib/plugin-bed.js';

const BUILD = fileURLToPath(new URL('../../../scripts/build-net-plugin.sh', import.meta.url));
const PLUGIN = 'weave-test/net-plugin:latest';
const FIRST_REPLY_MS = 10_000;

let pb: PluginBed | undefined;
let buildDir = '';

function h(i: number): DockerHost {
  assert.ok(pb, 'the testbed did not start (see the before hook)');
  return pb.hosts[i - 1]!;
}

before(async () => {
  buildDir = mkdtempSync('/tmp/weave-net-plugin-');
  const t0 = Date.now();
  await mustRun('sh', [BUILD, join(buildDir, 'plugin')], { timeoutMs: 180_000 });
  const t1 = Date.now();
  pb = await createPluginBed(2);
  process.stdout.write(`plugin rootfs built in ${t1 - t0} ms, 2 dockerd in ${Date.now() - t1} ms\n`);
});
after(async () => {
  const t0 = Date.now();
  // Out of Swarm first, or each daemon's shutdown waits on its Swarm components.
  for (const dh of [...(pb?.hosts ?? [])].reverse()) {
    const ids = (await dh.docker(['ps', '-aq']).catch(() => '')).trim().split('\n').filter(Boolean);
    if (ids.length > 0) await dh.docker(['rm', '-f', ...ids]).catch(() => undefined);
    await dh.docker(['swarm', 'leave', '--force']).catch(() => undefined);
    await dh.docker(['plugin', 'disable', '-f', PLUGIN]).catch(() => undefined);
  }
  await pb?.teardown();
  rmSync(buildDir, { recursive: true, force: true });
  process.stdout.write(`teardown took ${Date.now() - t0} ms\n`);
});

test('docker plugin create + enable from the local rootfs: the router runs inside, Docker activates weave.sock', async () => {
  for (const dh of [h(1), h(2)]) {
    const peer = dh === h(1) ? h(2) : h(1);
    const t0 = Date.now();
    await dh.docker(['plugin', 'create', PLUGIN, join(buildDir, 'plugin')]);
    // Own state folder inside the plugin (both simulated hosts share this machine's /var/lib).
    await dh.docker(['plugin', 'set', PLUGIN, `EXTRA_ARGS=${peer.host.address}`, 'WEAVE_NO_FASTDP=1', 'WEAVE_STATE_DIR=/var/lib/weave']);
    await dh.docker(['plugin', 'enable', PLUGIN]).catch((e: Error) => {
      // The router's own output is in dockerd's log, tagged with the plugin id.
      const lines = dh.dockerd.log().split('\n').filter((l) => /plugin=[0-9a-f]{64}/.test(l)).slice(-30).join('\n');
      throw new Error(`${e.message}\nplugin output:\n${lines}`);
    });
    process.stdout.write(`${dh.host.label}: plugin created and enabled in ${Date.now() - t0} ms\n`);
    const ls = await dh.docker(['plugin', 'ls', '--format', '{{.Name}} {{.Enabled}}']);
    assert.match(ls, /^weave-test\/net-plugin:latest true$/m);
  }
  // The router inside answers on the host's control port, as `weave status` expects.
  for (const dh of [h(1), h(2)]) {
    let out = '';
    const up = await pollUntil(async () => {
      out = (await weave(dh.host, ['status'])).stdout;
      return /Service: plugin \(v2\)/.test(out);
    }, 30_000, 250);
    assert.ok(up, `${dh.host.label}: weave status shows the managed plugin:\n${out}`);
    assert.doesNotMatch(out, /DriverName/, 'no DriverName line for the managed plugin (spec §2.1)');
    // The plugin's rootfs has no nft: the router loads the host firewall over netlink.
    const table = await dh.host.exec('nft', ['list', 'table', 'inet', 'weave']);
    assert.match(table.stdout, /iifname "weave" oifname "weave" accept/, `${dh.host.label}: the host firewall table:\n${table.stderr}`);
  }
  const conn = await pollUntil(async () => /established/.test((await weave(h(1).host, ['status', 'connections'])).stdout), 30_000, 250);
  assert.ok(conn, 'the two plugin routers connected');
});

test('Swarm: a network of the plugin\'s driver joins containers on two hosts', async () => {
  const a1 = h(1).host.address;
  await h(1).docker(['swarm', 'init', '--advertise-addr', a1, '--listen-addr', `${a1}:2377`]);
  const token = (await h(1).docker(['swarm', 'join-token', '-q', 'worker'])).trim();
  await h(2).docker(['swarm', 'join', '--token', token, '--advertise-addr', h(2).host.address, `${a1}:2377`]);
  await h(1).docker(['network', 'create', '-d', PLUGIN, '--attachable', '--subnet', '10.32.200.0/24', 'v2net']);
  const image = pb!.image;
  await h(1).docker(['run', '-d', '--name', 'v1', '--net', 'v2net', image, 'sleep', '600']);
  await h(2).docker(['run', '-d', '--name', 'v2', '--net', 'v2net', image, 'sleep', '600']);
  const ip2 = await containerIp(h(2), 'v2', 'v2net');
  const t0 = Date.now();
  let last = '';
  const ok = await pollUntil(async () => {
    try {
      await h(1).docker(['exec', 'v1', 'ping', '-c', '1', '-W', '1', ip2]);
      return true;
    } catch (e) {
      last = (e as Error).message;
      return false;
    }
  }, FIRST_REPLY_MS, 100);
  assert.ok(ok, `v1 reaches v2 (${ip2}) across hosts; last: ${last}`);
  process.stdout.write(`managed plugin: first reply across hosts after ${Date.now() - t0} ms\n`);
});
