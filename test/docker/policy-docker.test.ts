// Network policy for Docker users, against real dockerd and the router's Docker
// plugin: `docker run --net=weave -l app=...` containers stand in for pods
// (labels are pod labels, the Docker network `weave` is their namespace) and
// weave-npc --docker takes NetworkPolicies from a directory. A container
// started after weave-npc is covered from its start event; a removed one
// leaves nothing behind. Each container has a probe agent in its network
// namespace (nsenter), an echo server that also tries connections when asked
// over a unix socket, so the containers' own tables decide, and a verdict is
// timed from when its attempt began, not from when a prober process started.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil, type SpawnedProcess } from '../netns/lib/exec.js';
import { askProbeAgent } from '../netns/lib/probe-agent-client.js';
import { createPluginBed, launchPluginMesh, containerIp, type DockerHost, type PluginBed } from './lib/plugin-bed.js';

const PROBE = fileURLToPath(new URL('../netns/lib/policy-probe.js', import.meta.url));
const NPC = fileURLToPath(new URL('../../../bin/weave-npc', import.meta.url));
/** From `docker run` returning (or a policy file written) to its verdicts in force, as a user would wait. */
const POLICY_BOUND_MS = 5_000;
const PROBE_TIMEOUT_MS = 700;

let pb: PluginBed | undefined;
let npc: SpawnedProcess | undefined;
const agents: SpawnedProcess[] = [];

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
  for (const a of agents) a.kill();
  await pb?.teardown();
});

async function pidOf(name: string): Promise<number> {
  return Number((await dh().docker(['inspect', '--format', '{{.State.Pid}}', name])).trim());
}

/** The unix socket of a container's probe agent (a host path: reachable from outside its network namespace). */
function agentSocket(name: string): string {
  return join(dh().host.dir, `probe-${name}.sock`);
}

/** Starts a container and its probe agent (a TCP echo server on port 80 that probes when asked); `ran` hears when `docker run` returned. */
async function run(name: string, labels: string[], ran: (at: number) => void = () => undefined): Promise<string> {
  await dh().docker(['run', '-d', '--name', name, '--net=weave', ...labels.flatMap((l) => ['-l', l]), (pb as PluginBed).image, 'sleep', '600']);
  ran(Date.now());
  const agent = dh().host.spawn('nsenter', [`--net=/proc/${await pidOf(name)}/ns/net`, process.execPath, PROBE, 'serve', JSON.stringify({ tcp: [80], control: agentSocket(name) })]);
  agents.push(agent);
  assert.ok(await pollUntil(() => agent.output().includes('ready'), 10_000, 20), `probe agent in ${name} ready:\n${agent.output()}`);
  return containerIp(dh(), name);
}

/** Whether `from` (a container name) connects to `to`:80 and gets its echo, tried by its agent. */
async function reaches(from: string, to: string): Promise<boolean> {
  return (await askProbeAgent(agentSocket(from), [{ to, protocol: 'tcp', port: 80 }], PROBE_TIMEOUT_MS))[0] === true;
}

/**
 * Probes until `from` -> `to`:80 is as wanted; returns ms from `since` to the start of the first
 * attempt that found it so (a blocked verdict takes the probe's timeout to arrive) and asserts the bound.
 */
async function becomes(from: string, to: string, want: boolean, what: string, since: number): Promise<number> {
  let inForceAt = 0;
  const ok = await pollUntil(async () => {
    const attempt = Date.now();
    if ((await reaches(from, to)) !== want) return false;
    inForceAt = attempt;
    return true;
  }, POLICY_BOUND_MS + 2_000, 100);
  assert.ok(ok, `${what}: ${from} -> ${to}:80 should be ${want ? 'reached' : 'blocked'}\nweave-npc:\n${npc?.output().slice(-3000)}`);
  const took = inForceAt - since;
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
  let t0 = 0;
  await run('client2', ['app=client'], (at) => (t0 = at));
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
