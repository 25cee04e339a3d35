// A Docker host's networking, as Weave 2.8 users met it (user-surface spec
// §6.3, §4.4): iptables' FORWARD policy is DROP (Docker sets it), docker0
// exists without carrier on a fresh host, and containers on docker0 must not
// reach weave subnets. One host uses the nf_tables-backed iptables, the other
// the legacy one; the overlay must work across them, and `weave reset`
// takes our rules away again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectionsMatch, mustExec, mustPing, mustWeave, withWeaveBed, type Host,
} from './lib/index.js';

const DOCKER_BRIDGE_IP = '172.17.0.1';
/** How long a user would wait for a fresh container to reach one on another host. */
const CROSS_HOST_MS = 15_000;

/** What Docker leaves on a fresh host: FORWARD policy DROP, its own accept for docker0, docker0 without ports. */
async function makeDockerHost(h: Host, iptables: 'iptables-nft' | 'iptables-legacy'): Promise<void> {
  await h.run(`${iptables} -P FORWARD DROP && ${iptables} -A FORWARD -i docker0 ! -o docker0 -j ACCEPT`).then((r) => assert.equal(r.code, 0, r.stderr));
  await mustExec('ip', ['-n', h.namespace, 'link', 'add', 'docker0', 'type', 'bridge']);
  await mustExec('ip', ['-n', h.namespace, 'addr', 'add', `${DOCKER_BRIDGE_IP}/16`, 'dev', 'docker0']);
  await mustExec('ip', ['-n', h.namespace, 'link', 'set', 'docker0', 'up']);
  // A bridge whose only port has no carrier has none either (a port-less bridge may report one).
  await mustExec('ip', ['-n', h.namespace, 'link', 'add', 'dockidle', 'type', 'veth', 'peer', 'name', 'dockidle-p']);
  await mustExec('ip', ['-n', h.namespace, 'link', 'set', 'dockidle', 'master', 'docker0', 'up']);
  await mustExec('ip', ['netns', 'exec', h.namespace, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
}

async function forwardRules(h: Host, iptables: string): Promise<string[]> {
  const r = await h.exec(iptables, ['-w', '-S', 'FORWARD']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n');
}

test('FORWARD policy DROP (iptables-nft and iptables-legacy hosts), docker0 without carrier, docker0 kept out of weave', async () => {
  await withWeaveBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await makeDockerHost(h1, 'iptables-nft');
    await makeDockerHost(h2, 'iptables-legacy');
    assert.match((await h1.exec('ip', ['link', 'show', 'docker0'])).stdout, /NO-CARRIER/, 'docker0 has no carrier yet');

    await mustWeave(h1, ['launch', '--no-fastdp', h2.address]);
    await mustWeave(h2, ['launch', '--no-fastdp', h1.address]);
    assert.equal(await mustWeave(h1, ['dns-args']), `--dns=${DOCKER_BRIDGE_IP} --dns-search=weave.local.`, 'weaveDNS listens on docker0 although it has no carrier');
    await connectionsMatch(h1, /established sleeve/);

    const ourRules = (bridge: string): string[] => [
      `-A FORWARD -i docker0 -o ${bridge} -j DROP`,
      `-A FORWARD -i ${bridge} -o ${bridge} -j ACCEPT`,
      `-A FORWARD -o ${bridge} -j WEAVE-EXPOSE`,
      `-A FORWARD -i ${bridge} ! -o ${bridge} -j ACCEPT`,
      `-A FORWARD -o ${bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
    ];
    assert.deepEqual((await forwardRules(h1, 'iptables-nft')).slice(1, 6), ourRules('weave'), 'iptables-nft FORWARD starts with our rules');
    assert.deepEqual((await forwardRules(h2, 'iptables-legacy')).slice(1, 6), ourRules('weave'), 'iptables-legacy FORWARD starts with our rules');

    const c1 = await h1.addContainer('c1');
    const c2 = await h2.addContainer('c2');
    const ip1 = (await mustWeave(h1, ['attach', '--netns', c1.netnsPath])).trim();
    const ip2 = (await mustWeave(h2, ['attach', '--netns', c2.netnsPath])).trim();
    const started = Date.now();
    await mustPing(c1, ip2, 'c1 on the iptables-nft host reaches c2 on the iptables-legacy host', { timeoutMs: CROSS_HOST_MS });
    await mustPing(c2, ip1, 'and back', { timeoutMs: CROSS_HOST_MS });
    process.stdout.write(`# cross-host ping through FORWARD DROP hosts after ${Date.now() - started} ms\n`);

    // A container on docker0 cannot reach weave subnets, even with the bridge exposed (masqueraded).
    await mustWeave(h1, ['expose']);
    assert.ok(await h1.ping(ip1), 'the host reaches c1 once exposed');
    const d = await h1.addContainer('dockerc');
    await mustExec('ip', ['-n', h1.namespace, 'link', 'add', 'vethdock', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', d.namespace]);
    await mustExec('ip', ['-n', h1.namespace, 'link', 'set', 'vethdock', 'master', 'docker0', 'up']);
    await mustExec('ip', ['-n', d.namespace, 'addr', 'add', '172.17.0.2/16', 'dev', 'eth0']);
    await mustExec('ip', ['-n', d.namespace, 'link', 'set', 'eth0', 'up']);
    await mustExec('ip', ['-n', d.namespace, 'route', 'add', 'default', 'via', DOCKER_BRIDGE_IP]);
    assert.ok(await d.ping(DOCKER_BRIDGE_IP, { count: 1, waitSeconds: 2 }), 'the docker0 container reaches its gateway');
    assert.equal(await d.ping(ip1, { count: 2, waitSeconds: 1 }), false, 'but not c1 on the weave bridge');

    await mustWeave(h1, ['reset']);
    const left = (await forwardRules(h1, 'iptables-nft')).filter((l) => /weave|WEAVE/.test(l));
    assert.deepEqual(left, [], 'weave reset removes our FORWARD rules');
    assert.notEqual((await h1.exec('iptables-nft', ['-w', '-S', 'WEAVE-EXPOSE'])).code, 0, 'and the expose chain');
  });
});
