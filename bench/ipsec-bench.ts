// Bulk TCP between containers on two simulated hosts running real routers
// (`weave launch`), inside the kernel lab VM (it has openvswitch and ESP; the
// guest is emulated, so only the ratios mean anything):
//   fastdp                : no password, the OVS fast datapath
//   encrypted-fastdp      : --password, fastdp inside kernel IPsec ESP (wire spec §7)
//   encrypted-sleeve      : --password and --no-fastdp, NaCl in the sleeve worker
//   bpf-fastdp            : no password, the eBPF fast datapath (WEAVE_FASTDP_DATAPATH=bpf)
//   bpf-encrypted-fastdp  : --password, the eBPF fast datapath inside kernel IPsec ESP
//
//   test/vm/kernel-lab.sh -t 1200 -- node dist/bench/ipsec-bench.js [seconds=5]
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePinDir } from '../dataplane/bpf/bpffs.js';
import { execCommand, pollUntil, runIperfClient, startIperfServer, type Host } from '../test/netns/lib/index.js';
import { attachContainer, connectionsMatch, loadKernelModules, mustWeave, withBed } from '../test/vm/guest/weave-fastdp-harness.js';

const seconds = Number(process.argv[2] ?? 5);

interface Mode {
  name: string;
  args: string[];
  status: RegExp;
  /** The eBPF datapath instead of OVS (a bpffs pin dir per host). */
  bpf?: boolean;
}

const modes: Mode[] = [
  { name: 'fastdp', args: [], status: /established fastdp/ },
  { name: 'encrypted-fastdp', args: ['--password', 'bench-secret'], status: /established encrypted\s+fastdp/ },
  { name: 'encrypted-sleeve', args: ['--password', 'bench-secret', '--no-fastdp'], status: /established encrypted\s+sleeve/ },
  { name: 'bpf-fastdp', args: [], status: /established fastdp/, bpf: true },
  { name: 'bpf-encrypted-fastdp', args: ['--password', 'bench-secret'], status: /established encrypted\s+fastdp/, bpf: true },
];

async function measure(mode: Mode): Promise<number> {
  let bps = 0;
  await withBed(2, async (bed) => {
    const [h1, h2] = bed.hosts as [Host, Host];
    const pinRoot = join('/tmp', `${bed.prefix}-bpffs`);
    const env = (h: Host): Record<string, string> => (mode.bpf ? { WEAVE_FASTDP_DATAPATH: 'bpf', WEAVE_BPF_PIN_DIR: join(pinRoot, h.label) } : {});
    // One bpffs mount, a pin directory per host on it (reset removes that directory).
    if (mode.bpf) for (const dir of [pinRoot, join(pinRoot, h1.label), join(pinRoot, h2.label)]) ensurePinDir(dir);
    try {
      await run(h1, h2, env);
    } finally {
      if (mode.bpf) {
        for (const h of [h1, h2]) await mustWeave(h, ['reset'], env(h)).catch(() => undefined);
        await execCommand('umount', [pinRoot]);
        rmSync(pinRoot, { recursive: true, force: true });
      }
    }
  });
  return bps;

  async function run(h1: Host, h2: Host, env: (h: Host) => Record<string, string>): Promise<void> {
    await mustWeave(h1, ['launch', '--nickname', 'h1', ...mode.args], env(h1));
    await mustWeave(h2, ['launch', '--nickname', 'h2', ...mode.args, h1.address], env(h2));
    await connectionsMatch(h2, mode.status);
    const [c1, c2] = [await attachContainer(h1), await attachContainer(h2)];
    await pollUntil(() => c1.ping('10.32.0.2', { count: 1, waitSeconds: 2 }), 60_000, 500);
    const server = await startIperfServer(c2, { bind: '10.32.0.2' });
    try {
      const r = await runIperfClient(c1, ['-c', '10.32.0.2', '-t', String(seconds)], { timeoutMs: (seconds + 60) * 1000 })
        .catch((err: Error) => { throw new Error(`${mode.name}: ${err.message}`); });
      if (!(r.receivedBitsPerSecond > 0)) throw new Error(`${mode.name}: iperf3 reported no received data`);
      bps = r.receivedBitsPerSecond;
    } finally {
      await server.stop();
    }
  }
}

loadKernelModules();
const results = new Map<string, number>();
for (const m of modes) {
  results.set(m.name, await measure(m));
  process.stdout.write(`${m.name.padEnd(22)} ${(results.get(m.name)! / 1e6).toFixed(1)} Mbit/s\n`);
}
const base = results.get('fastdp')!;
const bpfBase = results.get('bpf-fastdp')!;
for (const [name, bps] of results) {
  const toBpf = name.startsWith('bpf-') ? `, to bpf-fastdp ${(bps / bpfBase).toFixed(2)}` : '';
  process.stdout.write(`${name.padEnd(22)} ratio to fastdp ${(bps / base).toFixed(2)}${toBpf}\n`);
}
