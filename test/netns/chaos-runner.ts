// Chaos with invariants on real routers: a seeded sequence of faults
// (partition and heal, 30 % packet loss on a host's underlay (nftables; this
// kernel has no netem), a slow congested underlay link (tbf), kill -9 and
// relaunch, weave stop and launch, the sleeve port blocked, the sleeve's
// packet worker killed, a router's DNS clock jumped), each followed by
// the checks a user relies on: every container reaches every other, no
// address is handed out twice (also to containers attached after a crash),
// the IPAM ring views agree on every host, and so do the DNS names of the
// containers (also across router restarts); with a password, no container
// payload on the underlay in plaintext. Used by
// test/netns/chaos.test.ts (short, fixed seed) and bench/chaos-bench.ts
// (hundreds of steps).
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { seededRandom } from '../unit/mesh-harness.js';
import { execCommand, mustExec, pollUntil } from './lib/exec.js';
import { SLEEVE_PORT } from './sleeve-harness.js';
import { mustWeave, weave, weaveStateDir, weaverPid, type Container, type Host, type Testbed } from './lib/index.js';
import { bpfMapsByName } from './lib/router-maps.js';

export type FaultKind = 'partition' | 'loss' | 'slow-link' | 'kill9' | 'stop-launch' | 'block-sleeve' | 'kill-sleeve-worker' | 'clock-jump';
const FAULTS: readonly FaultKind[] = ['partition', 'loss', 'slow-link', 'kill9', 'stop-launch', 'block-sleeve', 'kill-sleeve-worker', 'clock-jump'];

/**
 * Every router runs with WEAVE_TEST_FAULTS=1: SIGUSR2 then ends its sleeve
 * packet worker as a crash would (weaver/datapath-wiring.ts).
 */
const FAULT_ENV = { WEAVE_TEST_FAULTS: '1' };
/**
 * A clock jump relaunches a router with its weaveDNS clock this far off, at
 * most (either way): within the 900 s that DNS gossip tolerates (wire spec
 * §9.3), beyond which Weave itself drops the connection. The process's clock
 * cannot be moved without moving every router's (one kernel), so the jump is
 * an offset the router adds, set at launch (WEAVE_TEST_DNS_CLOCK_OFFSET_SEC);
 * tombstone expiry across a jump is unit-tested with an injected clock
 * (test/unit/dns-gossip.test.ts).
 */
const MAX_CLOCK_JUMP_SEC = 800;
/**
 * Offsets stay until the router's next relaunch, so a jump is also kept within
 * this of every other router's offset: two jumps in opposite directions would
 * otherwise put routers up to 1600 s apart, past the 900 s beyond which DNS
 * gossip (rightly) refuses the connection and the router stays cut off (seed
 * 2028, step 91: +556 s and +516 s against -567 s).
 */
const MAX_CLOCK_SKEW_SEC = 850;

/**
 * A slow, congested underlay link in place of netem's delay (this kernel has
 * no netem): 1 Mbit/s with up to 400 ms of queue, so whatever the routers send
 * waits behind everything else.
 */
const SLOW_LINK = ['root', 'tbf', 'rate', '1mbit', 'burst', '32kbit', 'latency', '400ms'];

export interface ChaosOptions {
  steps: number;
  seed: number;
  /** How long a partition, packet loss or blocked port lasts. */
  holdMs: number;
  /** Every container must reach every other this soon after the heal or relaunch. */
  recoveryBoundMs: number;
  /** The IPAM ring views are compared after every this many steps (and after the last). */
  ringCheckEvery?: number;
  /** Extra launch flags for every router. */
  flags?: readonly string[];
  /**
   * Launch every router with this --password; the invariants then include
   * that a container's ping payload never crosses the underlay in plaintext.
   */
  password?: string;
  log?(line: string): void;
}

export interface StepRecord { step: number; fault: FaultKind; host: string; recoveryMs: number }

export interface ChaosResult { steps: StepRecord[]; containers: number }

/** Drops 30 % of the host's underlay packets both ways, TCP and UDP alike. */
const LOSS_TABLE = `table inet wtchaos_loss {
  chain in { type filter hook input priority 0; policy accept; iifname "eth0" numgen random mod 100 < 30 drop; }
  chain out { type filter hook output priority 0; policy accept; oifname "eth0" numgen random mod 100 < 30 drop; }
}
`;

/** The ping payload pattern (16 bytes, repeated through the payload) looked for on the underlay. */
const PLAINTEXT_MARK = 'feedc0dedeadbeef57ea1ed0c0ffee42';

interface Attached {
  host: Host;
  container: Container;
  ip: string;
  /** Given with `weave attach -h`; it must survive restarts of its router (saved in the state dir). */
  name: string;
}

/** `weave status dns` as sorted `name ip` pairs. */
function dnsView(text: string): string {
  return text.split('\n').map((l) => l.trim().split(/\s+/).slice(0, 2).join(' ')).filter((l) => l !== '').sort().join(',');
}

function ipOf(out: string): string {
  const ip = out.trim();
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/, `weave attach printed ${JSON.stringify(out)}`);
  return ip;
}

/** `weave status ipam` as peer nickname -> IPs owned. */
function ownership(text: string): string {
  const owners: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\S+\((\w+)\)\s+(\d+) IPs/.exec(line);
    if (m) owners.push(`${m[1]}=${m[2]}`);
  }
  return owners.sort().join(',');
}

export class ChaosRunner {
  private readonly random: () => number;
  private readonly attached: Attached[] = [];
  private readonly log: (line: string) => void;
  private containerSeq = 0;
  /** Each router's DNS clock offset since its last launch (seconds). */
  private readonly clockOffsets = new Map<Host, number>();

  constructor(private readonly bed: Testbed, private readonly opts: ChaosOptions) {
    this.random = seededRandom(opts.seed);
    this.log = opts.log ?? (() => {});
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  private launchArgs(h: Host): string[] {
    const others = this.bed.hosts.filter((o) => o !== h).map((o) => o.address);
    const password = this.opts.password === undefined ? [] : ['--password', this.opts.password];
    return ['launch', '--nickname', `h${h.index}`, ...password, ...(this.opts.flags ?? []), ...others];
  }

  /** Routers on every host and one container on each. */
  async setUp(): Promise<void> {
    for (const h of this.bed.hosts) await this.relaunch(h);
    for (const h of this.bed.hosts) await this.attachNew(h);
    await this.checkInvariants('setup');
  }

  private async attachNew(h: Host): Promise<void> {
    const name = `k${this.containerSeq++}`;
    const container = await h.addContainer(name);
    const ip = ipOf(await mustWeave(h, ['attach', '--netns', container.netnsPath, '-h', `${name}.weave.local`], { timeoutMs: 60_000 }));
    this.attached.push({ host: h, container, ip, name });
    const ips = this.attached.map((a) => a.ip);
    assert.equal(new Set(ips).size, ips.length, `seed ${this.opts.seed}: an address was handed out twice: ${ips.join(' ')}`);
  }

  /** The first container on each host: every pair of them must reach each other. */
  private probes(): Attached[] {
    return this.bed.hosts.map((h) => this.attached.find((a) => a.host === h)!);
  }

  /** Waits until every probe pings every other; returns how long that took. */
  private async recover(what: string): Promise<number> {
    const started = Date.now();
    const probes = this.probes();
    const pending = probes.flatMap((a) => probes.filter((b) => b !== a).map((b) => [a, b] as const));
    // The newest container too, if it is not a probe: churned containers must be reachable as well.
    const newest = this.attached[this.attached.length - 1]!;
    if (!probes.includes(newest)) pending.push([probes.find((p) => p.host !== newest.host)!, newest]);
    const deadline = started + this.opts.recoveryBoundMs;
    for (const [a, b] of pending) {
      const ok = await pollUntil(() => a.container.ping(b.ip, { count: 1, waitSeconds: 1 }), Math.max(0, deadline - Date.now()), 100);
      if (!ok) await this.diagnose(a, b);
      assert.ok(ok, `seed ${this.opts.seed}, ${what}: ${a.host.label} container does not reach ${b.ip} on ${b.host.label} `
        + `within ${this.opts.recoveryBoundMs} ms`);
    }
    return Date.now() - started;
  }

  /**
   * Logs what every host holds for a pair that does not reach each other:
   * the containers' MACs and ARP caches, the bridges' forwarding tables, the
   * eBPF datapath's MAC and peer tables, the connections and the router's
   * last log lines.
   */
  private async diagnose(a: Attached, b: Attached): Promise<void> {
    const out = async (p: Promise<{ stdout: string; stderr: string }>): Promise<string> => {
      try {
        const r = await p;
        return (r.stdout + r.stderr).trim();
      } catch (e) {
        return String(e);
      }
    };
    for (const c of [a, b]) {
      this.log(`diagnosis: ${c.name} ${c.ip} on ${c.host.label}: ${await out(c.container.exec('ip', ['-br', 'link', 'show', 'ethwe']))}`);
      this.log(`  neigh: ${(await out(c.container.exec('ip', ['neigh']))).replace(/\n/g, ' | ')}`);
    }
    for (const h of this.bed.hosts) {
      this.log(`diagnosis: ${h.label}`);
      this.log(`  fdb: ${(await out(h.exec('bridge', ['fdb', 'show', 'br', 'weave']))).split('\n').filter((l) => !/permanent/.test(l)).join(' | ')}`);
      this.log(`  connections: ${(await out(weave(h, ['status', 'connections']))).replace(/\n/g, ' | ')}`);
      try {
        for (const [name, ids] of await bpfMapsByName(weaverPid(h))) {
          if (!/^weave_(local_ma|remote_ma|peers|local_po)/.test(name)) continue;
          for (const id of ids) this.log(`  ${name}: ${(await out(execCommand('bpftool', ['map', 'dump', 'id', String(id)]))).replace(/\s+/g, ' ')}`);
        }
      } catch (e) {
        this.log(`  bpf maps: ${String(e)}`);
      }
      const logLines = readFileSync(join(weaveStateDir(h), 'weaver.log'), 'utf8').trimEnd().split('\n');
      for (const l of logLines.slice(-15)) this.log(`  log: ${l}`);
    }
  }

  private async checkInvariants(what: string): Promise<void> {
    const ips = this.attached.map((a) => a.ip);
    assert.equal(new Set(ips).size, ips.length, `seed ${this.opts.seed}, ${what}: duplicate address among ${ips.join(' ')}`);
    let views: string[] = [];
    const agreed = await pollUntil(async () => {
      views = await Promise.all(this.bed.hosts.map(async (h) => ownership(await mustWeave(h, ['status', 'ipam']))));
      return views.every((v) => v === views[0] && v.split(',').length === this.bed.hosts.length);
    }, 30_000, 250);
    assert.ok(agreed, `seed ${this.opts.seed}, ${what}: IPAM ring views differ: ${views.join(' | ')}`);
    // Every host holds the same names: those of the containers, with their addresses.
    const want = this.attached.map((a) => `${a.name} ${a.ip}`).sort().join(',');
    let dns: string[] = [];
    const dnsAgreed = await pollUntil(async () => {
      dns = await Promise.all(this.bed.hosts.map(async (h) => dnsView(await mustWeave(h, ['status', 'dns']))));
      return dns.every((v) => v === want);
    }, 30_000, 250);
    assert.ok(dnsAgreed, `seed ${this.opts.seed}, ${what}: DNS views differ from the containers (${want}): ${dns.join(' | ')}`);
    if (this.opts.password !== undefined) await this.checkNoPlaintext(what);
  }

  /**
   * Pings with a recognisable payload from one host's container to another's
   * while capturing on the sender's underlay: with a password the payload
   * must never appear there (the capture must have seen the traffic, though).
   */
  private async checkNoPlaintext(what: string): Promise<void> {
    const [a, b] = this.probes();
    const file = `${a!.host.dir}/underlay.pcap`;
    // Immediate mode: packets reach the file as they pass, not when a ring block times out (1 s).
    const capture = a!.host.spawn('tcpdump', ['-i', 'eth0', '--immediate-mode', '-U', '-w', file, 'udp or tcp']);
    try {
      assert.ok(await pollUntil(() => capture.output().includes('listening on'), 10_000, 50), `tcpdump started: ${capture.output()}`);
      const r = await a!.container.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', '-p', PLAINTEXT_MARK, b!.ip]);
      assert.equal(r.code, 0, `seed ${this.opts.seed}, ${what}: the marked ping from ${a!.host.label} to ${b!.host.label} failed: ${r.stdout}`);
    } finally {
      capture.kill('SIGINT');
      await capture.exited;
    }
    const captured = readFileSync(file);
    rmSync(file, { force: true });
    assert.ok(captured.length > 24 + 3 * 64, `seed ${this.opts.seed}, ${what}: the capture on ${a!.host.label}'s underlay saw the pings (${captured.length} bytes)`);
    assert.equal(captured.indexOf(Buffer.from(PLAINTEXT_MARK.repeat(2), 'hex')), -1,
      `seed ${this.opts.seed}, ${what}: a container's ping payload crossed ${a!.host.label}'s underlay in plaintext although a password is set`);
  }

  private async relaunch(h: Host, env: Record<string, string> = {}): Promise<void> {
    await mustWeave(h, this.launchArgs(h), { timeoutMs: 60_000, env: { ...FAULT_ENV, ...env } });
    this.clockOffsets.set(h, Number(env.WEAVE_TEST_DNS_CLOCK_OFFSET_SEC ?? 0));
  }

  /**
   * `weave detach` of a container on `h` that is not a probe, if there is
   * one: its name is tombstoned with the router's (possibly jumped) clock, and
   * every host must drop it (the invariants compare the names with the
   * containers still attached).
   */
  private async detachOne(h: Host): Promise<void> {
    const probes = this.probes();
    const i = this.attached.findIndex((a) => a.host === h && !probes.includes(a));
    if (i < 0) return;
    const [gone] = this.attached.splice(i, 1);
    await mustWeave(h, ['detach', '--netns', gone!.container.netnsPath]);
  }

  private async apply(fault: FaultKind, h: Host): Promise<void> {
    const others = this.bed.hosts.filter((o) => o !== h);
    // The fault lasts a fixed time by design: nothing to wait for but the clock.
    const hold = (): Promise<void> => new Promise((r) => setTimeout(r, this.opts.holdMs));
    switch (fault) {
      case 'partition':
        for (const o of others) await this.bed.cutLink(h, o);
        await hold();
        for (const o of others) await this.bed.healLink(h, o);
        return;
      case 'loss':
        await mustExec('ip', ['netns', 'exec', h.namespace, 'nft', '-f', '-'], { input: LOSS_TABLE });
        await hold();
        await mustExec('ip', ['netns', 'exec', h.namespace, 'nft', 'delete', 'table', 'inet', 'wtchaos_loss']);
        return;
      case 'slow-link':
        await mustExec('ip', ['netns', 'exec', h.namespace, 'tc', 'qdisc', 'add', 'dev', 'eth0', ...SLOW_LINK]);
        await hold();
        await mustExec('ip', ['netns', 'exec', h.namespace, 'tc', 'qdisc', 'del', 'dev', 'eth0', 'root']);
        return;
      case 'kill9': {
        const pid = weaverPid(h);
        process.kill(pid, 'SIGKILL');
        assert.ok(await pollUntil(async () => (await execCommand('kill', ['-0', String(pid)])).code !== 0, 10_000, 50), 'the killed router is gone');
        assert.ok(await pollUntil(async () => (await h.exec('ss', ['-Htln', 'sport = :6783'])).stdout.trim() === '', 10_000, 50),
          'the killed router released its port');
        await this.relaunch(h);
        return;
      }
      case 'stop-launch':
        await mustWeave(h, ['stop']);
        await this.relaunch(h);
        return;
      case 'block-sleeve':
        await this.bed.blockUdpPort(h, SLEEVE_PORT);
        await hold();
        await this.bed.unblockUdpPort(h, SLEEVE_PORT);
        return;
      case 'kill-sleeve-worker': {
        // The router must start a new worker on its own; recovery is timed from here.
        const restarts = (): number => readFileSync(join(weaveStateDir(h), 'weaver.log'), 'utf8').split('packet worker exited').length - 1;
        const before = restarts();
        process.kill(weaverPid(h), 'SIGUSR2');
        assert.ok(await pollUntil(() => restarts() > before, 10_000, 50), `seed ${this.opts.seed}: ${h.label}'s router did not restart its sleeve packet worker`);
        return;
      }
      case 'clock-jump': {
        const offsets = others.map((o) => this.clockOffsets.get(o) ?? 0);
        const lo = Math.max(-MAX_CLOCK_JUMP_SEC, Math.max(...offsets) - MAX_CLOCK_SKEW_SEC);
        const hi = Math.min(MAX_CLOCK_JUMP_SEC, Math.min(...offsets) + MAX_CLOCK_SKEW_SEC);
        const jump = Math.round(lo + this.random() * (hi - lo));
        this.log(`clock jump on ${h.label}: ${jump > 0 ? '+' : ''}${jump} s`);
        await mustWeave(h, ['stop']);
        await this.relaunch(h, { WEAVE_TEST_DNS_CLOCK_OFFSET_SEC: String(jump) });
        await this.detachOne(h);
        return;
      }
    }
  }

  async run(): Promise<ChaosResult> {
    const steps: StepRecord[] = [];
    for (let step = 1; step <= this.opts.steps; step++) {
      const fault = this.pick(FAULTS);
      const h = this.pick(this.bed.hosts);
      await this.apply(fault, h);
      const what = `step ${step} (${fault} on ${h.label})`;
      // Containers come and go with the faults: a new one on a random host each step.
      await this.attachNew(this.pick(this.bed.hosts));
      const recoveryMs = await this.recover(what);
      const ips = this.attached.map((a) => a.ip);
      assert.equal(new Set(ips).size, ips.length, `seed ${this.opts.seed}, ${what}: duplicate address among ${ips.join(' ')}`);
      if (step % (this.opts.ringCheckEvery ?? 1) === 0 || step === this.opts.steps) await this.checkInvariants(what);
      steps.push({ step, fault, host: h.label, recoveryMs });
      this.log(`step ${String(step).padStart(3)}  ${fault.padEnd(12)} ${h.label}  recovered in ${recoveryMs} ms`);
    }
    return { steps, containers: this.attached.length };
  }

  /** `weave reset` on every host; returns what weave left in the kernel (links, nft tables), by host. */
  async resetAll(): Promise<string[]> {
    const left: string[] = [];
    for (const h of this.bed.hosts) {
      await mustWeave(h, ['reset']);
      const links = (await h.exec('ip', ['-o', 'link', 'show'])).stdout.split('\n')
        .map((l) => /^\d+: ([^:@]+)/.exec(l)?.[1] ?? '').filter((n) => /^(weave|vethwe|vxlan-|datapath)/.test(n));
      const tables = (await h.exec('nft', ['list', 'tables'])).stdout.split('\n').filter((t) => /weave/.test(t));
      for (const x of [...links, ...tables]) left.push(`${h.label}: ${x}`);
    }
    return left;
  }
}

export function summarise(steps: readonly StepRecord[]): { median: number; max: number } {
  const t = steps.map((s) => s.recoveryMs).sort((a, b) => a - b);
  return { median: t[Math.floor(t.length / 2)] ?? 0, max: t[t.length - 1] ?? 0 };
}
