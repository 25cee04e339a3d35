// Idle router memory: RSS (and its anonymous part, and the thread count) of
// routers left alone once their connections are up, on the eBPF fast datapath:
//   lone       a router with no peer
//   fastdp     two routers connected over fastdp; their sleeve's packet worker
//              parked (after WEAVE_SLEEVE_PARK_SEC, 60 s unless set) or never
//              started, the sleeve's heartbeats on the main thread
//   sleeve     two routers with --no-fastdp: the worker stays parked until a
//              frame crosses the sleeve, and none does here
// Each is sampled IDLE_S after the last router's connection was established
// (past the park delay), as `ps` would show it.
//
//   node dist/bench/idle-rss.js [idle-seconds=75]
// Root needed; everything lives in namespaces the bench creates and removes.
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { bpfPinDir, withBpfWeaveBed } from '../test/netns/lib/bpf-bed.js';
import { connectionsMatch, mustWeave, weaveStateDir, weaverPid, type Host, type Testbed, type WeaveOptions } from '../test/netns/lib/index.js';

const IDLE_S = Number(process.argv[2] ?? 75);
const CONNECT_MS = 30_000;

function envFor(bed: Testbed, h: Host): WeaveOptions {
  return { env: { WEAVE_BPF_PIN_DIR: bpfPinDir(bed, h) } };
}

interface Footprint { rssMiB: number; anonMiB: number; threads: number }

function footprint(h: Host): Footprint {
  const pid = weaverPid(h);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]);
  return { rssMiB: kib('VmRSS') / 1024, anonMiB: kib('RssAnon') / 1024, threads: readdirSync(`/proc/${pid}/task`).length };
}

const show = (f: Footprint): string => `RSS ${f.rssMiB.toFixed(1)} MiB (${(f.rssMiB * 1.048576).toFixed(1)} MB), anonymous ${f.anonMiB.toFixed(1)} MiB, ${f.threads} threads`;

async function scenario(label: string, hosts: number, flags: string[]): Promise<void> {
  await withBpfWeaveBed(hosts, envFor, async (bed) => {
    for (const h of bed.hosts) {
      const others = bed.hosts.filter((o) => o !== h).map((o) => o.address);
      await mustWeave(h, ['launch', '--nickname', h.label, ...flags, ...others], envFor(bed, h));
    }
    if (hosts > 1) {
      const overlay = flags.includes('--no-fastdp') ? 'sleeve' : 'fastdp';
      for (const h of bed.hosts) await connectionsMatch(h, new RegExp(`established ${overlay} `), { timeoutMs: CONNECT_MS });
    }
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    for (const h of bed.hosts) {
      const log = readFileSync(`${weaveStateDir(h)}/weaver.log`, 'utf8');
      const starts = log.match(/packet worker started again/g)?.length ?? 0;
      process.stdout.write(`idle-rss: ${label} ${h.label}: ${show(footprint(h))}; sleeve worker started ${starts} times since launch\n`);
    }
  });
}

process.stdout.write(`idle-rss: ${IDLE_S} s idle after connecting; load ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
await scenario('lone', 1, []);
await scenario('fastdp', 2, []);
await scenario('sleeve', 2, ['--no-fastdp']);
process.stdout.write(`idle-rss: load after ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
