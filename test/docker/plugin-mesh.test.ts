// The legacy Docker plugin against real dockerd (user-surface spec §7.1): three simulated
// hosts, each with its own dockerd in the host's namespace and its own plugin folder, and a
// router launched with the plugin. `docker run --net=weave` containers get weave IPAM
// addresses, reach each other across hosts and resolve each other through weaveDNS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from '../netns/lib/exec.js';
import { weave } from '../netns/lib/weave.js';
import { createPluginBed, launchPluginMesh, containerIp, type DockerHost, type PluginBed } from './lib/plugin-bed.js';

/** The `weave` network's subnet: a part of the allocation range 10.32.0.0/12. */
const DEFAULT_SUBNET = '10.32.0.0/16';
/** How long a user waits for a new container to reach one on another host. */
const FIRST_REPLY_MS = 10_000;
/** spec §7.1 / the issue: a removed container's name is gone everywhere within this. */
const NAME_GONE_MS = 5_000;

let pb: PluginBed | undefined;
const exposed = new Map<DockerHost, string>();

function bed(): PluginBed {
  assert.ok(pb, 'the plugin testbed did not start (see the before hook)');
  return pb;
}
function h(i: number): DockerHost {
  return bed().hosts[i - 1]!;
}

before(async () => {
  const t0 = Date.now();
  pb = await createPluginBed(3);
  const t1 = Date.now();
  // The default subnet is part of the range, so a second network can take a subnet of the
  // range that no `weave` container can be in (spec §4.3 --ipalloc-default-subnet).
  await launchPluginMesh(pb.hosts, ['--ipalloc-default-subnet', DEFAULT_SUBNET]);
  // The bridge address is where containers reach weaveDNS (it listens on all addresses).
  for (const dh of pb.hosts) exposed.set(dh, (await dh.weave(['expose'])).trim());
  process.stdout.write(`3 dockerd + images in ${t1 - t0} ms, 3 routers launched in ${Date.now() - t1} ms\n`);
});
after(async () => { await pb?.teardown(); });

/**
 * Runs a detached busybox container on the weave network, with weaveDNS as its resolver,
 * hostname `host-<name>.weave.local` and network alias `alias-<name>.weave.local`.
 */
async function runOnWeave(dh: DockerHost, name: string, extra: string[] = [], cmd: string[] = ['sleep', '600'], net = 'weave'): Promise<string> {
  const dns = exposed.get(dh)!.split('/')[0]!;
  return (await dh.docker([
    'run', '-d', '--name', name, `--net=${net}`, '-h', `host-${name}.weave.local`, `--network-alias=alias-${name}.weave.local`,
    `--dns=${dns}`, '--dns-search=weave.local.', ...extra, bed().image, ...cmd,
  ])).trim();
}

async function execIn(dh: DockerHost, name: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    return { ok: true, out: await dh.docker(['exec', name, ...args]) };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

/** Pings `target` from `name` until it answers; returns how long the first reply took. */
async function timeToFirstReply(dh: DockerHost, name: string, target: string, timeoutMs = FIRST_REPLY_MS): Promise<number> {
  const t0 = Date.now();
  let last = '';
  const ok = await pollUntil(async () => {
    const r = await execIn(dh, name, ['ping', '-c', '1', '-W', '1', target]);
    last = r.out;
    return r.ok;
  }, timeoutMs, 100);
  assert.ok(ok, `${name} on ${dh.host.label} reaches ${target} within ${timeoutMs} ms; last: ${last}`);
  return Date.now() - t0;
}

/** weaveDNS's answer for `name` as the container's resolver gives it (nslookup against the bridge address). */
async function resolveIn(dh: DockerHost, container: string, name: string): Promise<string[]> {
  const dns = exposed.get(dh)!.split('/')[0]!;
  const r = await execIn(dh, container, ['nslookup', name, dns]);
  if (!r.ok) return [];
  // busybox nslookup: the answer section follows "Name:" lines.
  const answer = r.out.split(/\nName:\s/).slice(1).join('\n');
  return [...answer.matchAll(/Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!);
}

test('launch made the Docker network "weave": weavemesh driver and IPAM, default subnet, multicast on', async () => {
  for (const dh of bed().hosts) {
    const net = JSON.parse(await dh.docker(['network', 'inspect', 'weave']))[0] as {
      Driver: string; Scope: string; IPAM: { Driver: string; Config: { Subnet: string; Gateway?: string }[] }; Options: Record<string, string>;
    };
    assert.equal(net.Driver, 'weavemesh');
    assert.equal(net.Scope, 'local');
    assert.equal(net.IPAM.Driver, 'weavemesh');
    assert.equal(net.IPAM.Config[0]?.Subnet, DEFAULT_SUBNET);
    assert.deepEqual(net.Options, { 'works.weave.multicast': 'true' });
    assert.ok(existsSync(join(dh.pluginDir, 'weave.sock')) && existsSync(join(dh.pluginDir, 'weavemesh.sock')));
  }
});

test('docker run --net=weave on three hosts: unique weave IPAM addresses, ethwe0 + multicast route, all pairs ping', async () => {
  const ips: string[] = [];
  for (let i = 1; i <= 3; i++) {
    await runOnWeave(h(i), `c${i}`);
    ips.push(await containerIp(h(i), `c${i}`));
  }
  assert.equal(new Set(ips).size, 3, `addresses are unique: ${ips.join(' ')}`);
  for (const ip of ips) assert.match(ip, /^10\.32\./, `${ip} is in the default subnet ${DEFAULT_SUBNET}`);
  const routes = (await h(1).docker(['exec', 'c1', 'ip', 'route'])).trim();
  assert.match(routes, /^224\.0\.0\.0\/4 dev ethwe0/m);
  assert.match(routes, /^10\.32\.0\.0\/16 dev ethwe0/m);
  const times: string[] = [];
  for (let a = 1; a <= 3; a++) {
    for (let b = 1; b <= 3; b++) {
      if (a === b) continue;
      const ms = await timeToFirstReply(h(a), `c${a}`, ips[b - 1]!);
      times.push(`c${a}->c${b} ${ms} ms`);
    }
  }
  process.stdout.write(`time to first reply: ${times.join(', ')}\n`);
});

test('weaveDNS: each container resolves the others by hostname, container name and alias; weave ps lists them', async () => {
  const ips = [await containerIp(h(1), 'c1'), await containerIp(h(2), 'c2'), await containerIp(h(3), 'c3')];
  for (let a = 1; a <= 3; a++) {
    for (let b = 1; b <= 3; b++) {
      for (const name of [`host-c${b}.weave.local`, `c${b}.weave.local`, `alias-c${b}.weave.local`]) {
        const ok = await pollUntil(async () => (await resolveIn(h(a), `c${a}`, name)).includes(ips[b - 1]!), 5_000, 200);
        assert.ok(ok, `c${a} resolves ${name} to ${ips[b - 1]}`);
      }
    }
  }
  // The user's way: a single-label name through the container's resolver, then ping.
  await timeToFirstReply(h(1), 'c1', 'c3');
  const id1 = (await h(1).docker(['inspect', '--format', '{{.Id}}', 'c1'])).trim();
  const ps = await h(1).weave(['ps']);
  const line = (label: string): RegExp => new RegExp(`^${label} ([0-9a-f]{2}:){5}[0-9a-f]{2} ${ips[0]!.replace(/\./g, '\\.')}/16$`, 'm');
  assert.match(ps, line(id1.slice(0, 12)), ps);
  // By name and by full id, shown as given (at most 12 characters).
  assert.match(await h(1).weave(['ps', 'c1']), line('c1'));
  assert.match(await h(1).weave(['ps', id1]), line(id1.slice(0, 12)));
  assert.equal(await h(1).weave(['ps', 'no-such-container']), '');
});

test('weave status and report show the plugin', async () => {
  const status = await h(1).weave(['status']);
  assert.match(status, /^\s+Service: plugin \(legacy\)\n\s+DriverName: weave$/m);
  const report = JSON.parse(await h(1).weave(['report'])) as { Plugin?: { DriverName: string; MeshDriverName: string; Config: { MeshSocket: string; DNS: boolean } } };
  assert.equal(report.Plugin?.DriverName, 'weave');
  assert.equal(report.Plugin?.MeshDriverName, 'weavemesh');
  assert.equal(report.Plugin?.Config.MeshSocket, join(h(1).pluginDir, 'weavemesh.sock'));
  assert.equal(report.Plugin?.Config.DNS, true);
});

test('docker rm -f releases the address and removes the name everywhere within 5 s', async () => {
  const ip = await runOnWeave(h(2), 'gone').then(() => containerIp(h(2), 'gone'));
  for (const a of [1, 3]) {
    const seen = await pollUntil(async () => (await resolveIn(h(a), `c${a}`, 'gone.weave.local')).includes(ip), 5_000, 200);
    assert.ok(seen, `c${a} resolves gone.weave.local before the removal`);
  }
  assert.ok(await ipOwned(h(2), ip), `${ip} is allocated while the container runs`);
  // One resolver loop per host, started before the removal, stamps when the name went.
  const watchers = [1, 2, 3].map((a) => watchNameGone(h(a), 'gone.weave.local', ip));
  await Promise.all(watchers.map((w) => w.ready));
  const t0 = Date.now();
  await h(2).docker(['rm', '-f', 'gone']);
  const rmMs = Date.now() - t0;
  const goneAt = await Promise.all(watchers.map((w) => w.gone));
  const after = goneAt.map((t) => t - t0);
  for (const [i, ms] of after.entries()) assert.ok(ms <= NAME_GONE_MS, `h${i + 1}: gone.weave.local still resolved ${ms} ms after docker rm -f began`);
  process.stdout.write(`name gone on h1..h3 ${after.join(', ')} ms after docker rm -f began (the command itself took ${rmMs} ms)\n`);
  assert.equal(await ipOwned(h(2), ip), false, `${ip} is released`);
});

/**
 * Asks the host's weaveDNS for `name` every 50 ms from inside the host: `ready` once it
 * answers `ip`, `gone` with the wall-clock time (this machine's clock) it first did not.
 */
function watchNameGone(dh: DockerHost, name: string, ip: string): { ready: Promise<void>; gone: Promise<number> } {
  const script = `
    import { Resolver } from 'node:dns/promises';
    const r = new Resolver({ timeout: 500, tries: 1 });
    r.setServers(['127.0.0.1']);
    const has = async () => { try { return (await r.resolve4(${JSON.stringify(name)})).includes(${JSON.stringify(ip)}); } catch { return false; } };
    const deadline = Date.now() + 60000;
    while (!(await has())) { if (Date.now() > deadline) process.exit(2); await new Promise((z) => setTimeout(z, 50)); }
    process.stdout.write('ready\\n');
    while (await has()) { if (Date.now() > deadline) process.exit(3); await new Promise((z) => setTimeout(z, 50)); }
    process.stdout.write('gone ' + Date.now() + '\\n');`;
  const p = dh.host.spawn(process.execPath, ['--input-type=module', '-e', script]);
  const line = (re: RegExp): Promise<RegExpExecArray> => pollUntil(() => re.test(p.output()), 60_000, 20)
    .then((ok) => { assert.ok(ok, `${dh.host.label}: DNS watcher for ${name}: ${p.output()}`); return re.exec(p.output())!; });
  return { ready: line(/^ready$/m).then(() => undefined), gone: line(/^gone (\d+)$/m).then((m) => Number(m[1])) };
}

/** Whether the router's IPAM has `ip` allocated (GET /ip lists every owner and its addresses). */
async function ipOwned(dh: DockerHost, ip: string): Promise<boolean> {
  const res = await fetchRouter(dh, '/ip');
  const owned = JSON.parse(res) as { owned: { containerid: string; addrs: string[] }[] };
  return owned.owned.some((o) => o.addrs.some((a) => a.startsWith(`${ip}/`)));
}

async function fetchRouter(dh: DockerHost, path: string): Promise<string> {
  const script = `const r = await fetch('http://127.0.0.1:6784${path}'); process.stdout.write(await r.text());`;
  const r = await dh.host.exec(process.execPath, ['--input-type=module', '-e', script]);
  assert.equal(r.code, 0, `GET ${path} on ${dh.host.label}: ${r.stderr}`);
  return r.stdout;
}


/** The container's init pid (changes when a restart policy restarts it). */
async function pidOf(dh: DockerHost, name: string): Promise<number> {
  return Number((await dh.docker(['inspect', '--format', '{{.State.Pid}}', name])).trim());
}

test('a container restarted by its restart policy comes back reachable, by address and by name', async () => {
  await runOnWeave(h(3), 'phoenix', ['--restart=always']);
  const before = await pidOf(h(3), 'phoenix');
  await timeToFirstReply(h(1), 'c1', 'phoenix');
  // Its main process dies (not `docker stop`, which would keep it down).
  const k = await h(3).host.exec('kill', ['-9', String(before)]);
  assert.equal(k.code, 0, k.stderr);
  const t0 = Date.now();
  const restarted = await pollUntil(async () => { const p = await pidOf(h(3), 'phoenix').catch(() => 0); return p > 0 && p !== before; }, 20_000, 100);
  assert.ok(restarted, 'Docker restarted the container');
  const ip = await containerIp(h(3), 'phoenix');
  const ms = await timeToFirstReply(h(1), 'c1', ip);
  await timeToFirstReply(h(1), 'c1', 'phoenix');
  process.stdout.write(`restarted container answers ${Date.now() - t0} ms after its process was killed (${ms} ms after it was back)\n`);
});

test('container mobility: the same address on another host answers at once (gratuitous ARP)', async () => {
  const ip = '10.32.99.99';
  await runOnWeave(h(2), 'mover', [`--ip=${ip}`]);
  await timeToFirstReply(h(1), 'c1', ip);
  await h(2).docker(['rm', '-f', 'mover']);
  await runOnWeave(h(3), 'mover', [`--ip=${ip}`]);
  // c1's ARP entry still names the old MAC; the new one announced itself.
  const ms = await timeToFirstReply(h(1), 'c1', ip, 3_000);
  process.stdout.write(`moved container answers ${ms} ms after it started on another host\n`);
  await h(3).docker(['rm', '-f', 'mover']);
});

test('a second weavemesh network: --ip honoured, own subnet, isolated from "weave"; multicast option honoured and checked', async () => {
  for (const i of [1, 2]) {
    // Internal: no second interface on Docker's gateway bridge, whose default route would
    // reach the other subnet through the host (weave expose), not through the weave network.
    await h(i).docker(['network', 'create', '-d', 'weavemesh', '--ipam-driver', 'weavemesh', '--subnet', '10.40.0.0/24', '--internal', '--opt', 'works.weave.multicast=false', 'net2']);
  }
  await runOnWeave(h(1), 'n2a', ['--ip=10.40.0.10'], ['sleep', '600'], 'net2');
  await runOnWeave(h(2), 'n2b', [], ['sleep', '600'], 'net2');
  assert.equal(await containerIp(h(1), 'n2a', 'net2'), '10.40.0.10');
  const b = await containerIp(h(2), 'n2b', 'net2');
  assert.match(b, /^10\.40\.0\.\d+$/);
  const routes = await h(2).docker(['exec', 'n2b', 'ip', 'route']);
  assert.doesNotMatch(routes, /224\.0\.0\.0\/4/, 'works.weave.multicast=false: no multicast route');
  await timeToFirstReply(h(1), 'n2a', b);
  // Different subnets do not meet (spec §1.8: isolation by subnet).
  const c2 = await containerIp(h(2), 'c2');
  const cross = await execIn(h(1), 'n2a', ['ping', '-c', '1', '-W', '1', c2]);
  assert.equal(cross.ok, false, `a net2 container cannot reach the weave container c2 (${c2}): ${cross.out}`);
  assert.doesNotMatch(await h(1).docker(['exec', 'n2a', 'ip', 'route']), /^default|10\.32\.0\.0\/16/m);
  const bad = await h(1).docker(['network', 'create', '-d', 'weavemesh', '--opt', 'works.weave.multicast=sometimes', 'net3']).then(() => '', (e: Error) => e.message);
  assert.match(bad, /unrecognized value "sometimes" for option works\.weave\.multicast/);
});

test('kill -9 of a router while containers run, relaunch: names and addresses are back', async () => {
  const ip1 = await containerIp(h(1), 'c1');
  const pid = Number((await h(1).host.exec('cat', [join(h(1).host.dir, 'state', 'weaver.pid')])).stdout.trim());
  assert.ok(pid > 0);
  process.kill(pid, 'SIGKILL');
  await pollUntil(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, 5_000, 50);
  const t0 = Date.now();
  await h(1).weave(['launch', '--nickname', 'h1', ...h(1).pluginFlags, '--ipalloc-default-subnet', DEFAULT_SUBNET, h(2).host.address, h(3).host.address]);
  // The address is still c1's (persisted) and its names are registered again.
  assert.ok(await ipOwned(h(1), ip1), `${ip1} still allocated after the restart`);
  const back = await pollUntil(async () => (await weave(h(2).host, ['dns-lookup', 'c1'], { env: h(2).env })).stdout.trim() === ip1, 10_000, 200);
  assert.ok(back, 'h2 resolves c1 again');
  await timeToFirstReply(h(2), 'c2', 'c1');
  process.stdout.write(`relaunched router: c1 resolvable and answering ${Date.now() - t0} ms after launch began\n`);
  // A new container on the relaunched host does not get c1's address.
  await runOnWeave(h(1), 'fresh');
  assert.notEqual(await containerIp(h(1), 'fresh'), ip1);
});

test('dockerd restarted: the watcher reconnects, drops names of containers that died meanwhile, the plugin keeps serving', async () => {
  const ip2 = await containerIp(h(2), 'c2');
  await h(2).dockerd.restart();
  // dockerd stopped c2 on the way down: its name must not outlive it.
  const gone = await pollUntil(async () => (await weave(h(1).host, ['dns-lookup', 'c2'], { env: h(1).env })).stdout.trim() === '', 15_000, 200);
  assert.ok(gone, `c2 (${ip2}) no longer resolves after dockerd restarted without it`);
  await runOnWeave(h(2), 'after');
  await timeToFirstReply(h(2), 'after', await containerIp(h(1), 'c1'));
  await timeToFirstReply(h(1), 'c1', 'after');
});

test('weave stop removes the "weave" network; launch without a reachable Docker says the plugin is off and why', async () => {
  const h3 = h(3);
  const ids = (await h3.docker(['ps', '-aq'])).trim().split('\n').filter(Boolean);
  if (ids.length > 0) await h3.docker(['rm', '-f', ...ids]);
  await h3.weave(['stop']);
  const nets = await h3.docker(['network', 'ls', '--format', '{{.Name}}']);
  assert.doesNotMatch(nets, /^weave$/m, nets);
  const env = { DOCKER_HOST: 'unix:///nonexistent/weave-test/docker.sock' };
  const r = await weave(h3.host, ['launch', '--nickname', 'h3', ...h3.pluginFlags, '--ipalloc-default-subnet', DEFAULT_SUBNET, h(1).host.address, h(2).host.address], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /the Docker plugin is off: Docker is not reachable at unix:\/\/\/nonexistent\/weave-test\/docker\.sock: ENOENT/);
  const status = await h3.weave(['status'], { env });
  assert.doesNotMatch(status, /plugin/);
  assert.equal(existsSync(join(h3.pluginDir, 'weavemesh.sock')), false, 'no plugin socket without Docker');
});
