// Shared by the guest tests that run real `weave launch` routers on the OVS
// fast datapath: simulated hosts from the netns testbed (a bridge underlay,
// 172.31.x.0/24), the CLI with a state dir per host, and polling of
// `weave status connections`. Node is several times slower in the guest, so
// every deadline here is generous.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { release as osRelease } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestbed, pollUntil, type Container, type Host, type Testbed } from '../../netns/lib/index.js';
import { OdpConnection, getDatapath, listDatapaths, listFlows, type Flow } from '../../../dataplane/ovs/index.js';

const WEAVE = fileURLToPath(new URL('../../../../bin/weave', import.meta.url));
export const CONVERGE_MS = 120_000;

/**
 * The guest boots with its modules in the initramfs only; after switch_root
 * /lib/modules is the host's, so the kernel cannot load what a rule needs on
 * demand (nft fib, ct, bridge counters). The guest kernel's own modules are
 * readable in the lab's cache (the host's filesystem): link them in place.
 */
function linkGuestModules(): void {
  const release = osRelease();
  const target = `/lib/modules/${release}`;
  const cached = join(process.env.KERNEL_LAB_CACHE ?? '/var/cache/kernel-lab', 'root/lib/modules', release);
  if (existsSync(target) || !existsSync(cached)) return;
  mkdirSync('/lib/modules', { recursive: true });
  symlinkSync(cached, target);
}

export function loadKernelModules(): void {
  linkGuestModules();
  for (const m of ['openvswitch', 'esp4', 'xfrm_user', 'nft_fib_inet', 'nft_fib_ipv4', 'nft_ct', 'nft_counter', 'nf_tables_bridge', 'nft_meta_bridge']) {
    try {
      execFileSync('modprobe', [m], { stdio: 'ignore' });
    } catch {
      // built in or already loaded; the router's own probe tells
    }
  }
}

export function weave(h: Host, args: string[], env: Record<string, string> = {}) {
  return h.exec(process.execPath, [WEAVE, ...args], { env: { WEAVE_STATE_DIR: join(h.dir, 'state'), WEAVE_LAUNCH_TIMEOUT_MS: '150000', ...env }, timeoutMs: 180_000 });
}

export async function mustWeave(h: Host, args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await weave(h, args, env);
  assert.equal(r.code, 0, `weave ${args.join(' ')} on ${h.label} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Lines of each router's log a failing test carries: enough to show what it last did. */
const LOG_TAIL_LINES = 40;

/**
 * `err`, its stack extended with the end of each host's router log: the guest's
 * files are gone once the VM stops, and a router that stopped answering shows
 * only there why.
 */
export function withRouterLogs(err: unknown, hosts: readonly Host[]): unknown {
  if (!(err instanceof Error)) return err;
  const tails = hosts.map((h) => {
    const log = join(h.dir, 'state', 'weaver.log');
    if (!existsSync(log)) return `${h.label}: no router log`;
    const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
    return `${h.label} weaver.log, last ${Math.min(LOG_TAIL_LINES, lines.length)} of ${lines.length} lines:\n${lines.slice(-LOG_TAIL_LINES).join('\n')}`;
  });
  err.stack = `${err.stack ?? err.message}\n${tails.join('\n')}`;
  return err;
}

/** A testbed whose routers are stopped and namespaces removed however the test ends. */
export async function withBed(hosts: number, body: (bed: Testbed) => Promise<void>): Promise<void> {
  const bed = await createTestbed({ hosts, underlay: 'bridge' });
  try {
    await body(bed);
  } catch (err) {
    throw withRouterLogs(err, bed.hosts);
  } finally {
    for (const h of bed.hosts) await weave(h, ['reset']).catch(() => undefined);
    await bed.teardown();
  }
}

export async function attachContainer(h: Host): Promise<Container> {
  const c = await h.addContainer('c1');
  assert.equal(await mustWeave(h, ['attach', `10.32.0.${h.index}/12`, '--netns', c.netnsPath]), `10.32.0.${h.index}\n`);
  return c;
}

/** Polls `weave status connections` until `want` matches; returns the last output. */
export async function connectionsMatch(h: Host, want: RegExp): Promise<string> {
  let last = { code: 0, stdout: '', stderr: '' };
  const ok = await pollUntil(async () => {
    last = await weave(h, ['status', 'connections']);
    return want.test(last.stdout);
  }, CONVERGE_MS, 1000);
  // An empty answer may be a router that stopped answering: say how the command ended.
  assert.ok(ok, `${h.label}: status connections should match ${want}; it exited ${last.code}:\n${last.stdout}${last.stderr}`);
  return last.stdout;
}

export async function mustPing(from: Container, to: string, what: string): Promise<void> {
  const ok = await pollUntil(() => from.ping(to, { count: 1, waitSeconds: 2 }), 60_000, 500);
  assert.ok(ok, `${what}: ${to} answers ping`);
}

/** The kernel's counters for the `datapath` datapath in a host's namespace. */
export async function datapathState(h: Host): Promise<{ datapaths: string[]; hit: bigint; missed: bigint; flows: Flow[] }> {
  const conn = await OdpConnection.open({ netns: h.namespace });
  try {
    const datapaths = (await listDatapaths(conn)).map((d) => d.name);
    if (!datapaths.includes('datapath')) return { datapaths, hit: 0n, missed: 0n, flows: [] };
    const dp = await getDatapath(conn, 'datapath');
    return { datapaths, hit: dp.stats?.hit ?? 0n, missed: dp.stats?.missed ?? 0n, flows: await listFlows(conn, dp.ifindex) };
  } finally {
    conn.close();
  }
}
