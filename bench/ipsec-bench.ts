// Bulk TCP between containers on two simulated hosts running real routers
// (`weave launch`), inside the kernel lab VM (it has openvswitch and ESP; the
// guest is emulated, so only the ratios mean anything):
//   fastdp            : no password, the OVS fast datapath
//   encrypted-fastdp  : --password, fastdp inside kernel IPsec ESP (wire spec §7)
//   encrypted-sleeve  : --password and --no-fastdp, NaCl in the sleeve worker
//
//   run-in-vm.sh -t 1200 -- node dist/bench/ipsec-bench.js [seconds=5]
import { pollUntil, type Host } from '../test/netns/lib/index.js';
import { attachContainer, connectionsMatch, loadKernelModules, mustWeave, withBed } from '../test/vm/guest/weave-fastdp-harness.js';

const seconds = Number(process.argv[2] ?? 5);

interface Mode {
  name: string;
  args: string[];
  status: RegExp;
}

const modes: Mode[] = [
  { name: 'fastdp', args: [], status: /established fastdp/ },
  { name: 'encrypted-fastdp', args: ['--password', 'bench-secret'], status: /established encrypted\s+fastdp/ },
  { name: 'encrypted-sleeve', args: ['--password', 'bench-secret', '--no-fastdp'], status: /established encrypted\s+sleeve/ },
];

async function measure(mode: Mode): Promise<number> {
  let bps = 0;
  await withBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    await mustWeave(h1, ['launch', '--nickname', 'h1', ...mode.args]);
    await mustWeave(h2, ['launch', '--nickname', 'h2', ...mode.args, h1.address]);
    await connectionsMatch(h2, mode.status);
    const [c1, c2] = [await attachContainer(h1), await attachContainer(h2)];
    await pollUntil(() => c1.ping('10.32.0.2', { count: 1, waitSeconds: 2 }), 60_000, 500);
    c2.spawn('iperf3', ['-s', '-1', '-B', '10.32.0.2']);
    let out = '';
    const ok = await pollUntil(async () => {
      const r = await c1.exec('iperf3', ['-c', '10.32.0.2', '-t', String(seconds), '-J'], { timeoutMs: (seconds + 60) * 1000 });
      out = r.stdout;
      return r.code === 0;
    }, 120_000, 1000);
    if (!ok) throw new Error(`${mode.name}: iperf3 failed:\n${out}`);
    bps = (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second;
  });
  return bps;
}

loadKernelModules();
const results = new Map<string, number>();
for (const m of modes) {
  results.set(m.name, await measure(m));
  process.stdout.write(`${m.name.padEnd(18)} ${(results.get(m.name)! / 1e6).toFixed(1)} Mbit/s\n`);
}
const base = results.get('fastdp')!;
for (const [name, bps] of results) process.stdout.write(`${name.padEnd(18)} ratio to fastdp ${(bps / base).toFixed(2)}\n`);
