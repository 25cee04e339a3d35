// Added latency of the Docker API proxy: `docker run --rm busybox true` direct
// to dockerd vs through the router's proxy (which allocates an address,
// attaches ethwe and waits for it before the command runs), interleaved in
// ONE run, median of N rounds each, and the ratio of the medians.
//
//   node dist/bench/docker-proxy-bench.js [rounds=10]
// Root needed; a one-host testbed and a private dockerd, removed at the end.
import { join } from 'node:path';
import { startDockerd, importBusybox } from '../test/docker/dockerd.js';
import { createTestbed } from '../test/netns/lib/testbed.js';
import { mustWeave, stopRouters } from '../test/netns/lib/weave.js';
import { mustRun } from '../test/support/exec.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 10);
  const bed = await createTestbed({ hosts: 1, underlay: 'bridge' });
  const dockerd = await startDockerd();
  try {
    const h = bed.hosts[0];
    const image = await importBusybox(dockerd);
    const proxy = `unix://${join(h.dir, 'weave.sock')}`;
    await mustWeave(h, ['launch', '--nickname', 'h1', '--ipalloc-range', '10.2.0.0/16', '--proxy', '-H', proxy, '--docker-api', dockerd.host]);
    const direct = (): Promise<string> => mustRun('docker', ['-H', dockerd.host, 'run', '--rm', '--network', 'none', image, 'true']);
    const proxied = (): Promise<string> => mustRun('docker', ['-H', proxy, 'run', '--rm', image, 'true']);
    // Warm-up: IPAM consensus and the first allocation are not part of steady state.
    await proxied();
    await direct();
    const d: number[] = [];
    const p: number[] = [];
    for (let i = 0; i < rounds; i++) {
      d.push(await timed(direct));
      p.push(await timed(proxied));
      process.stdout.write(`round ${i + 1}: direct ${d[i].toFixed(0)} ms, proxy ${p[i].toFixed(0)} ms, ratio ${(p[i] / d[i]).toFixed(2)}\n`);
    }
    const md = median(d);
    const mp = median(p);
    process.stdout.write(`docker run --rm true: median direct ${md.toFixed(0)} ms, median through the proxy ${mp.toFixed(0)} ms, ` +
      `ratio ${(mp / md).toFixed(2)} (median of per-round ratios ${median(p.map((x, i) => x / d[i])).toFixed(2)}; ${rounds} rounds)\n`);
  } finally {
    await stopRouters(bed.hosts);
    await dockerd.stop();
    await bed.teardown();
  }
}

await main();
