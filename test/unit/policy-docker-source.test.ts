// Containers as pods (controlplane/policy/docker-source.ts): which networks are
// weave's, what a container on them becomes, and how they join the directory's objects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NETNS_ANNOTATION } from '../../controlplane/policy/cluster.js';
import { containerPods, isWeaveDriver, withContainers } from '../../controlplane/policy/docker-source.js';
import type { ContainerInspect } from '../../controlplane/docker/engine-client.js';

function inspect(over: Partial<ContainerInspect['State']> = {}): ContainerInspect {
  const ep = (id: string, ip: string) => ({ NetworkID: id, EndpointID: `ep-${id}`, IPAddress: ip, IPPrefixLen: 12, MacAddress: '' });
  return {
    Id: 'f'.repeat(64), Name: '/web',
    State: { Status: 'running', Running: true, Pid: 4242, ...over },
    Config: { Hostname: 'web', Domainname: '', Labels: { app: 'web', 'com.docker.compose.service': 'web' } },
    HostConfig: { NetworkMode: 'weave' },
    NetworkSettings: { Networks: { weave: ep('n1', '10.32.0.5'), bridge: ep('n2', '172.17.0.2'), blue: ep('n3', '10.40.0.9') } },
  };
}

test("weave's Docker drivers: the legacy plugin's and the managed plugin", () => {
  for (const d of ['weave', 'weavemesh', 'weaveworks/net-plugin:latest_release', 'weaveworks/net-plugin:2.8.1', 'net-plugin']) assert.ok(isWeaveDriver(d), d);
  for (const d of ['bridge', 'overlay', 'macvlan', 'weavenet', 'other/net-plugins']) assert.ok(!isWeaveDriver(d), d);
});

test('a running container is one pod per weave network: its labels, the network as namespace, its address and init netns', () => {
  const pods = containerPods(inspect(), new Map([['n1', 'weave'], ['n3', 'blue']]), '/host/proc');
  assert.deepEqual(pods.map((p) => [p.metadata.namespace, p.metadata.name, p.status?.podIP]), [['weave', 'web', '10.32.0.5'], ['blue', 'web', '10.40.0.9']]);
  assert.deepEqual(pods[0]?.metadata.labels, { app: 'web', 'com.docker.compose.service': 'web' });
  assert.equal(pods[0]?.metadata.annotations?.[NETNS_ANNOTATION], '/host/proc/4242/ns/net');
  assert.deepEqual(containerPods(inspect({ Running: false, Pid: 0 }), new Map([['n1', 'weave']])), [], 'a stopped container is no pod');
  assert.deepEqual(containerPods(inspect(), new Map()), [], 'a container on no weave network is no pod');
});

test("the directory's objects plus containers: each weave network a namespace unless the directory labels it", () => {
  const dir = { namespaces: [{ metadata: { name: 'weave', labels: { env: 'prod' } } }], pods: [], policies: [] };
  const pods = containerPods(inspect(), new Map([['n1', 'weave'], ['n3', 'blue']]));
  const merged = withContainers(dir, pods, ['blue', 'weave']);
  assert.deepEqual(merged.namespaces.map((n) => [n.metadata.name, n.metadata.labels]), [['weave', { env: 'prod' }], ['blue', undefined]]);
  assert.equal(merged.pods.length, 2);
});
