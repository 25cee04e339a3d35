// Router startup and memory: two simulated hosts (network namespaces on a
// bridge underlay). h1's router runs throughout; each round starts a fresh
// router on h2 (new state directory) with h1 as its peer and measures
//   api          ms from exec until the control API answers HTTP (any status)
//   established  ms from exec until /report lists an established connection
//   phases       the router's own startup phases (logged at debug level, ms
//                since its process started: module loading is the first)
//   RSS          both routers' resident set (/proc/PID/status VmRSS) once the
//                connection is up and a few seconds idle
// Figures are medians over the rounds; the load average is printed with them.
//
//   node dist/bench/startup-bench.js [rounds=3] [router flags...]
// Root needed; everything lives in namespaces the bench creates and removes.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestbed, type Host, type SpawnedProcess } from '../test/netns/lib/index.js';
import { WEAVER_NODE_FLAGS } from '../controlplane/cli/daemon.js';

const WEAVER = fileURLToPath(new URL('../weaver/main.js', import.meta.url));
const API = '127.0.0.1:6784';
const POLL_S = 0.01;
const IDLE_BEFORE_RSS_MS = 3000;
const ROUND_TIMEOUT_S = 60;

const rounds = Number(process.argv[2] ?? 3);
const extraFlags = process.argv.slice(3);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const loadavg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function rssMiB(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!kb) throw new Error(`startup-bench: no VmRSS for ${pid} (did the router exit?)`);
  return Number(kb[1]) / 1024;
}

function startRouter(h: Host, stateDir: string, peers: string[]): SpawnedProcess {
  mkdirSync(stateDir, { recursive: true });
  return h.spawn(process.execPath, [
    ...WEAVER_NODE_FLAGS, WEAVER, '--state-dir', stateDir, '--http-addr', API, '--nickname', h.label, '--log-level', 'debug', ...extraFlags, ...peers,
  ]);
}

/**
 * Polls from inside the host's namespace (one shell, curl every POLL_S) and
 * prints the wall-clock ns at which the API first answered and at which a
 * connection was first established.
 */
function pollScript(): string {
  return [
    `end=$(( $(date +%s) + ${ROUND_TIMEOUT_S} ))`,
    `until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 http://${API}/status)" != 000 ]; do [ $(date +%s) -lt $end ] || exit 1; sleep ${POLL_S}; done`,
    'echo api $(date +%s%N)',
    `until curl -s --max-time 1 http://${API}/report | grep -q '"State": *"established"'; do [ $(date +%s) -lt $end ] || exit 2; sleep ${POLL_S}; done`,
    'echo established $(date +%s%N)',
  ].join('\n');
}

/** `startup: <phase> <ms>` lines the router logs at debug level. */
function phasesOf(output: string): Map<string, number> {
  const phases = new Map<string, number>();
  for (const line of output.split('\n')) {
    const m = /"msg":"startup: (.+?) at (\d+(?:\.\d+)?) ms"/.exec(line);
    if (m) phases.set(m[1]!, Number(m[2]));
  }
  return phases;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('startup-bench: needs root (it creates network namespaces)\n');
    process.exit(1);
  }
  process.stdout.write(`startup: ${rounds} rounds, load average before ${loadavg()}\n`);
  const bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
  const [h1, h2] = [bed.host(1), bed.host(2)];
  const anchor = startRouter(h1, join(h1.dir, 'state'), []);
  const api: number[] = [];
  const established: number[] = [];
  const phases = new Map<string, number[]>();
  const rss1: number[] = [];
  const rss2: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const poller = h2.run(pollScript());
      const t0 = Date.now();
      const router = startRouter(h2, join(h2.dir, `state-${i}`), [h1.address]);
      try {
        const polled = await poller;
        if (polled.code !== 0) throw new Error(`startup-bench: round ${i + 1} timed out (${polled.code}):\n${router.output().split('\n').slice(-15).join('\n')}`);
        const at = (what: string): number => Number(BigInt(/(\S+) (\d+)/.exec(polled.stdout.split('\n').find((l) => l.startsWith(what))!)![2]!) / 1_000_000n) - t0;
        api.push(at('api'));
        established.push(at('established'));
        for (const [phase, ms] of phasesOf(router.output())) phases.set(phase, [...(phases.get(phase) ?? []), ms]);
        await new Promise((r) => setTimeout(r, IDLE_BEFORE_RSS_MS));
        rss1.push(rssMiB(anchor.pid));
        rss2.push(rssMiB(router.pid));
        process.stdout.write(`startup: round ${i + 1}: api ${api.at(-1)} ms, established ${established.at(-1)} ms, RSS h1 ${rss1.at(-1)!.toFixed(1)} MiB, h2 ${rss2.at(-1)!.toFixed(1)} MiB\n`);
      } finally {
        router.kill('SIGTERM');
        await Promise.race([router.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
      }
    }
  } finally {
    anchor.kill('SIGTERM');
    await Promise.race([anchor.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    await bed.teardown();
  }
  process.stdout.write(`startup: exec -> API answers: ${median(api)} ms; exec -> connection established: ${median(established)} ms (medians of ${rounds})\n`);
  for (const [phase, ms] of [...phases].sort((a, b) => median(a[1]) - median(b[1]))) {
    process.stdout.write(`startup:   phase ${phase}: ${median(ms).toFixed(0)} ms after process start\n`);
  }
  process.stdout.write(`startup: idle RSS after connecting: running router ${median(rss1).toFixed(1)} MiB, new router ${median(rss2).toFixed(1)} MiB; load average after ${loadavg()}\n`);
}

await main();
