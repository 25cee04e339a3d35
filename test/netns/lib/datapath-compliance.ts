// The datapath compliance suite (ARCHITECTURE "How a datapath is added"): one
// body of checks every datapath kind passes, given its registry descriptor.
// Two simulated hosts, each with a `weave` bridge and one container on it; on
// each host the datapath runs in an agent process opened by the descriptor, as
// a router would open it, and the suite plays both routers' control
// connections (forwarder control messages go from one agent to the other).
//
// The checks, in order, on the same two hosts:
//   forwarder lifecycle  open, add the forwarders and the forwarding state:
//                        they establish and the containers ping each other;
//                        remove them: traffic stops; add them again: it resumes
//   counters             the datapath's stats move with the traffic
//   idempotent apply     the same state applied again leaves the kernel as it was
//   close                the kernel state stays; a kernel datapath (overlay
//                        fastdp) keeps forwarding, the sleeve stops
//   restart              a new process opens over what close left: traffic flows
//                        again, and a kernel datapath never stopped forwarding
//   teardown             the descriptor's teardown leaves the namespace as it
//                        was before open: links, tc filters, nft, pins, OVS
//
// "The kernel as it was" is a dump of what a datapath may create: links (name,
// kind, master, MTU, up), every tc filter (with its program id, so a reattached
// program shows), the nft ruleset, the pinned objects (by inode, so a re-pinned
// map shows) and the OVS datapaths, vports and flows (keys and actions).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DatapathDescriptor, DatapathStats, ForwarderParams, ForwardingState } from '../../../controlplane/router/datapath.js';
import type { PeerName } from '../../../controlplane/mesh/types.js';
import { DEFAULT_BRIDGE, DEFAULT_MESH_PORT, fastdpPortFor } from '../../../controlplane/well-known.js';
import { OdpConnection, listDatapaths, listFlows, listVports } from '../../../dataplane/ovs/index.js';
import { createTestbed, pollUntil, type Host, type Testbed } from './index.js';
import { decodeAgentMessage, encodeAgentMessage, type AgentEvent, type AgentRequest } from './agent-codec.js';
import { plugNode, type SleeveNode } from '../sleeve-harness.js';

const AGENT = fileURLToPath(new URL('../datapath-agent.js', import.meta.url));
const MTU = 1376;
/**
 * Echoes (at 100 ms) a kernel datapath may lose across a restart of its process.
 * A router restart in bpf-weave.test.ts loses at most one; here the eBPF
 * datapath loses two now and then (under load, about when the new process's
 * forwarders establish), so the bound is 300 ms of traffic until that is found.
 */
const RESTART_LOST_BOUND = 3;

export interface ComplianceOptions {
  /** Multiplies every time bound (the kernel lab VM runs under software emulation). */
  slowdown?: number;
}

type Request = AgentRequest extends infer R ? (R extends unknown ? Omit<R, 'seq'> : never) : never;

/** One datapath agent process in a host's namespace: requests and their replies, forwarder events. */
class Agent {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly established = new Set<string>();
  readonly failures: string[] = [];
  readonly log: string[] = [];
  onControl: (id: string, subTag: number, payload: Uint8Array) => void = () => undefined;
  private readonly exited: Promise<number | null>;

  private constructor(private readonly child: ChildProcess, readonly label: string, private readonly timeoutMs: number) {
    // Writing to an agent that died fails here; its exit rejects what was pending.
    child.stdin!.on('error', () => undefined);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => this.event(decodeAgentMessage(line) as AgentEvent));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => this.log.push(d));
    this.exited = new Promise((resolve) => child.on('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`agent ${label} exited (${code}):\n${this.log.join('\n')}`));
      this.pending.clear();
      resolve(code);
    }));
  }

  static start(h: Host, kind: string, env: Record<string, string>, timeoutMs: number): Agent {
    const child = spawn('ip', ['netns', 'exec', h.namespace, process.execPath, AGENT, kind], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new Agent(child, `${kind}@${h.label}`, timeoutMs);
  }

  private event(e: AgentEvent): void {
    switch (e.ev) {
      case 'reply': {
        const p = this.pending.get(e.seq);
        this.pending.delete(e.seq);
        if (e.ok) p?.resolve(e.result);
        else p?.reject(new Error(`agent ${this.label}: ${e.error}`));
        return;
      }
      case 'control': return this.onControl(e.id, e.subTag, e.payload);
      case 'established': this.established.add(e.id); return;
      case 'failed': this.failures.push(`${e.id}: ${e.reason}`); return;
      case 'log': this.log.push(e.text); return;
    }
  }

  request<T = unknown>(r: Request): Promise<T> {
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error(`agent ${this.label}: no reply to ${r.op} in ${this.timeoutMs} ms\n${this.log.slice(-20).join('\n')}`));
      }, this.timeoutMs);
      const settle = <A>(f: (a: A) => void) => (a: A): void => { clearTimeout(timer); f(a); };
      this.pending.set(seq, { resolve: settle(resolve as (v: unknown) => void), reject: settle(reject) });
      this.child.stdin!.write(encodeAgentMessage({ ...r, seq } as AgentRequest) + '\n');
    });
  }

  /** Closes the datapath and ends the process (a router that stopped). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    await this.request({ op: 'close' });
    this.child.stdin!.end();
    await this.exited;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** What a datapath may leave in a host's kernel, as text to compare (see the file comment). */
async function kernelDump(h: Host, pinDir: string | undefined, timeoutMs: number): Promise<string> {
  const script = [
    'ip -d -j link show',
    'for d in $(ls /sys/class/net); do for dir in ingress egress; do tc filter show dev $d $dir | sed "s/^/tc $d $dir: /"; done; done',
    // Without nf_tables (the kernel lab loads what it needs) the same error prints every time.
    'nft list ruleset 2>&1',
    ...(pinDir ? [`ls -i ${pinDir} 2>/dev/null | sed 's/^/pin /'`] : []),
  ].join('; ');
  const r = await h.run(script, { timeoutMs });
  assert.equal(r.code, 0, `kernel dump on ${h.label}: ${r.stderr}`);
  const [linksJson = '[]', ...rest] = r.stdout.split('\n');
  const links = (JSON.parse(linksJson) as Array<{ ifname: string; mtu: number; flags: string[]; master?: string; linkinfo?: { info_kind?: string } }>)
    .map((l) => `link ${l.ifname} ${l.linkinfo?.info_kind ?? '-'} ${l.master ?? '-'} ${l.mtu} ${l.flags.includes('UP') ? 'up' : 'down'}`);
  return [...links, ...rest, await ovsDump(h)].join('\n');
}

async function ovsDump(h: Host): Promise<string> {
  let conn: OdpConnection;
  try {
    conn = await OdpConnection.open({ netns: h.namespace });
  } catch {
    return ''; // no openvswitch module: nothing of OVS can exist
  }
  try {
    const lines: string[] = [];
    const bigints = (_: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);
    for (const dp of await listDatapaths(conn)) {
      lines.push(`ovs datapath ${dp.name}`);
      for (const v of await listVports(conn, dp.ifindex)) lines.push(`ovs vport ${v.portNo} ${v.type} ${v.name}`);
      const flows = (await listFlows(conn, dp.ifindex)).map((f) => `ovs flow ${JSON.stringify({ key: f.key, actions: f.actions }, bigints)}`);
      lines.push(...flows.sort());
    }
    return lines.join('\n');
  } finally {
    conn.close();
  }
}

interface Side {
  node: SleeveNode;
  shortId: number;
  pinDir: string | undefined;
  agent?: Agent;
}

/**
 * The compliance checks for one datapath kind, in the order they must run, with
 * their set-up and clean-up. The test file registers them (node:test reports a
 * test where test() is called, and the kernel lab files results by test file).
 * The kind must be able to run on this kernel.
 */
export interface ComplianceSuite {
  name: string;
  setUp(): Promise<void>;
  tearDown(): Promise<void>;
  checks: ReadonlyArray<[name: string, check: () => Promise<void>]>;
}

export function datapathCompliance(descriptor: DatapathDescriptor, options: ComplianceOptions = {}): ComplianceSuite {
  const slow = options.slowdown ?? 1;
  // A kernel datapath forwards without its process; the sleeve is its process.
  const forwardsWhileClosed = descriptor.overlay === 'fastdp';
  const remotePort = descriptor.overlay === 'fastdp' ? fastdpPortFor(DEFAULT_MESH_PORT) : DEFAULT_MESH_PORT;

  const checks: Array<[string, () => Promise<void>]> = [];
  let bed: Testbed;
  const sides: Side[] = [];
  const baseline: string[] = [];
  let connections = 0;
  const [s1, s2] = [() => sides[0] as Side, () => sides[1] as Side];

  const env = (s: Side, restart: boolean): Record<string, string> => ({
    ...(s.pinDir ? { WEAVE_BPF_PIN_DIR: s.pinDir } : {}),
    // A removed peer leaves the kernel after a second, not 30. Not after a restart: the
    // linger is what keeps the previous run's peers until the new run's state arrives.
    ...(restart ? {} : { WEAVE_FASTDP_LINGER_MS: '1000' }),
  });

  const stateFor = (us: Side, them: Side | undefined): ForwardingState => ({
    ourName: us.node.name,
    ourShortId: us.shortId,
    peers: [{ name: us.node.name, shortId: us.shortId, nextHop: us.node.name },
      ...(them ? [{ name: them.node.name, shortId: them.shortId, nextHop: them.node.name }] : [])],
    neighbours: them ? [{ name: them.node.name, overlay: descriptor.overlay, remoteIp: them.node.host.address }] : [],
    broadcast: [{ source: us.node.name, nextHops: them ? [them.node.name] : [] },
      ...(them ? [{ source: them.node.name, nextHops: [] as PeerName[] }] : [])],
  });

  async function open(s: Side, restart = false): Promise<void> {
    s.agent = Agent.start(s.node.host, descriptor.kind, env(s, restart), 30_000 * slow);
    const got = await s.agent.request<{ kind: string; overlay: string }>({
      op: 'open', options: { ourName: s.node.name, bridge: DEFAULT_BRIDGE, mtu: MTU, port: DEFAULT_MESH_PORT },
    });
    assert.deepEqual(got, { kind: descriptor.kind, overlay: descriptor.overlay, mtu: MTU } as unknown, 'the descriptor opens its own kind');
  }

  /** Plays a control connection between the two agents: a forwarder each, control messages crossed. */
  async function connect(): Promise<{ id: string; ms: number }> {
    const id = `c${++connections}`;
    const [a, b] = [s1(), s2()];
    const uid = BigInt(connections) * 0x1000003n;
    a.agent!.onControl = (fid, subTag, payload) => void b.agent!.request({ op: 'control', id: fid, subTag, payload }).catch(() => undefined);
    b.agent!.onControl = (fid, subTag, payload) => void a.agent!.request({ op: 'control', id: fid, subTag, payload }).catch(() => undefined);
    const params = (us: Side, them: Side, outbound: boolean): ForwarderParams => ({
      remoteName: them.node.name, remoteShortId: them.shortId, remoteIp: them.node.host.address, remotePort,
      localIp: us.node.host.address, outbound, connUID: uid, encrypt: false,
    });
    const t0 = Date.now();
    await a.agent!.request({ op: 'forwarder', id, params: params(a, b, true) });
    await b.agent!.request({ op: 'forwarder', id, params: params(b, a, false) });
    const ok = await pollUntil(() => a.agent!.established.has(id) && b.agent!.established.has(id), 10_000 * slow, 20);
    assert.ok(ok, `forwarders ${id} established (failures: ${[...a.agent!.failures, ...b.agent!.failures].join('; ')})\n${a.agent!.log.join('\n')}`);
    return { id, ms: Date.now() - t0 };
  }

  async function applyBoth(connected: boolean): Promise<void> {
    for (const [us, them] of [[s1(), s2()], [s2(), s1()]] as const) await us.agent!.request({ op: 'apply', state: stateFor(us, connected ? them : undefined) });
  }

  /** Polls a single ping until it is answered; returns how long that took. */
  async function pingWithin(from: Side, to: Side, boundMs: number, what: string): Promise<number> {
    const t0 = Date.now();
    const ok = await pollUntil(() => from.node.container.ping(to.node.ip, { count: 1, waitSeconds: 1 }), boundMs * slow, 20);
    assert.ok(ok, `${what}: ${from.node.host.label} -> ${to.node.host.label} answered within ${boundMs * slow} ms`);
    return Date.now() - t0;
  }

  async function noPing(from: Side, to: Side, boundMs: number, what: string): Promise<void> {
    const ok = await pollUntil(async () => !(await from.node.container.ping(to.node.ip, { count: 1, waitSeconds: 1 })), boundMs * slow, 20);
    assert.ok(ok, `${what}: ${from.node.host.label} -> ${to.node.host.label} still answered after ${boundMs * slow} ms`);
  }

  const dump = (s: Side): Promise<string> => kernelDump(s.node.host, s.pinDir, 30_000 * slow);

  const setUp = async (): Promise<void> => {
    bed = await createTestbed({ hosts: 2, underlay: 'bridge' });
    for (const i of [1, 2]) {
      const node = await plugNode(bed.host(i), i, MTU);
      // No IPv6: its router solicitations and MLD reports are traffic of their own, which a
      // datapath that learns from misses (OVS) turns into flows in the middle of a dump.
      for (const ns of [node.host, node.container]) {
        await ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      }
      const pinDir = descriptor.kind === 'bpf' ? `/tmp/${bed.prefix}-bpffs-${descriptor.kind}-h${i}` : undefined;
      sides.push({ node, shortId: i, pinDir });
    }
    baseline.push(...await Promise.all(sides.map(dump)));
  };

  const tearDown = async (): Promise<void> => {
    for (const s of sides) s.agent?.kill();
    for (const s of sides) await descriptor.teardown({ netns: s.node.host.namespace, bridge: DEFAULT_BRIDGE, ...(s.pinDir ? { pinDir: s.pinDir } : {}) }).catch(() => undefined);
    await bed?.teardown();
    for (const s of sides) {
      if (!s.pinDir) continue;
      try { execFileSync('umount', [s.pinDir], { stdio: 'ignore' }); } catch { /* not a mount point */ }
      rmSync(s.pinDir, { recursive: true, force: true });
    }
  };

  checks.push(['forwarder lifecycle: forwarders establish, traffic flows; removed, it stops; added again, it flows', async () => {
    await Promise.all(sides.map((s) => open(s)));
    await applyBoth(true);
    const first = await connect();
    assert.ok(first.ms < 5_000 * slow, `forwarders established in ${first.ms} ms`);
    const ms = await pingWithin(s1(), s2(), 5_000, 'first ping');
    await pingWithin(s2(), s1(), 2_000, 'reverse ping');
    process.stdout.write(`${descriptor.kind}: forwarders established in ${first.ms} ms, first ping answered after ${ms} ms\n`);

    for (const s of sides) await s.agent!.request({ op: 'stopForwarder', id: first.id });
    await applyBoth(false);
    await noPing(s1(), s2(), 5_000, 'with the peer removed');
    process.stdout.write(`${descriptor.kind}: with the peer removed, traffic stopped\n`);

    await applyBoth(true);
    await connect();
    await pingWithin(s1(), s2(), 5_000, 'with the peer added again');
  }]);

  checks.push(['counters move when traffic flows', async () => {
    const read = (s: Side): Promise<DatapathStats> => s.agent!.request<DatapathStats>({ op: 'stats' });
    const moved = (b: DatapathStats, a: DatapathStats): bigint => (a.kernelForwarded + a.userspace) - (b.kernelForwarded + b.userspace);
    const before1 = await read(s1());
    const before2 = await read(s2());
    const r = await s1().node.container.exec('ping', ['-c', '10', '-i', '0.05', '-W', '1', s2().node.ip], { timeoutMs: 15_000 * slow });
    assert.equal(r.code, 0, `10 pings: ${r.stdout}${r.stderr}`);
    // Stats are the datapath's last reading (the sleeve's worker reports every 500 ms, OVS every 5 s).
    let got = '';
    const ok = await pollUntil(async () => {
      const [a1, a2] = [await read(s1()), await read(s2())];
      got = `${s1().node.host.label} +${moved(before1, a1)}, ${s2().node.host.label} +${moved(before2, a2)}`;
      // Each echo request and reply passes both hosts' datapaths once.
      return moved(before1, a1) >= 20n && moved(before2, a2) >= 20n;
    }, 12_000 * slow, 200);
    assert.ok(ok, `kernelForwarded + userspace grew by at least 20 on both hosts: ${got}`);
  }]);

  checks.push(['idempotent apply: the same forwarding state again leaves the kernel as it was', async () => {
    const [before1, before2] = await Promise.all(sides.map(dump));
    await applyBoth(true);
    await applyBoth(true);
    // Applying is asynchronous in some datapaths: give it time to reach the kernel.
    await new Promise((r) => setTimeout(r, 500 * slow));
    const [after1, after2] = await Promise.all(sides.map(dump));
    assert.equal(after1, before1, `${s1().node.host.label} after applying the same state again`);
    assert.equal(after2, before2, `${s2().node.host.label} after applying the same state again`);
  }]);

  checks.push([`close keeps the kernel state${forwardsWhileClosed ? ' and forwarding' : ''}; a restart (re-open after close) forwards again`, async () => {
    const before1 = await dump(s1());
    await s1().agent!.stop();
    // The control connection went with the process: the peer's forwarder for it stops.
    await s2().agent!.request({ op: 'stopForwarder', id: `c${connections}` });
    assert.equal(await dump(s1()), before1, 'close left the kernel state');
    if (forwardsWhileClosed) {
      const r = await s1().node.container.exec('ping', ['-c', '5', '-i', '0.1', '-W', '1', s2().node.ip], { timeoutMs: 15_000 * slow });
      assert.equal(r.code, 0, `the kernel forwards while the process is gone:\n${r.stdout}`);
    } else {
      await noPing(s1(), s2(), 3_000, 'with the process gone');
    }

    // The restart: traffic that runs across it, ten echoes a second, until forwarding is
    // back. A kernel datapath loses at most RESTART_LOST_BOUND of them.
    const pinger = s1().node.container.spawn('ping', ['-n', '-i', '0.1', '-W', '1', s2().node.ip]);
    await open(s1(), true);
    await applyBoth(true);
    await connect();
    const ms = await pingWithin(s1(), s2(), 5_000, 'after the restart');
    pinger.kill('SIGINT'); // ping prints its summary on SIGINT
    const code = await pinger.exited;
    const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(pinger.output());
    assert.ok(m, pinger.output());
    const lost = Number(m[1]) - Number(m[2]);
    process.stdout.write(`${descriptor.kind}: restart: ping answered ${ms} ms after re-open; ${lost} of ${m[1]} lost across it\n`);
    const answered = new Set([...pinger.output().matchAll(/icmp_seq=(\d+)/g)].map((x) => Number(x[1])));
    const missing = Array.from({ length: Number(m[1]) }, (_, i) => i + 1).filter((seq) => !answered.has(seq));
    if (forwardsWhileClosed) assert.ok(code === 0 && lost <= RESTART_LOST_BOUND, `lost ${lost} of ${m[1]} pings across the restart (icmp_seq ${missing.join(', ')})`);
  }]);

  checks.push(['teardown after close leaves the namespace as it was before open', async () => {
    await Promise.all(sides.map((s) => s.agent!.stop()));
    for (const s of sides) {
      await descriptor.teardown({ netns: s.node.host.namespace, bridge: DEFAULT_BRIDGE, ...(s.pinDir ? { pinDir: s.pinDir } : {}) });
    }
    const dumps = await Promise.all(sides.map(dump));
    for (const [i, s] of sides.entries()) assert.equal(dumps[i], baseline[i], `${s.node.host.label} after teardown`);
    // Idempotent: a second teardown (weave reset twice) finds nothing and fails on nothing.
    await descriptor.teardown({ netns: s1().node.host.namespace, bridge: DEFAULT_BRIDGE, ...(s1().pinDir ? { pinDir: s1().pinDir } : {}) });
  }]);
  return { name: `datapath compliance: ${descriptor.kind}`, setUp, tearDown, checks };
}
