// Network policy for Docker users, against real dockerd and the router's Docker
// plugin: `docker run --net=weave -l app=...` containers stand in for pods
// (labels are pod labels, the Docker network `weave` is their namespace) and
// weave-npc --docker takes NetworkPolicies from a directory. A container
// started after weave-npc is covered from its start event; a removed one
// leaves nothing behind. Probes and servers run in the containers' network
// namespaces (nsenter), so the containers' own tables decide.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil, type SpawnedProcess } from '../netns/lib/exec.js';
import { createPluginBed, launchPluginMesh, containerIp, type DockerHost, type PluginBed } from './lib/plugin-bed.js';

const PROBE = fileURLToPath(new URL('../netns/lib/policy-probe.js', import.meta.url));
const NPC = fileURLToPath(new URL('../../../bin/weave-npc', import.meta.url));
/** From `docker run` returning (or a policy file written) to its verdicts in force, as a user would wait. */
const POLICY_BOUND_MS = 5_000;
const PROBE_TIMEOUT_MS = 700;

let pb: PluginBed | undefined;
let npc: SpawnedProcess | undefined;
const servers: SpawnedProcess[] = [];

function dh(): DockerHost {
  assert.ok(pb, 'the plugin testbed did not start (see the before hook)');
  return pb.hosts[0] as DockerHost;
}

before(async () => {
  pb = await createPluginBed(1);
  await launchPluginMesh(pb.hosts);
});
after(async () => {
  npc?.kill();
  for (const s of servers) s.kill();
  await pb?.teardown();
});

async function pidOf(name: string): Promise<number> {
  return Number((await dh().docker(['inspect', '--format', '{{.State.Pid}}', name])).trim());
}

async function run(name: string, labels: string[]): Promise<string> {
  await dh().docker(['run', '-d', '--name', name, '--net=weave', ...labels.flatMap((l) => ['-l', l]), (pb as PluginBed).image, 'sleep', '600']);
  return containerIp(dh(), name);
}

/** A TCP echo server on port 80 in the container's network namespace. */
async function serve(name: string): Promise<void> {
  const s = dh().host.spawn('nsenter', [`--net=/proc/${await pidOf(name)}/ns/net`, process.execPath, PROBE, 'serve', JSON.stringify({ tcp: [80] })]);
  servers.push(s);
  assert.ok(await pollUntil(() => s.output().includes('ready'), 10_000, 20), `server in ${name} ready:\n${s.output()}`);
}

/** Whether `from` (a container name) connects to `to`:80 and gets its echo. */
async function reaches(from: string, to: string): Promise<boolean> {
  const r = await dh().host.exec('nsenter', [`--net=/proc/${await pidOf(from)}/ns/net`, process.execPath, PROBE, 'probe', JSON.stringify([{ to, protocol: 'tcp', port: 80 }]), String(PROBE_TIMEOUT_MS)]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as boolean[])[0] === true;
}

async function becomes(from: string, to: string, want: boolean, what: string, since: number): Promise<number> {
  const ok = await pollUntil(async () => (await reaches(from, to)) === want, POLICY_BOUND_MS + 2_000, 100);
  const took = Date.now() - since;
  assert.ok(ok, `${what}: ${from} -> ${to}:80 should be ${want ? 'reached' : 'blocked'}\nweave-npc:\n${npc?.output().slice(-3000)}`);
  assert.ok(took <= POLICY_BOUND_MS, `${what} within ${POLICY_BOUND_MS} ms (took ${took} ms)`);
  return took;
}

function writeAtomically(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

const WEB_FROM_CLIENTS = {
  apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'web-from-clients', namespace: 'weave' },
  spec: { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ protocol: 'TCP', port: 80 }] }] },
};

test('docker run --net=weave -l app=...: container labels select, the network is the namespace; new and removed containers follow events', async () => {
  const web = await run('web', ['app=web']);
  const client = await run('client', ['app=client', 'tier=front']);
  await run('other', ['app=other']);
  await serve('web');
  await serve('client');
  assert.ok(await reaches('other', web), 'no policy yet: other reaches web');

  const dir = join(dh().host.dir, 'policy');
  mkdirSync(dir, { recursive: true });
  writeAtomically(join(dir, 'web.json'), JSON.stringify(WEB_FROM_CLIENTS));
  const started = Date.now();
  npc = dh().host.spawn(process.execPath, [NPC, '--policy-dir', dir, '--docker', '--docker-api', dh().dockerd.host, '--metrics-addr', '']);
  const took = await becomes('other', web, false, 'web isolated: other (app=other) blocked', started);
  process.stdout.write(`# policy on Docker containers in force ${took} ms after weave-npc started\n`);
  assert.ok(await reaches('client', web), 'client (app=client) reaches web');
  assert.ok(await reaches('web', client), 'web is isolated for ingress only: it reaches client');
  assert.match(npc.output(), /"pods":3\b/, 'three containers, three pods');

  // A container started now is covered from its start event on.
  const t0 = Date.now();
  await run('client2', ['app=client']);
  const ms = await becomes('client2', web, true, 'a new app=client container reaches web', t0);
  process.stdout.write(`# new container allowed ${ms} ms after docker run returned\n`);
  await run('intruder', ['app=intruder']);
  assert.equal(await reaches('intruder', web), false, 'a new container without the label is blocked');

  // The policy changes with the file: now only tier=front clients.
  const t1 = Date.now();
  writeAtomically(join(dir, 'web.json'), JSON.stringify({
    ...WEB_FROM_CLIENTS,
    spec: { ...WEB_FROM_CLIENTS.spec, ingress: [{ from: [{ podSelector: { matchLabels: { tier: 'front' } } }] }] },
  }));
  await becomes('client2', web, false, 'client2 has no tier=front label', t1);
  assert.ok(await reaches('client', web), 'client (tier=front) still does');

  // A removed container: its pod goes; nothing breaks for the rest.
  await dh().docker(['rm', '-f', 'client2']);
  assert.ok(await pollUntil(() => /"reason":"containers changed".*"pods":4\b/.test(npc?.output().split('\n').slice(-5).join('\n') ?? ''), 5_000, 50), `weave-npc saw client2 go:\n${npc.output().slice(-2000)}`);
  assert.ok(await reaches('client', web), 'client still reaches web');
  assert.equal(await reaches('other', web), false, 'other still blocked');
});
