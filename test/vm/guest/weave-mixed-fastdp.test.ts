// Runs INSIDE the kernel lab VM: routers with different data planes in one
// mesh. An OVS fastdp router and an eBPF fastdp router (WEAVE_FASTDP_DATAPATH=bpf
// on the same kernel) speak the same VXLAN (wire spec §6.2 VNI layout, §6.4
// heartbeats), so their connection runs on fastdp and container traffic stays
// in the kernel on both sides: OVS flow hits grow while misses stay flat, and
// the eBPF programs count the frames they forwarded while only heartbeats go
// up to userspace. An OVS router and a --no-fastdp router meet on the sleeve
// (spec §5.9), and containers behind them still reach each other.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createTestbed, execCommand, runIperfClient, startIperfServer, type Container, type Host, type Testbed } from '../../netns/lib/index.js';
import { ensurePinDir } from '../../../dataplane/bpf/bpffs.js';
import { deliveredFromTunnel, pinnedCounters } from '../../netns/lib/bpf-bed.js';
import type { Flow } from '../../../dataplane/ovs/index.js';
import { connectionsMatch, datapathState, loadKernelModules, mustPing, weave, withRouterLogs } from './weave-fastdp-harness.js';

before(() => loadKernelModules());

/** Per-host launch environment: the eBPF host gets its datapath kind and a pin dir that outlives `ip netns exec`. */
type Envs = Map<Host, Record<string, string>>;

async function mustWeaveOn(envs: Envs, h: Host, args: string[]): Promise<string> {
  const r = await weave(h, args, envs.get(h) ?? {});
  assert.equal(r.code, 0, `weave ${args.join(' ')} on ${h.label} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** A testbed whose routers are reset (each with its own environment) and whose namespaces and pin dirs go however the test ends. */
async function withMixedBed(hosts: number, body: (bed: Testbed, envs: Envs) => Promise<void>): Promise<void> {
  const bed = await createTestbed({ hosts, underlay: 'bridge' });
  const envs: Envs = new Map();
  try {
    await body(bed, envs);
  } catch (err) {
    throw withRouterLogs(err, bed.hosts);
  } finally {
    for (const h of bed.hosts) await weave(h, ['reset'], envs.get(h) ?? {}).catch(() => undefined);
    await bed.teardown();
    for (const env of envs.values()) if (env.WEAVE_BPF_PIN_DIR) await execCommand('umount', [env.WEAVE_BPF_PIN_DIR]);
    rmSync(join('/tmp', `${bed.prefix}-bpffs`), { recursive: true, force: true });
  }
}

/** Marks `h` as an eBPF fastdp host: its router gets WEAVE_FASTDP_DATAPATH=bpf and its own bpffs pin dir. */
function useBpf(bed: Testbed, envs: Envs, h: Host): string {
  const dir = join('/tmp', `${bed.prefix}-bpffs`, h.label);
  ensurePinDir(dir);
  envs.set(h, { WEAVE_FASTDP_DATAPATH: 'bpf', WEAVE_BPF_PIN_DIR: dir });
  return dir;
}

async function attach(envs: Envs, h: Host): Promise<Container> {
  const c = await h.addContainer('c1');
  assert.equal(await mustWeaveOn(envs, h, ['attach', `10.32.0.${h.index}/12`, '--netns', c.netnsPath]), `10.32.0.${h.index}\n`);
  return c;
}

/** Packets the kernel matched on flows that tunnel to a peer. */
function tunnelFlowPackets(flows: Flow[]): bigint {
  return flows.filter((f) => f.actions.some((a) => a.type === 'set-tunnel')).reduce((n, f) => n + f.stats.packets, 0n);
}

/** iperf3 sends 4 MiB from `from` to `to` over TCP. */
async function tcpTransfer(from: Container, to: Container, toIp: string, what: string): Promise<void> {
  const server = await startIperfServer(to, { bind: toIp });
  try {
    // runIperfClient falls back to the streams' own totals when iperf3 3.12 ends a short -n run without the summary.
    const report = await runIperfClient(from, ['-c', toIp, '-n', '4M'], { timeoutMs: 120_000 });
    assert.ok(report.sentBytes >= 4 * 1024 * 1024, `${what}: sent ${report.sentBytes} bytes:\n${JSON.stringify(report.json.end).slice(-2000)}`);
  } finally {
    await server.stop();
  }
}

// One testbed for all three kinds: the guest runner gives a file 8 minutes, and
// each router launch takes a good part of a minute in the emulated guest.
test('OVS, eBPF and --no-fastdp routers in one mesh: fastdp between the kernel datapaths, sleeve to the third, every container reaches every other', { timeout: 900_000 }, async () => {
  await withMixedBed(3, async (bed, envs) => {
    const [ovs, ebpf, sleeve] = bed.hosts as [Host, Host, Host];
    const pinDir = useBpf(bed, envs, ebpf);
    await mustWeaveOn(envs, ovs, ['launch', '--nickname', 'ovs']);
    await Promise.all([
      mustWeaveOn(envs, ebpf, ['launch', '--nickname', 'ebpf', ovs.address]),
      mustWeaveOn(envs, sleeve, ['launch', '--nickname', 'sleeve', '--no-fastdp', ovs.address, ebpf.address]),
    ]);
    // spec §5.9: fastdp where both ends offer it (the VXLAN heartbeats of §6.4 got through), sleeve otherwise.
    const ovsLine = await connectionsMatch(ovs, /^\S+ \S+\s+established fastdp \S+\(ebpf\) mtu=\d+\s*$/m);
    const bpfLine = await connectionsMatch(ebpf, /^\S+ \S+\s+established fastdp \S+\(ovs\) mtu=\d+\s*$/m);
    // Both pick the same automatic MTU from the 1500-byte underlay (spec §6.1: room for VXLAN).
    assert.match(ovsLine, /established fastdp \S+\(ebpf\) mtu=1450\b/);
    assert.match(bpfLine, /established fastdp \S+\(ovs\) mtu=1450\b/);
    await connectionsMatch(ovs, /established sleeve \S+\(sleeve\)/);
    await connectionsMatch(ebpf, /established sleeve \S+\(sleeve\)/);
    const sleeveLines = await connectionsMatch(sleeve, /established sleeve \S+\((ovs|ebpf)\)[\s\S]*established sleeve \S+\((ovs|ebpf)\)/);
    assert.doesNotMatch(sleeveLines, /fastdp \S+\(/);
    assert.equal((await mustWeaveOn(envs, ovs, ['report', '-f', '{{.Router.Interface}}'])).trim(), 'datapath (via ODP)');
    const kinds = await Promise.all([ovs, ebpf].map(async (h) => (JSON.parse(await mustWeaveOn(envs, h, ['report'])) as { Router: { Datapath?: { Kind: string } } }).Router.Datapath?.Kind));
    assert.deepEqual(kinds, ['ovs', 'bpf'], 'each router runs the fast datapath kind it was given');

    const containers = [await attach(envs, ovs), await attach(envs, ebpf), await attach(envs, sleeve)];
    const [cOvs, cBpf, cSleeve] = containers as [Container, Container, Container];
    const names = ['ovs', 'ebpf', 'sleeve'];
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) if (i !== j) await mustPing(containers[i]!, `10.32.0.${j + 1}`, `${names[i]}/c1 -> ${names[j]}/c1`);
    }

    // With flows and learned MACs in place, OVS <-> eBPF traffic is the kernel's on both sides.
    const [ovsBefore, bpfBefore] = [await datapathState(ovs), pinnedCounters(pinDir)];
    const burst = await cOvs.exec('ping', ['-c', '20', '-i', '0.2', '-W', '2', '10.32.0.2']);
    assert.equal(burst.code, 0, `a 20-ping burst crosses fastdp:\n${burst.stdout}${burst.stderr}`);
    await tcpTransfer(cOvs, cBpf, '10.32.0.2', 'ovs/c1 -> ebpf/c1');
    await tcpTransfer(cBpf, cOvs, '10.32.0.1', 'ebpf/c1 -> ovs/c1');
    const [ovsAfter, bpfAfter] = [await datapathState(ovs), pinnedCounters(pinDir)];

    const tunnelled = tunnelFlowPackets(ovsAfter.flows) - tunnelFlowPackets(ovsBefore.flows);
    assert.ok(tunnelled >= 100n, `OVS flows tunnelling to the eBPF host matched ${tunnelled} more packets:\n${JSON.stringify(ovsAfter.flows.map((f) => ({ key: f.key, packets: f.stats.packets })), (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
    assert.ok(ovsAfter.hit - ovsBefore.hit >= 200n, `OVS kernel hits grew by ${ovsAfter.hit - ovsBefore.hit}`);
    // Heartbeats (10 s apart once acknowledged) and the odd ARP refresh only.
    assert.ok(ovsAfter.missed - ovsBefore.missed < 60n, `OVS misses during the run: ${ovsAfter.missed - ovsBefore.missed} (heartbeats only)`);
    const fromTunnel = deliveredFromTunnel(bpfAfter) - deliveredFromTunnel(bpfBefore);
    const toTunnel = bpfAfter.fwd_to_tunnel - bpfBefore.fwd_to_tunnel;
    assert.ok(fromTunnel >= 100 && toTunnel >= 100, `the eBPF programs forwarded the traffic (from tunnel ${fromTunnel}, to tunnel ${toTunnel})`);
    const up = bpfAfter.to_userspace - bpfBefore.to_userspace;
    assert.ok(up < 60, `eBPF frames handed to userspace during the run: ${up} (heartbeats only)`);

    // The sleeve neighbour: TCP works, and no kernel flow tunnels towards it.
    await tcpTransfer(cOvs, cSleeve, '10.32.0.3', 'ovs/c1 -> sleeve/c1 (sleeve)');
    const toSleeve = (await datapathState(ovs)).flows.filter((f) => f.actions.some((a) => a.type === 'set-tunnel' && a.tunnel.ipv4Dst === sleeve.address));
    assert.equal(toSleeve.length, 0, 'no OVS flow tunnels towards the --no-fastdp host');

    // Broadcasts crossed both overlays on the OVS and eBPF hosts: no MAC may have been
    // learned at the wrong host, so every pair still answers.
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        if (i === j) continue;
        const again = await containers[i]!.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', `10.32.0.${j + 1}`]);
        assert.equal(again.code, 0, `${names[i]}/c1 -> ${names[j]}/c1 after all pairs talked:\n${again.stdout}${again.stderr}`);
      }
    }
  });
});
