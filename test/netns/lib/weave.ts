// The `weave` CLI on simulated hosts: each host runs its own router as a host
// daemon with a state directory of its own (user-surface spec §1.1-1.7), and
// tests drive it through the CLI and poll its status views.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollUntil, type ExecResult } from './exec.js';
import { createTestbed, type Container, type Host, type Testbed } from './testbed.js';

const WEAVE = fileURLToPath(new URL('../../../../bin/weave', import.meta.url));

/** How long polls of a router's status wait by default for the mesh to converge. */
export const WEAVE_CONVERGE_MS = 30_000;

export interface WeaveOptions {
  /** Extra environment for the CLI (WEAVE_STATE_DIR is always the host's). */
  env?: Record<string, string>;
  /** Default 60 s. */
  timeoutMs?: number;
}

export interface PollOptions {
  /** Default WEAVE_CONVERGE_MS. */
  timeoutMs?: number;
  /** Default 250 ms. */
  intervalMs?: number;
  /** What is awaited, for the failure message; default the command and the condition. */
  what?: string;
}

/** The host's weave state directory: pid file, log and persisted state. */
export function weaveStateDir(h: Host): string {
  return join(h.dir, 'state');
}

/** The pid of the host's router, from its pid file. */
export function weaverPid(h: Host): number {
  return Number(readFileSync(join(weaveStateDir(h), 'weaver.pid'), 'utf8'));
}

/** Runs `weave <args>` inside the host's namespace; the caller checks the exit code. */
export function weave(h: Host, args: string[], options: WeaveOptions = {}): Promise<ExecResult> {
  return h.exec(process.execPath, [WEAVE, ...args], {
    env: { WEAVE_STATE_DIR: weaveStateDir(h), ...options.env },
    timeoutMs: options.timeoutMs ?? 60_000,
  });
}

/** Runs `weave <args>`, asserts it exited 0 and returns its stdout. */
export async function mustWeave(h: Host, args: string[], options: WeaveOptions = {}): Promise<string> {
  const r = await weave(h, args, options);
  assert.equal(r.code, 0, `weave ${args.join(' ')} on ${h.label} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Stops the routers on `hosts` one by one, ignoring failures (for cleanup). */
export async function stopRouters(hosts: readonly Host[], command: 'stop' | 'reset' = 'stop', options: WeaveOptions = {}): Promise<void> {
  for (const h of hosts) await weave(h, [command], options).catch(() => undefined);
}

/**
 * One testbed shared by every test of a file: created in `before`, routers stopped
 * and namespaces removed in `after`. Returns a getter for use inside the tests.
 */
export function sharedWeaveBed(hosts: number): () => Testbed {
  let bed: Testbed | undefined;
  before(async () => {
    bed = await createTestbed({ hosts, underlay: 'bridge' });
  });
  after(async () => {
    // Stop routers politely first so pid files and ports are released; teardown kills the rest.
    if (bed) {
      await stopRouters(bed.hosts);
      await bed.teardown();
    }
  });
  return () => {
    if (!bed) throw new Error('sharedWeaveBed: the testbed is not created yet (use it inside a test)');
    return bed;
  };
}

/** A testbed whose routers are stopped and namespaces removed however `body` ends. */
export async function withWeaveBed(
  hosts: number,
  body: (bed: Testbed) => Promise<void>,
  cleanup: { command?: 'stop' | 'reset' } & WeaveOptions = {},
): Promise<void> {
  const bed = await createTestbed({ hosts, underlay: 'bridge' });
  try {
    await body(bed);
  } finally {
    await stopRouters(bed.hosts, cleanup.command, cleanup);
    await bed.teardown();
  }
}

/**
 * Launches a router on every host, in the order given, with nickname h<index>
 * and `flags`, each given every other host as a peer (the same peer list
 * everywhere, so IPAM's consensus agrees, user-surface spec §1.6).
 */
export async function launchFullMesh(hosts: readonly Host[], flags: readonly string[] = [], options: WeaveOptions = {}): Promise<void> {
  for (const h of hosts) {
    const others = hosts.filter((o) => o !== h).map((o) => o.address);
    await mustWeave(h, ['launch', '--nickname', `h${h.index}`, ...flags, ...others], options);
  }
}

/**
 * Sleeve-only routers on three hosts in a line h1 - h2 - h3: the h1-h3
 * underlay link is cut before launch, so h1 and h3 meet only through h2.
 * Returns once both ends are connected to h2.
 */
export async function launchCutLine(bed: Testbed): Promise<[Host, Host, Host]> {
  const [h1, h2, h3] = bed.hosts as [Host, Host, Host];
  await bed.cutLink(h1, h3);
  await launchFullMesh([h2, h1, h3], ['--no-fastdp']);
  for (const h of [h1, h3]) await connectionsMatch(h, /established sleeve \S+\(h2\)/);
  return [h1, h2, h3];
}

/**
 * Polls `weave <args>` on `h` until its stdout satisfies `want`; asserts that it
 * did within the deadline and returns the last output.
 */
export async function pollWeave(h: Host, args: string[], want: RegExp | ((out: string) => boolean), options: PollOptions & WeaveOptions = {}): Promise<string> {
  const matches = typeof want === 'function' ? want : (out: string) => want.test(out);
  let out = '';
  const ok = await pollUntil(async () => {
    out = (await weave(h, args, options)).stdout;
    return matches(out);
  }, options.timeoutMs ?? WEAVE_CONVERGE_MS, options.intervalMs ?? 250);
  const what = options.what ?? `weave ${args.join(' ')} should match ${typeof want === 'function' ? 'the condition' : String(want)}`;
  assert.ok(ok, `${h.label}: ${what}:\n${out}`);
  return out;
}

/** Polls `weave status connections` until `want` matches; returns the last output. */
export function connectionsMatch(h: Host, want: RegExp, options: PollOptions & WeaveOptions = {}): Promise<string> {
  return pollWeave(h, ['status', 'connections'], want, options);
}

/** A container `c1` on `h` attached with the fixed address 10.32.0.<host index>/12. */
export async function attachContainer(h: Host, options: WeaveOptions = {}): Promise<Container> {
  const c = await h.addContainer('c1');
  assert.equal(await mustWeave(h, ['attach', `10.32.0.${h.index}/12`, '--netns', c.netnsPath], options), `10.32.0.${h.index}\n`);
  return c;
}

/**
 * How soon a container must answer once the path to it is up (established
 * connections, `weave attach` returned): the first reply, ARP included, within
 * what a user would accept. Tests call mustPing after such a point.
 */
export const FIRST_REPLY_BOUND_MS = 2000;

export interface PingPollOptions {
  /** Default FIRST_REPLY_BOUND_MS. */
  timeoutMs?: number;
  /** Default 200 ms. */
  intervalMs?: number;
  /** Per-ping reply wait; default 1 s. */
  waitSeconds?: number;
}

/** Pings `to` from `from` until it answers; asserts that it did within the bound (default FIRST_REPLY_BOUND_MS). */
export async function mustPing(from: Container, to: string, what: string, options: PingPollOptions = {}): Promise<void> {
  const waitSeconds = options.waitSeconds ?? 1;
  const bound = options.timeoutMs ?? FIRST_REPLY_BOUND_MS;
  const started = Date.now();
  const ok = await pollUntil(() => from.ping(to, { count: 1, waitSeconds }), bound, options.intervalMs ?? 200);
  assert.ok(ok, `${what}: ${to} answers ping within ${bound} ms (no reply after ${Date.now() - started} ms)`);
}
