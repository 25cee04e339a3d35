// The policy controller against a recording enforcer (pure logic; the kernel
// side is tested in test/netns/policy-*.test.ts): tables load only where the
// rules changed, a workload nothing isolates gets only a table deletion, a
// vanished namespace is forgotten without an error, a failed load is counted
// and retried, a full resync reloads everything, and blocked packets are
// logged with the policies that isolate the workload and exported as metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyController, type PolicyLog, type PolicySnapshot } from '../../controlplane/policy/controller.js';
import type { BlockedCounts, LoadResult, PolicyEnforcer } from '../../controlplane/policy/enforcer.js';
import { MetricsRegistry } from '../../controlplane/api/metrics.js';
import { NETNS_ANNOTATION } from '../../controlplane/policy/cluster.js';
import type { Pod } from '../../controlplane/policy/types.js';
import { namespace, pod, policy } from './policy-support.js';

class RecordingEnforcer implements PolicyEnforcer {
  loads: { netns: string; script: string }[] = [];
  tables = new Map<string, string>();
  gone = new Set<string>();
  failing = new Set<string>();
  blocked = new Map<string, BlockedCounts>();
  async load(netns: string, script: string): Promise<LoadResult> {
    await Promise.resolve();
    if (this.gone.has(netns)) return 'netns-gone';
    if (this.failing.has(netns)) throw new Error('nft: simulated failure');
    this.loads.push({ netns, script });
    if (/chain/.test(script)) this.tables.set(netns, script);
    else this.tables.delete(netns);
    return 'loaded';
  }
  async readBlocked(netns: string): Promise<BlockedCounts | undefined> {
    await Promise.resolve();
    return this.gone.has(netns) ? undefined : (this.blocked.get(netns) ?? { byPort: new Map(), total: new Map() });
  }
}

class RecordingLog implements PolicyLog {
  lines: { obj: object; msg: string }[] = [];
  info(obj: object, msg: string): void {
    this.lines.push({ obj, msg });
  }
  warn(obj: object, msg: string): void {
    this.lines.push({ obj, msg });
  }
}

function local(p: Pod, netns: string): Pod {
  p.metadata.annotations = { [NETNS_ANNOTATION]: netns };
  return p;
}

function snapshot(extraPolicies = true, labelB = 'b'): PolicySnapshot {
  return {
    namespaces: [namespace('default')],
    pods: [
      local(pod('default', 'a', '10.32.0.1', { app: 'a' }), '/run/netns/a'),
      local(pod('default', 'b', '10.32.0.2', { app: labelB }), '/run/netns/b'),
      pod('default', 'remote', '10.32.0.3', { app: 'b' }),
    ],
    policies: extraPolicies ? [policy('default', 'only-b', { podSelector: { matchLabels: { app: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'b' } } }] }] })] : [],
  };
}

function setup(): { enforcer: RecordingEnforcer; log: RecordingLog; controller: PolicyController } {
  const enforcer = new RecordingEnforcer();
  const log = new RecordingLog();
  return { enforcer, log, controller: new PolicyController({ enforcer, log }) };
}

test('first sync loads every local workload (full resync); later syncs only what changed', async () => {
  const { enforcer, controller } = setup();
  const first = await controller.update(snapshot());
  assert.deepEqual({ workloads: first.workloads, loaded: first.loaded, unchanged: first.unchanged }, { workloads: 2, loaded: 2, unchanged: 0 });
  assert.deepEqual([...enforcer.tables.keys()], ['/run/netns/a'], 'only the isolated workload has a table');
  assert.match(enforcer.tables.get('/run/netns/a') ?? '', /10\.32\.0\.2, 10\.32\.0\.3|10\.32\.0\.2-10\.32\.0\.3/);
  enforcer.loads = [];
  const same = await controller.update(snapshot());
  assert.equal(same.loaded, 0);
  assert.equal(enforcer.loads.length, 0, 'an unchanged state loads nothing');
  // b changes label: a's peer set changes; b itself stays without a table but is not reloaded... unless its script changes.
  await controller.update(snapshot(true, 'other'));
  assert.deepEqual(enforcer.loads.map((l) => l.netns), ['/run/netns/a']);
  assert.doesNotMatch(enforcer.tables.get('/run/netns/a') ?? '', /10\.32\.0\.2[ ,-]/, 'b left the peer set');
  enforcer.loads = [];
  await controller.resync();
  assert.deepEqual(enforcer.loads.map((l) => l.netns).sort(), ['/run/netns/a', '/run/netns/b'], 'a full resync reloads every table');
});

test('policy removed: the table goes; pod removed while its netns lingers: its table is deleted', async () => {
  const { enforcer, controller } = setup();
  await controller.update(snapshot());
  await controller.update(snapshot(false));
  assert.equal(enforcer.tables.size, 0, 'no policy, no table (weaveworks/weave#3761)');
  await controller.update(snapshot());
  const s = snapshot();
  s.pods = s.pods.filter((p) => p.metadata.name !== 'a');
  enforcer.loads = [];
  await controller.update(s);
  assert.deepEqual(enforcer.loads.map((l) => l.netns), ['/run/netns/a']);
  assert.equal(enforcer.tables.size, 0);
});

test('a namespace that vanished is forgotten; a failing load is counted and retried on the next sync', async () => {
  const { enforcer, controller, log } = setup();
  enforcer.gone.add('/run/netns/b');
  enforcer.failing.add('/run/netns/a');
  const stats = await controller.update(snapshot());
  assert.equal(stats.errors, 1);
  assert.ok(log.lines.some((l) => /cannot load policy table/.test(l.msg)));
  assert.match(await new MetricsRegistry().render(controller.metricFamilies()), /^weavenpc_policy_enforcement_errors 1$/m);
  enforcer.failing.clear();
  const retry = await controller.update(snapshot());
  assert.equal(retry.loaded, 1, 'the failed table is loaded on the next sync even though the state did not change');
  assert.ok(enforcer.tables.has('/run/netns/a'));
});

test('concurrent updates are coalesced and each resolves after a sync that saw it', async () => {
  const { enforcer, controller } = setup();
  const results = await Promise.all([controller.update(snapshot(false)), controller.update(snapshot()), controller.update(snapshot())]);
  assert.equal(results.length, 3);
  assert.ok(enforcer.tables.has('/run/netns/a'), 'the last snapshot wins');
  assert.ok(enforcer.loads.length <= 4, `at most two syncs ran (${enforcer.loads.length} loads)`);
});

test('blocked packets: logged once per poll with the isolating policy; counted by protocol and port; counter reset after reload', async () => {
  const { enforcer, controller, log } = setup();
  await controller.update(snapshot());
  enforcer.blocked.set('/run/netns/a', { byPort: new Map([['ingress tcp 80', 3], ['ingress udp 53', 1]]), total: new Map([['ingress', 4]]) });
  await controller.pollBlocked();
  const line = log.lines.find((l) => /blocked ingress connections of default\/a/.test(l.msg));
  assert.ok(line, 'a log line for the blocked connections');
  assert.match(line.msg, /isolated by default\/only-b/);
  assert.deepEqual((line.obj as { blocked: string[] }).blocked.sort(), ['tcp/80 x3', 'udp/53 x1']);
  log.lines = [];
  await controller.pollBlocked();
  assert.equal(log.lines.length, 0, 'nothing new, nothing logged');
  enforcer.blocked.set('/run/netns/a', { byPort: new Map([['ingress tcp 80', 5]]), total: new Map() });
  await controller.pollBlocked();
  enforcer.blocked.set('/run/netns/a', { byPort: new Map([['ingress tcp 80', 2]]), total: new Map() });
  await controller.pollBlocked();
  const text = await new MetricsRegistry().render(controller.metricFamilies());
  assert.match(text, /^weavenpc_blocked_connections_total\{dport="80",protocol="tcp"\} 7$/m, '3 + 2 + 2 after the counter restarted');
  assert.match(text, /^weavenpc_blocked_connections_total\{dport="53",protocol="udp"\} 1$/m);
});

test("the host's own addresses may always reach an isolated pod (its resident node)", async () => {
  const enforcer = new RecordingEnforcer();
  const controller = new PolicyController({ enforcer, log: new RecordingLog(), hostAddresses: () => [0x0a2000fe] });
  await controller.update(snapshot());
  assert.match(enforcer.tables.get('/run/netns/a') ?? '', /set ingress-any \{ type ipv4_addr; flags interval; elements = \{ 10\.32\.0\.2-10\.32\.0\.3, 10\.32\.0\.254 \}/);
  assert.equal(enforcer.tables.has('/run/netns/b'), false, 'still no table where nothing isolates');
});
