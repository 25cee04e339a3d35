// Simulated hosts for data-plane tests: each "host" is a network namespace,
// joined to the others by an underlay (a shared bridge in its own namespace, or
// point-to-point veths), with "containers" as further namespaces a router can
// plug in with `weave attach --netns PATH`.
//
// Nothing is created in the root namespace: veth pairs are created directly in
// their target namespaces, and addresses exist only inside the namespaces.
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import {
  execCommand, mustExec, spawnTracked, pollUntil,
  type ExecOptions, type ExecResult, type SpawnedProcess,
} from './exec.js';
import { deleteNamespacesWithPrefixSync, newRunPrefix, registerRun, unregisterRun } from './cleanup.js';

export type Underlay = 'bridge' | 'mesh-veths';

export interface TestbedOptions {
  /** Number of simulated hosts: 1..250 on a bridge underlay (one /24), 1..32 with mesh veths (n² links). */
  hosts: number;
  underlay: Underlay;
  /** Namespace name prefix; default a fresh unique one (see newRunPrefix). */
  prefix?: string;
}

export interface PingOptions {
  /** Echo requests to send (default 1). */
  count?: number;
  /** Seconds to wait for each reply (default 1). */
  waitSeconds?: number;
}

/** Something that runs commands inside one network namespace. */
export interface NamespaceRunner {
  /** The namespace name, as `ip netns list` shows it. */
  readonly namespace: string;
  /** Path for `setns`/`weave attach --netns`: /run/netns/<namespace>. */
  readonly netnsPath: string;
  exec(cmd: string, args?: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Runs a shell command line (`sh -c`). */
  run(shell: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running command; the testbed kills it at teardown. */
  spawn(cmd: string, args?: readonly string[], opts?: ExecOptions): SpawnedProcess;
  /** True when `address` answers ICMP echo. */
  ping(address: string, opts?: PingOptions): Promise<boolean>;
}

export interface Container extends NamespaceRunner {
  readonly name: string;
  readonly host: Host;
}

export interface Host extends NamespaceRunner {
  /** 1-based host number. */
  readonly index: number;
  /** "h1", "h2", ... */
  readonly label: string;
  /** The host's underlay IPv4 address. */
  readonly address: string;
  /** A scratch directory for this host (state dirs, logs); removed at teardown. */
  readonly dir: string;
  readonly containers: readonly Container[];
  /** Creates a namespace "inside" this host, with only `lo` (up). */
  addContainer(name: string): Promise<Container>;
}

export interface BlockOptions {
  /** Which traffic to drop: datagrams arriving at `port`, leaving for it, or both (default). */
  direction?: 'in' | 'out' | 'both';
}

export interface Testbed {
  readonly prefix: string;
  readonly underlay: Underlay;
  readonly hosts: readonly Host[];
  /** The underlay subnet, e.g. "172.31.57.0/24" (host i has .i). */
  readonly subnet: string;
  /** The namespace holding the underlay bridge (bridge underlay only). */
  readonly underlayNamespace: string | undefined;
  /** Scratch directory of this run; removed at teardown. */
  readonly dir: string;
  host(labelOrIndex: string | number): Host;
  /** A and B can no longer reach each other on the underlay; all other pairs are unaffected. */
  cutLink(a: Host, b: Host): Promise<void>;
  healLink(a: Host, b: Host): Promise<void>;
  /** Drops UDP to `port` inside the host (nft in the host's namespace). */
  blockUdpPort(host: Host, port: number, opts?: BlockOptions): Promise<void>;
  unblockUdpPort(host: Host, port: number): Promise<void>;
  /** Kills every process started in the testbed's namespaces and deletes them. Idempotent. */
  teardown(): Promise<void>;
}

/**
 * The kernel's ARP table is one for all network namespaces, capped by the
 * init namespace's gc_thresh3 (1024 by default): 50 simulated hosts that all
 * talk to each other hold ~2,500 entries, and past the cap resolution fails
 * ("neighbor table overflow": connect times out, ping gets ENOBUFS), which a
 * machine per host never sees. A testbed of n hosts raises the caps (never
 * lowers them) to what n² entries need, plus the default headroom.
 */
function raiseNeighbourTableLimits(hosts: number): void {
  const entries = hosts * hosts;
  // The hard cap first: gc_thresh2 stays below it.
  const wanted: [string, number][] = [['gc_thresh3', 2 * entries + 1024], ['gc_thresh2', entries + 512]];
  for (const [name, value] of wanted) {
    const path = `/proc/sys/net/ipv4/neigh/default/${name}`;
    if (Number(readFileSync(path, 'utf8').trim()) < value) writeFileSync(path, `${value}\n`);
  }
}

/** A bridge underlay is one /24 (host i has .i); mesh veths grow as n², so they stay small. */
const maxHosts: Record<Underlay, number> = { bridge: 250, 'mesh-veths': 32 };

/** `ping` from iputils when installed, else BusyBox's applet (both need root for raw ICMP). */
let pingCommand: string[] | undefined;
async function resolvePing(): Promise<string[]> {
  if (pingCommand) return pingCommand;
  const which = await execCommand('sh', ['-c', 'command -v ping']);
  if (which.code === 0 && which.stdout.trim()) pingCommand = [which.stdout.trim()];
  else {
    const bb = await execCommand('sh', ['-c', 'command -v busybox']);
    if (bb.code !== 0) throw new Error('testbed: neither ping nor busybox is installed (apt-get install iputils-ping or busybox-static)');
    pingCommand = [bb.stdout.trim(), 'ping'];
  }
  return pingCommand;
}

class NamespaceRunnerImpl implements NamespaceRunner {
  readonly netnsPath: string;
  constructor(readonly namespace: string, private readonly bed: TestbedImpl) {
    this.netnsPath = `/run/netns/${namespace}`;
  }

  exec(cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    return execCommand('ip', ['netns', 'exec', this.namespace, cmd, ...args], opts);
  }

  run(shell: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.exec('sh', ['-c', shell], opts);
  }

  spawn(cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): SpawnedProcess {
    // `ip netns exec` execs the command, so the child's pid is the command's pid.
    const p = spawnTracked('ip', ['netns', 'exec', this.namespace, cmd, ...args], opts);
    this.bed.track(p);
    return p;
  }

  async ping(address: string, opts: PingOptions = {}): Promise<boolean> {
    const ping = await resolvePing();
    const count = opts.count ?? 1;
    const wait = opts.waitSeconds ?? 1;
    const [cmd, ...pre] = ping as [string, ...string[]];
    const r = await this.exec(cmd, [...pre, '-c', String(count), '-W', String(wait), address], {
      timeoutMs: (count * wait + 5) * 1000,
    });
    return r.code === 0;
  }
}

class ContainerImpl extends NamespaceRunnerImpl implements Container {
  constructor(readonly name: string, readonly host: Host, namespace: string, bed: TestbedImpl) {
    super(namespace, bed);
  }
}

class HostImpl extends NamespaceRunnerImpl implements Host {
  readonly label: string;
  readonly containers: Container[] = [];
  constructor(readonly index: number, readonly address: string, readonly dir: string, namespace: string,
    private readonly testbed: TestbedImpl) {
    super(namespace, testbed);
    this.label = `h${index}`;
  }

  async addContainer(name: string): Promise<Container> {
    if (!/^[a-z0-9][a-z0-9-]{0,15}$/.test(name)) {
      throw new Error(`testbed: container name "${name}" must be 1-16 chars of a-z, 0-9 and '-'`);
    }
    if (this.containers.some((c) => c.name === name)) {
      throw new Error(`testbed: host ${this.label} already has a container named "${name}"`);
    }
    const ns = `${this.namespace}-c-${name}`;
    await this.testbed.addNamespace(ns);
    const c = new ContainerImpl(name, this, ns, this.testbed);
    this.containers.push(c);
    return c;
  }
}

class TestbedImpl implements Testbed {
  readonly hosts: HostImpl[] = [];
  readonly subnet: string;
  readonly underlayNamespace: string | undefined;
  readonly dir: string;
  private readonly spawned = new Set<SpawnedProcess>();
  private readonly cuts = new Set<string>();
  private tornDown = false;

  constructor(readonly prefix: string, readonly underlay: Underlay, private readonly octet: number) {
    this.subnet = `172.31.${octet}.0/24`;
    this.underlayNamespace = underlay === 'bridge' ? `${prefix}-ul` : undefined;
    this.dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  }

  track(p: SpawnedProcess): void {
    this.spawned.add(p);
    void p.exited.then(() => this.spawned.delete(p));
  }

  killProcesses(): void {
    for (const p of this.spawned) p.kill('SIGKILL');
    this.spawned.clear();
  }

  hostAddress(i: number): string {
    return `172.31.${this.octet}.${i}`;
  }

  async addNamespace(ns: string): Promise<void> {
    if (this.tornDown) throw new Error(`testbed ${this.prefix}: already torn down`);
    await mustExec('ip', ['netns', 'add', ns]);
    await mustExec('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  async build(count: number): Promise<void> {
    for (let i = 1; i <= count; i++) {
      const ns = `${this.prefix}-h${i}`;
      await this.addNamespace(ns);
      const dir = join(this.dir, `h${i}`);
      mkdirSync(dir);
      this.hosts.push(new HostImpl(i, this.hostAddress(i), dir, ns, this));
    }
    raiseNeighbourTableLimits(count);
    if (this.underlay === 'bridge') await this.buildBridge();
    else await this.buildMeshVeths();
  }

  private async buildBridge(): Promise<void> {
    const ul = this.underlayNamespace as string;
    await this.addNamespace(ul);
    await mustExec('ip', ['-n', ul, 'link', 'add', 'br0', 'type', 'bridge']);
    await mustExec('ip', ['-n', ul, 'link', 'set', 'br0', 'up']);
    for (const h of this.hosts) {
      const port = `h${h.index}`;
      // Both ends are created straight inside their namespaces, so no name in the root namespace can clash.
      await mustExec('ip', ['link', 'add', 'eth0', 'netns', h.namespace, 'type', 'veth', 'peer', 'name', port, 'netns', ul]);
      await mustExec('ip', ['-n', ul, 'link', 'set', port, 'master', 'br0']);
      await mustExec('ip', ['-n', ul, 'link', 'set', port, 'up']);
      await mustExec('ip', ['-n', h.namespace, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
      await mustExec('ip', ['-n', h.namespace, 'link', 'set', 'eth0', 'up']);
    }
  }

  private async buildMeshVeths(): Promise<void> {
    // One veth per pair; each end carries the host's own address as a /32 with the
    // peer's address as its point-to-point partner, which installs the host route.
    for (const a of this.hosts) {
      for (const b of this.hosts) {
        if (b.index <= a.index) continue;
        const ifA = meshIfName(b);
        const ifB = meshIfName(a);
        await mustExec('ip', ['link', 'add', ifA, 'netns', a.namespace, 'type', 'veth', 'peer', 'name', ifB, 'netns', b.namespace]);
        await mustExec('ip', ['-n', a.namespace, 'addr', 'add', a.address, 'peer', `${b.address}/32`, 'dev', ifA]);
        await mustExec('ip', ['-n', b.namespace, 'addr', 'add', b.address, 'peer', `${a.address}/32`, 'dev', ifB]);
        await mustExec('ip', ['-n', a.namespace, 'link', 'set', ifA, 'up']);
        await mustExec('ip', ['-n', b.namespace, 'link', 'set', ifB, 'up']);
      }
    }
  }

  host(labelOrIndex: string | number): Host {
    const h = typeof labelOrIndex === 'number'
      ? this.hosts[labelOrIndex - 1]
      : this.hosts.find((x) => x.label === labelOrIndex);
    if (!h) throw new Error(`testbed ${this.prefix}: no host ${String(labelOrIndex)} (have h1..h${this.hosts.length})`);
    return h;
  }

  private ownHost(h: Host): HostImpl {
    const mine = this.hosts.find((x) => x === h);
    if (!mine) throw new Error(`testbed ${this.prefix}: host ${h.label} belongs to another testbed`);
    return mine;
  }

  private pairKey(a: Host, b: Host): { key: string; lo: HostImpl; hi: HostImpl } {
    const x = this.ownHost(a);
    const y = this.ownHost(b);
    if (x === y) throw new Error(`testbed ${this.prefix}: cannot cut a host (${x.label}) from itself`);
    const [lo, hi] = x.index < y.index ? [x, y] : [y, x];
    return { key: `${lo.index}_${hi.index}`, lo, hi };
  }

  async cutLink(a: Host, b: Host): Promise<void> {
    const { key, lo, hi } = this.pairKey(a, b);
    if (this.cuts.has(key)) return;
    if (this.underlay === 'bridge') {
      // Drop bridged traffic (IP and ARP alike) between the two ports, as a broken switch path would.
      const table = `table bridge wtcut_${key} {
  chain forward_cut {
    type filter hook forward priority 0; policy accept;
    iifname "h${lo.index}" oifname "h${hi.index}" drop
    iifname "h${hi.index}" oifname "h${lo.index}" drop
  }
}
`;
      await mustExec('ip', ['netns', 'exec', this.underlayNamespace as string, 'nft', '-f', '-'], { input: table });
    } else {
      await mustExec('ip', ['-n', lo.namespace, 'link', 'set', meshIfName(hi), 'down']);
      await mustExec('ip', ['-n', hi.namespace, 'link', 'set', meshIfName(lo), 'down']);
    }
    this.cuts.add(key);
  }

  async healLink(a: Host, b: Host): Promise<void> {
    const { key, lo, hi } = this.pairKey(a, b);
    if (!this.cuts.has(key)) return;
    if (this.underlay === 'bridge') {
      await mustExec('ip', ['netns', 'exec', this.underlayNamespace as string, 'nft', 'delete', 'table', 'bridge', `wtcut_${key}`]);
    } else {
      await mustExec('ip', ['-n', lo.namespace, 'link', 'set', meshIfName(hi), 'up']);
      await mustExec('ip', ['-n', hi.namespace, 'link', 'set', meshIfName(lo), 'up']);
    }
    this.cuts.delete(key);
  }

  async blockUdpPort(host: Host, port: number, opts: BlockOptions = {}): Promise<void> {
    const h = this.ownHost(host);
    checkPort(port);
    const dir = opts.direction ?? 'both';
    const chains: string[] = [];
    if (dir !== 'out') chains.push(`chain block_in { type filter hook input priority 0; policy accept; udp dport ${port} drop; }`);
    if (dir !== 'in') chains.push(`chain block_out { type filter hook output priority 0; policy accept; udp dport ${port} drop; }`);
    const table = `table inet wtudp_${port} {\n  ${chains.join('\n  ')}\n}\n`;
    // Replace any earlier block of the same port so the direction is exactly what was asked.
    await execCommand('ip', ['netns', 'exec', h.namespace, 'nft', 'delete', 'table', 'inet', `wtudp_${port}`]);
    await mustExec('ip', ['netns', 'exec', h.namespace, 'nft', '-f', '-'], { input: table });
  }

  async unblockUdpPort(host: Host, port: number): Promise<void> {
    const h = this.ownHost(host);
    checkPort(port);
    await execCommand('ip', ['netns', 'exec', h.namespace, 'nft', 'delete', 'table', 'inet', `wtudp_${port}`]);
  }

  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    const waits = [...this.spawned].map((p) => p.exited);
    this.killProcesses();
    await Promise.all(waits);
    deleteNamespacesWithPrefixSync(this.prefix);
    rmSync(this.dir, { recursive: true, force: true });
    unregisterRun(this.prefix);
  }
}

function meshIfName(peer: Host): string {
  return `to-${peer.label}`;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`testbed: UDP port ${port} is not in 1..65535`);
}

/**
 * Builds the hosts and underlay. The caller must arrange `after(() => bed.teardown())`;
 * process exit and SIGINT/SIGTERM/SIGHUP also remove the run's namespaces.
 */
export async function createTestbed(opts: TestbedOptions): Promise<Testbed> {
  if (opts.underlay !== 'bridge' && opts.underlay !== 'mesh-veths') {
    throw new Error(`testbed: underlay must be 'bridge' or 'mesh-veths', got '${String(opts.underlay)}'`);
  }
  const limit = maxHosts[opts.underlay];
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > limit) {
    throw new Error(`testbed: hosts must be an integer in 1..${limit} with a ${opts.underlay} underlay, got ${opts.hosts}`);
  }
  const prefix = opts.prefix ?? newRunPrefix();
  if (!/^[a-z0-9][a-z0-9-]{0,23}$/.test(prefix)) {
    throw new Error(`testbed: prefix "${prefix}" must be 1-24 chars of a-z, 0-9 and '-'`);
  }
  // Addresses live only inside this run's namespaces, so concurrent runs cannot clash;
  // the random third octet just makes captures from different runs easy to tell apart.
  const bed = new TestbedImpl(prefix, opts.underlay, randomInt(0, 256));
  registerRun({ prefix, dir: bed.dir, killProcesses: () => bed.killProcesses() });
  try {
    await bed.build(opts.hosts);
  } catch (err) {
    await bed.teardown();
    throw err;
  }
  return bed;
}

/** Waits until `from` can ping `to` (or the timeout passes); returns whether it could. */
export async function waitForPing(from: NamespaceRunner, to: string, timeoutMs = 10_000): Promise<boolean> {
  return pollUntil(() => from.ping(to, { count: 1, waitSeconds: 1 }), timeoutMs, 50);
}

/** A regular expression source matching `ip` literally. */
export function ipPattern(ip: string): string {
  return ip.replaceAll('.', '\\.');
}

/**
 * Gives `h` a second address on its bridge underlay (.200 of the testbed's /24)
 * and returns it. Added second, it is not the source `h`'s route to `towards`
 * prefers: checked, so a test of traffic from that address cannot pass by chance.
 */
export async function addSecondAddress(bed: Testbed, h: Host, towards: Host): Promise<string> {
  const second = bed.subnet.replace(/\.0\/24$/, '.200');
  if (second === bed.subnet) throw new Error(`addSecondAddress: the underlay ${bed.subnet} is not a /24`);
  await mustExec('ip', ['-n', h.namespace, 'addr', 'add', `${second}/24`, 'dev', 'eth0']);
  const route = (await mustExec('ip', ['-n', h.namespace, 'route', 'get', towards.address])).stdout;
  if (!new RegExp(`src ${ipPattern(h.address)}\\b`).test(route)) throw new Error(`${h.label}'s route to ${towards.label} should prefer its first address:\n${route}`);
  return second;
}
