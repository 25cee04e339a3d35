// The Docker API proxy against real dockerd (user-surface spec §1.12, §7.3):
// two simulated hosts, each with its own router (in a network namespace) and
// its own dockerd, the router's proxy in front of it. Plain `docker run`
// through the proxy puts containers on weave before their first instruction.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDockerd, importBusybox, type Dockerd } from './dockerd.js';
import { createTestbed, ipPattern, type Host, type Testbed } from '../netns/lib/testbed.js';
import { mustWeave, stopRouters, weave } from '../netns/lib/weave.js';
import { mustRun, runCommand, type CommandOptions } from '../support/exec.js';

interface Site {
  host: Host;
  dockerd: Dockerd;
  proxySocket: string;
  /** docker CLI through the proxy. */
  docker(args: readonly string[], opts?: CommandOptions): Promise<string>;
}

let bed: Testbed | undefined;
const sites: Site[] = [];
let image = '';
const RANGE = '10.2.0.0/16';
const DEFAULT_SUBNET = '10.2.0.0/24';

before(async () => {
  bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
  const daemons = await Promise.all([startDockerd(), startDockerd()]);
  for (const [i, host] of bed.hosts.entries()) {
    const dockerd = daemons[i];
    const proxySocket = join(host.dir, 'weave.sock');
    const proxyHost = `unix://${proxySocket}`;
    sites.push({
      host,
      dockerd,
      proxySocket,
      docker: (args, o = {}) => mustRun('docker', ['-H', proxyHost, ...args], { timeoutMs: 120_000, ...o }),
    });
  }
  image = (await Promise.all(sites.map((s) => importBusybox(s.dockerd))))[0];
  for (const s of sites) {
    const others = sites.filter((o) => o !== s).map((o) => o.host.address);
    await mustWeave(s.host, [
      'launch', '--nickname', s.host.label, '--ipalloc-range', RANGE, '--ipalloc-default-subnet', DEFAULT_SUBNET,
      '--proxy', '-H', `unix://${s.proxySocket}`, '--docker-api', s.dockerd.host, ...others,
      // The second host's proxy also rewrites inspect output with the weave address.
      ...(s === sites[1] ? ['--rewrite-inspect', '--hostname-from-label', 'hn', '--hostname-match', '^(.*)-x$', '--hostname-replacement', 'lbl-$1'] : []),
    ]);
  }
  // The bridge gets an address in the default subnet: weaveDNS (listening on all addresses
  // in the host's namespace) is reached there by attached containers.
  for (const s of sites) await mustWeave(s.host, ['expose']);
});

after(async () => {
  if (bed) {
    await stopRouters(bed.hosts);
    await bed.teardown();
  }
  await Promise.allSettled(sites.map((s) => s.dockerd.stop()));
});

function site(i: number): Site {
  const s = sites[i];
  assert.ok(s, 'the testbed did not start (see the before hook)');
  return s;
}

test('weave env / env --restore / config print the proxy address as Weave did', async () => {
  const s = site(0);
  const env = { DOCKER_HOST: s.dockerd.host };
  const t0 = Date.now();
  assert.equal(await mustWeave(s.host, ['env'], { env }), `export DOCKER_HOST=unix://${s.proxySocket} ORIG_DOCKER_HOST=${s.dockerd.host}\n`);
  // Already pointing at the proxy: no restore part, the line ends with a space.
  assert.equal(await mustWeave(s.host, ['env'], { env: { DOCKER_HOST: `unix://${s.proxySocket}` } }), `export DOCKER_HOST=unix://${s.proxySocket} \n`);
  assert.equal(await mustWeave(s.host, ['config']), `-H=unix://${s.proxySocket}\n`);
  assert.equal(await mustWeave(s.host, ['env', '--restore'], { env: { ORIG_DOCKER_HOST: s.dockerd.host } }), `DOCKER_HOST=${s.dockerd.host}\n`);
  const r = await weave(s.host, ['env', '--restore']);
  process.stdout.write(`five weave env/config calls: ${Date.now() - t0} ms\n`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^Nothing to restore\. This is most likely because there was no preceding invocation of 'eval \$\(weave env\)' in this shell\.\n$/);
});

test('a container has ethwe with its address when its first instruction runs', async () => {
  const s = site(0);
  // The command itself is the first instruction: no shell, no retry.
  const out = await s.docker(['run', '--rm', image, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'ethwe']);
  assert.match(out, /ethwe\s+inet 10\.2\.0\.\d+\/24/);
  const routes = await s.docker(['run', '--rm', image, 'ip', 'route', 'show', '224.0.0.0/4']);
  assert.match(routes, /^224\.0\.0\.0\/4 dev ethwe/m);
});

test('the waiter needs no shell: an image holding only a static busybox starts attached', async () => {
  const s = site(0);
  const tar = join(bed?.dir ?? '/tmp', 'noshell.tar');
  // One file, /bin/busybox: no /bin/sh, no libc, no applet links.
  await mustRun('tar', ['-cf', tar, '-C', '/', 'bin/busybox']);
  await s.docker(['import', tar, 'weave-test/noshell:latest']);
  const out = await s.docker(['run', '--rm', 'weave-test/noshell:latest', '/bin/busybox', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'ethwe']);
  assert.match(out, /ethwe\s+inet 10\.2\.0\.\d+\/24/);
  const missing = await runCommand('docker', ['-H', `unix://${s.proxySocket}`, 'run', '--rm', 'weave-test/noshell:latest', 'nosuchcmd']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr + missing.stdout, /exec: "nosuchcmd": executable file not found in \$PATH/);
});

test('containers on two hosts ping each other by name from their first instruction', async () => {
  const [a, b] = [site(0), site(1)];
  await a.docker(['run', '-d', '--name', 'pinged', image, 'sleep', '600']);
  const hosts = await a.docker(['exec', 'pinged', 'cat', '/etc/hosts']);
  const ip = /^(10\.2\.0\.\d+)\s+pinged\.weave\.local pinged$/m.exec(hosts)?.[1];
  assert.ok(ip, `the rewritten /etc/hosts names the container:\n${hosts}`);
  assert.equal(hosts, [
    '# created by Weave - BEGIN', '# container hostname', `${ip.padEnd(15)} pinged.weave.local pinged`, '',
    '# static names added with --add-host', '', '# default localhost entries',
    '127.0.0.1       localhost', '::1             ip6-localhost ip6-loopback', 'fe00::0         ip6-localnet',
    'ff00::0         ip6-mcastprefix', 'ff02::1         ip6-allnodes', 'ff02::2         ip6-allrouters',
    '# created by Weave - END', '', '',
  ].join('\n'));
  const started = Date.now();
  const out = await b.docker(['run', '--rm', '--name', 'pinger', image, 'ping', '-c', '1', '-W', '10', 'pinged.weave.local']);
  const ms = Date.now() - started;
  process.stdout.write(`docker run ... ping pinged.weave.local on the other host: first reply within ${ms} ms of docker run\n`);
  assert.match(out, new RegExp(`PING pinged\\.weave\\.local \\(${ipPattern(ip)}\\)`));
  assert.match(out, /1 packets transmitted, 1 packets received/);
  assert.ok(ms < 20_000, `docker run with a cross-host ping took ${ms} ms`);
});

test('weave attach --rewrite-hosts writes Weave\'s /etc/hosts with the --add-host lines; a namespace by path is refused', async () => {
  const a = site(0);
  // Started on dockerd directly, not through the proxy: only `weave attach` touches its /etc/hosts.
  const id = (await mustRun('docker', ['-H', a.dockerd.host, 'run', '-d', '--hostname', 'rh', '--domainname', 'weave.local', image, 'sleep', '600'])).trim();
  const env = { DOCKER_HOST: a.dockerd.host };
  const attached = await mustWeave(a.host, ['attach', '10.2.0.200/24', '--rewrite-hosts', '--add-host', 'static.name:10.9.9.9', '--add-host=other:10.9.9.8', id], { env });
  assert.equal(attached, '10.2.0.200\n');
  assert.equal(await mustRun('docker', ['-H', a.dockerd.host, 'exec', id, 'cat', '/etc/hosts']), [
    '# created by Weave - BEGIN', '# container hostname', '10.2.0.200      rh.weave.local rh', '',
    '# static names added with --add-host', '10.9.9.9        static.name', '10.9.9.8        other', '',
    '# default localhost entries',
    '127.0.0.1       localhost', '::1             ip6-localhost ip6-loopback', 'fe00::0         ip6-localnet',
    'ff00::0         ip6-mcastprefix', 'ff02::1         ip6-allnodes', 'ff02::2         ip6-allrouters',
    '# created by Weave - END', '', '',
  ].join('\n'));
  const byPath = await weave(a.host, ['attach', '10.2.0.201/24', '--rewrite-hosts', '--netns', '/proc/1/ns/net'], { env });
  assert.equal(byPath.code, 1);
  assert.match(byPath.stderr, /--rewrite-hosts needs a Docker container: a namespace given by --netns or --pid has no \/etc\/hosts/);
  const alone = await weave(a.host, ['attach', '10.2.0.201/24', '--add-host', 'x:10.9.9.7', id], { env });
  assert.notEqual(alone.code, 0);
  assert.match(alone.stderr, /--add-host only adds lines to the \/etc\/hosts that --rewrite-hosts writes/);
  const malformed = await weave(a.host, ['attach', '10.2.0.201/24', '--rewrite-hosts', '--add-host', 'nocolon', id], { env });
  assert.notEqual(malformed.code, 0);
  assert.match(malformed.stderr, /--add-host needs NAME:IP, got "nocolon"/);
  await mustRun('docker', ['-H', a.dockerd.host, 'rm', '-f', id]);
});

test('WEAVE_CIDR=net:10.2.1.0/24 containers reach each other and not the default subnet', async () => {
  const [a, b] = [site(0), site(1)];
  await a.docker(['run', '-d', '--name', 'iso1', '-e', 'WEAVE_CIDR=net:10.2.1.0/24', image, 'sleep', '600']);
  const iso1 = /inet (10\.2\.1\.\d+)\//.exec(await a.docker(['exec', 'iso1', 'ip', '-4', 'addr', 'show', 'ethwe']))?.[1];
  assert.ok(iso1, 'iso1 has an address in 10.2.1.0/24');
  await a.docker(['run', '-d', '--name', 'plain1', image, 'sleep', '600']);
  const plain1 = /inet (10\.2\.0\.\d+)\//.exec(await a.docker(['exec', 'plain1', 'ip', '-4', 'addr', 'show', 'ethwe']))?.[1];
  assert.ok(plain1, 'plain1 has an address in the default subnet');
  const same = await runCommand('docker', ['-H', `unix://${b.proxySocket}`, 'run', '--rm', '-e', 'WEAVE_CIDR=net:10.2.1.0/24', image, 'ping', '-c', '1', '-W', '5', iso1]);
  assert.equal(same.code, 0, `same subnet across hosts: ${same.stdout}${same.stderr}`);
  const other = await runCommand('docker', ['-H', `unix://${b.proxySocket}`, 'run', '--rm', '-e', 'WEAVE_CIDR=net:10.2.1.0/24', image, 'ping', '-c', '1', '-W', '2', plain1]);
  assert.notEqual(other.code, 0, 'a 10.2.1.0/24 container has no route to the default subnet');
  const none = await a.docker(['run', '--rm', '-e', 'WEAVE_CIDR=none', image, 'ip', '-o', 'link']);
  assert.doesNotMatch(none, /ethwe/, 'WEAVE_CIDR=none is left alone');
  const explicit = await a.docker(['run', '--rm', '-e', 'WEAVE_CIDR=ip:10.2.3.7/24 10.2.4.8/24', image, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'ethwe']);
  assert.match(explicit, /inet 10\.2\.3\.7\/24/);
  assert.match(explicit, /inet 10\.2\.4\.8\/24/);
  const hostNet = await runCommand('docker', ['-H', `unix://${a.proxySocket}`, 'run', '--rm', '--net=host', image, 'ip', '-o', 'link', 'show', 'ethwe']);
  assert.notEqual(hostNet.code, 0, '--net=host is left alone');
});

test('docker restart and a restart policy re-attach with the same address', async () => {
  const a = site(0);
  await a.docker(['run', '-d', '--name', 'restarted', image, 'sleep', '600']);
  const addrOf = async (name: string): Promise<string> => /inet (\S+)/.exec(await a.docker(['exec', name, 'ip', '-4', '-o', 'addr', 'show', 'ethwe']))?.[1] ?? '';
  const first = await addrOf('restarted');
  assert.match(first, /^10\.2\.0\.\d+\/24$/);
  await a.docker(['restart', '-t', '1', 'restarted']);
  assert.equal(await addrOf('restarted'), first);
  // Docker restarts this one by itself; each run prints its address as its first instruction.
  await a.docker(['run', '-d', '--name', 'policy', '--restart', 'on-failure:2', image, 'sh', '-c', 'ip -4 -o addr show dev ethwe; exit 3']);
  const logs = await pollLogs(a, 'policy', 3);
  const addrs = logs.map((l) => /inet (\S+)/.exec(l)?.[1]);
  assert.equal(addrs.length, 3);
  assert.ok(addrs.every((x) => x !== undefined && x === addrs[0]), `same address on every run: ${logs.join(' | ')}`);
});

async function pollLogs(s: Site, name: string, lines: number): Promise<string[]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const out = (await s.docker(['logs', name])).split('\n').filter((l) => l.includes('ethwe'));
    if (out.length >= lines || Date.now() > deadline) return out;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function sha(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

test('stdin/stdout streams of run -i, exec -i and attach are byte-identical through the proxy', async () => {
  const a = site(0);
  const payload = randomBytes(3 * 1024 * 1024).toString('base64');
  const direct = await a.dockerd.docker(['run', '-i', '--rm', '--network', 'none', image, 'cat'], { input: payload });
  const proxied = await a.docker(['run', '-i', '--rm', image, 'cat'], { input: payload });
  assert.equal(sha(direct), sha(payload));
  assert.equal(sha(proxied), sha(payload));
  await a.docker(['run', '-d', '--name', 'streams', image, 'sleep', '600']);
  const execOut = await a.docker(['exec', '-i', 'streams', 'cat'], { input: payload });
  assert.equal(sha(execOut), sha(payload));
  const binary = await a.docker(['exec', 'streams', 'sha256sum', '/bin/busybox']);
  assert.equal(binary, await a.dockerd.docker(['exec', 'streams', 'sha256sum', '/bin/busybox']));
  // start -a -i attaches (hijacked, 101) before starting; closing stdin ends `cat`.
  await a.docker(['create', '-i', '--name', 'echoer', image, 'cat']);
  const attached = await a.docker(['start', '-a', '-i', 'echoer'], { input: payload, timeoutMs: 60_000 });
  assert.equal(sha(attached), sha(payload));
});

test('a 100 MB docker cp through the proxy arrives intact', async () => {
  const a = site(0);
  const file = join(bed?.dir ?? '/tmp', 'big.bin');
  const data = randomBytes(100 * 1024 * 1024);
  writeFileSync(file, data);
  await a.docker(['run', '-d', '--name', 'copied', image, 'sleep', '600']);
  const started = Date.now();
  await a.docker(['cp', file, 'copied:/big.bin']);
  const inside = (await a.docker(['exec', 'copied', 'sha256sum', '/big.bin'])).split(/\s+/)[0];
  process.stdout.write(`docker cp of 100 MB through the proxy: ${Date.now() - started} ms\n`);
  assert.equal(inside, sha(data));
});

test('errors map as Weave\'s; a failed attach kills the container and fails its start', async () => {
  const a = site(0);
  const missing = await runCommand('docker', ['-H', `unix://${a.proxySocket}`, 'start', 'nosuch']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /No such container: nosuch/);
  // Outside the allocation range: IPAM refuses, so the container must not run unattached.
  const bad = await runCommand('docker', ['-H', `unix://${a.proxySocket}`, 'run', '-d', '--name', 'unattachable', '-e', 'WEAVE_CIDR=net:192.168.7.0/24', image, 'sleep', '600']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /attaching container .* failed: .*outside the allocation range/);
  assert.equal((await a.docker(['inspect', '-f', '{{.State.Running}}', 'unattachable'])).trim(), 'false');
});

test('--rewrite-inspect shows the weave address and MAC in docker inspect', async () => {
  const b = site(1);
  await b.docker(['run', '-d', '--name', 'inspected', image, 'sleep', '600']);
  const [addr, mac] = (await b.docker(['exec', 'inspected', 'sh', '-c', 'ip -4 -o addr show dev ethwe; cat /sys/class/net/ethwe/address'])).split('\n');
  const cidr = /inet (\S+)/.exec(addr)?.[1] ?? '';
  const shown = (await b.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}/{{.NetworkSettings.IPPrefixLen}} {{.NetworkSettings.MacAddress}}', 'inspected'])).trim();
  assert.equal(shown, `${cidr} ${mac.trim()}`);
  // Direct to the daemon: Docker's own (empty, bridge none) values.
  assert.equal((await b.dockerd.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'inspected'])).trim(), '');
});

test('50 concurrent docker run through the proxy all start attached', async () => {
  const a = site(0);
  const started = Date.now();
  const outs = await Promise.all(Array.from({ length: 50 }, () =>
    a.docker(['run', '--rm', image, 'ip', '-4', '-o', 'addr', 'show', 'dev', 'ethwe'], { timeoutMs: 180_000 })));
  process.stdout.write(`50 concurrent docker run --rm through the proxy: ${Date.now() - started} ms\n`);
  const addrs = outs.map((o) => /inet (10\.2\.0\.\d+)\//.exec(o)?.[1]);
  assert.ok(addrs.every((x) => x !== undefined), `every container had ethwe: ${outs.filter((o) => !/inet/.test(o)).join(' | ')}`);
});

test('hostname from a label rewritten by --hostname-match/--hostname-replacement; weaveDNS as nameserver', async () => {
  const b = site(1);
  const exposed = /inet (10\.2\.0\.\d+)\//.exec((await b.host.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', 'weave'])).stdout)?.[1];
  assert.ok(exposed, 'the bridge of h2 has its exposed address');
  const out = await b.docker(['run', '--rm', '--name', 'ignored-name', '--label', 'hn=web-x', image, 'sh', '-c', 'hostname; cat /etc/resolv.conf']);
  const [hostname, ...resolv] = out.split('\n');
  assert.equal(hostname, 'lbl-web');
  assert.ok(resolv.includes(`nameserver ${exposed}`), resolv.join('\n'));
  // Search "." (Docker then writes no search line): the domain comes from Domainname.
  await b.docker(['create', '--name', 'dnschk', image, 'true']);
  assert.equal((await b.docker(['inspect', '-f', '{{json .HostConfig.Dns}} {{json .HostConfig.DnsSearch}} {{.Config.Hostname}} {{.Config.Domainname}}', 'dnschk'])).trim(),
    `["${exposed}"] ["."] dnschk weave.local`);
  // A name too long for `<name>.<domain>` in 64 characters is not used as the hostname.
  const long = 'n'.repeat(60);
  const shown = await b.docker(['run', '--rm', '--name', long, image, 'hostname']);
  assert.notEqual(shown.trim(), long);
});
