// Accept rules in iptables' FORWARD chain (user-surface spec §6.3), for hosts
// where iptables filters forwarded traffic — Docker sets the FORWARD policy
// to DROP. A verdict in our own nftables table cannot override a drop in
// another table's base chain, so on such a host the overlay would stop at the
// bridge (bridged frames pass FORWARD too once br_netfilter is loaded, which
// Docker does). Like Weave (net/bridge.go ConfigureIPTables) we put our rules
// at the top of FORWARD, in this order:
//
//   -i <docker bridge> -o weave -j DROP     (docker0 containers stay out of weave subnets)
//   -i weave -o weave -j ACCEPT
//   -o weave -j WEAVE-EXPOSE                (-d <exposed subnet> -j ACCEPT per `weave expose`)
//   -i weave ! -o weave -j ACCEPT
//   -o weave -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//
// in every iptables the host uses: the nf_tables-backed one (an `ip filter`
// table with a FORWARD chain exists) and the legacy one (x_tables `filter` is
// registered), since a host can have both and either may hold the DROP.
// Hosts that use neither get nothing.
//
// With `--expect-npc` (Kubernetes) traffic into the bridge is instead steered
// through the policy controller's chains and dropped unless they accept it:
//
//   -i <docker bridge> -o weave -j DROP
//   -i weave -m comment --comment "NOTE: ..." -j WEAVE-NPC-EGRESS
//   -o weave -m comment --comment "NOTE: ..." -j WEAVE-NPC
//   -o weave -m state --state NEW -j NFLOG --nflog-group 86
//   -o weave -j DROP
//   -i weave ! -o weave -j ACCEPT
//   -o weave -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//
// plus `INPUT -i weave -j WEAVE-NPC-EGRESS`. The router creates the two chains
// empty and never touches what is in them: weave-npc fills WEAVE-NPC
// (openPolicyGate) once its first sync has put every pod's table in place, so
// until then new connections forwarded into the bridge are refused, not let
// through unpoliced. Those are iptables programmed even on a host that used
// none before (the nf_tables-backed one), as Weave always did.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { FirewallError } from './firewall.js';
import { nftChainExists } from '../netlink/nftables.js';

export type IptablesBackend = 'nft' | 'legacy';

/** The command for each backend (Debian's iptables package installs both). */
export const IPTABLES_COMMAND: Record<IptablesBackend, string> = { nft: 'iptables-nft', legacy: 'iptables-legacy' };
/** Weave's chain for exposed subnets. */
export const EXPOSE_CHAIN = 'WEAVE-EXPOSE';
/** The policy controller's chain for traffic into the bridge (`--expect-npc`). */
export const NPC_CHAIN = 'WEAVE-NPC';
/** The policy controller's chain for traffic out of the bridge (`--expect-npc`). */
export const NPC_EGRESS_CHAIN = 'WEAVE-NPC-EGRESS';
/** Weave's NFLOG group for new connections the policy chains did not accept. */
export const NPC_NFLOG_GROUP = 86;
const NPC_JUMP_COMMENT = "NOTE: this must go before '-j KUBE-FORWARD'";
/** What weave-npc puts in WEAVE-NPC: the verdict is taken in each pod's own namespace (controlplane/policy). */
export const NPC_GATE_RULE: readonly string[] = ['-m', 'comment', '--comment', 'weave-npc: policy is enforced in each pod network namespace', '-j', 'ACCEPT'];

export interface ForwardRulesConfig {
  bridge: string;
  /** `--docker-bridge`: traffic from it into the weave bridge is dropped (omit for none). */
  dockerBridge?: string;
  /** Exposed subnets (network CIDRs) accepted towards the bridge. */
  exposedSubnets: readonly string[];
  /** Program only this iptables (Weave's IPTABLES_BACKEND); default: every one in use. */
  backend?: IptablesBackend;
  /** `--expect-npc`: steer traffic into the bridge through the policy controller's chains. */
  npc?: boolean;
}

/** Weave's IPTABLES_BACKEND: `nft`, `legacy`, or unset/empty for auto-detection; anything else is an error. */
export function iptablesBackendFromEnv(env: NodeJS.ProcessEnv): IptablesBackend | undefined {
  const v = env.IPTABLES_BACKEND;
  if (v === undefined || v === '') return undefined;
  if (v === 'nft' || v === 'legacy') return v;
  throw new FirewallError(`IPTABLES_BACKEND=${v} is not an iptables backend: use nft or legacy, or leave it unset to program every iptables the host uses`);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  missing?: boolean;
}

function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err: NodeJS.ErrnoException) => resolve({ code: 127, stdout, stderr: err.message, missing: err.code === 'ENOENT' }));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** The iptables variants whose filter table exists in this network namespace. */
export async function iptablesBackendsInUse(): Promise<IptablesBackend[]> {
  const out: IptablesBackend[] = [];
  // iptables-nft keeps its filter table in nf_tables as table ip filter.
  if (await nftChainExists('ip', 'filter', 'FORWARD')) out.push('nft');
  try {
    if (readFileSync('/proc/net/ip_tables_names', 'utf8').split('\n').includes('filter')) out.push('legacy');
  } catch {
    // no legacy x_tables in this kernel: nothing to do for it
  }
  return out;
}

/** Our FORWARD rules in order, as `iptables -S` prints them (after `-A FORWARD`). */
export function forwardRules(cfg: Pick<ForwardRulesConfig, 'bridge' | 'dockerBridge' | 'npc'>): string[][] {
  const br = cfg.bridge;
  const rules: string[][] = [];
  if (cfg.dockerBridge && cfg.dockerBridge !== br) rules.push(['-i', cfg.dockerBridge, '-o', br, '-j', 'DROP']);
  if (cfg.npc) {
    rules.push(
      ['-i', br, '-m', 'comment', '--comment', NPC_JUMP_COMMENT, '-j', NPC_EGRESS_CHAIN],
      ['-o', br, '-m', 'comment', '--comment', NPC_JUMP_COMMENT, '-j', NPC_CHAIN],
      ['-o', br, '-m', 'state', '--state', 'NEW', '-j', 'NFLOG', '--nflog-group', String(NPC_NFLOG_GROUP)],
      ['-o', br, '-j', 'DROP'],
    );
  } else {
    rules.push(['-i', br, '-o', br, '-j', 'ACCEPT'], ['-o', br, '-j', EXPOSE_CHAIN]);
  }
  rules.push(
    ['-i', br, '!', '-o', br, '-j', 'ACCEPT'],
    ['-o', br, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'],
  );
  return rules;
}

class Iptables {
  constructor(private readonly backend: IptablesBackend) {}

  async call(args: string[], what: string): Promise<string> {
    const cmd = IPTABLES_COMMAND[this.backend];
    // -w: wait for the xtables lock instead of failing while Docker holds it.
    const r = await run(cmd, ['-w', ...args]);
    if (r.missing) throw new FirewallError(`cannot run ${cmd} to ${what}: not installed (install the iptables package)`);
    if (r.code !== 0) throw new FirewallError(`cannot ${what} with ${cmd}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** The user-defined chains of the filter table. */
  async chains(): Promise<string[]> {
    const text = await this.call(['-t', 'filter', '-S'], 'list the filter table');
    return text.split('\n').filter((l) => l.startsWith('-N ')).map((l) => l.slice(3).trim());
  }

  /** The rules of a chain, each as its argument list after `-A <chain>`. */
  async rules(chain: string): Promise<string[][]> {
    const text = await this.call(['-t', 'filter', '-S', chain], `list ${chain}`);
    return text.split('\n').filter((l) => l.startsWith(`-A ${chain} `)).map((l) => splitRule(l.slice(`-A ${chain} `.length)));
  }
}

/** `iptables -S` quotes only comments, escaping quotes in them with a backslash: each quoted word comes back whole, as given. */
function splitRule(text: string): string[] {
  return (text.match(/"(?:\\.|[^"\\])*"|\S+/g) ?? []).map((w) => (w.startsWith('"') ? w.slice(1, -1).replace(/\\(.)/g, '$1') : w));
}

const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((w, i) => w === b[i]);

async function chainExists(ipt: Iptables, chain: string): Promise<boolean> {
  return ipt.rules(chain).then(() => true, () => false);
}

async function ensureChain(ipt: Iptables, chain: string): Promise<void> {
  if (!(await chainExists(ipt, chain))) await ipt.call(['-t', 'filter', '-N', chain], `create ${chain}`);
}

/** `INPUT -i <bridge> -j WEAVE-NPC-EGRESS`: what containers send to the host itself passes the egress chain too. */
function npcInputRule(bridge: string): string[] {
  return ['-i', bridge, '-j', NPC_EGRESS_CHAIN];
}

async function ensureOn(ipt: Iptables, cfg: ForwardRulesConfig): Promise<void> {
  if (cfg.npc) {
    // The chains first, so the jumps to them can be inserted; their content is weave-npc's.
    await ensureChain(ipt, NPC_CHAIN);
    await ensureChain(ipt, NPC_EGRESS_CHAIN);
    const input = npcInputRule(cfg.bridge);
    if (!(await ipt.rules('INPUT')).some((r) => same(r, input))) await ipt.call(['-t', 'filter', '-I', 'INPUT', '1', ...input], 'insert the INPUT rule for weave-npc');
  } else {
    await ensureExpose(ipt, cfg);
  }
  const want = forwardRules(cfg);
  await ensureAtTop(ipt, want);
  // A router relaunched with --expect-npc turned on or off: the other layout's rules go.
  const stale = forwardRules({ ...cfg, npc: !cfg.npc }).filter((r) => !want.some((w) => same(w, r)));
  const have = await ipt.rules('FORWARD');
  for (let j = have.length - 1; j >= want.length; j--) {
    if (stale.some((r) => same(r, have[j]))) await ipt.call(['-t', 'filter', '-D', 'FORWARD', String(j + 1)], 'remove a FORWARD rule of the other layout');
  }
}

async function ensureExpose(ipt: Iptables, cfg: ForwardRulesConfig): Promise<void> {
  // The expose chain first, so the jump to it can be inserted.
  await ensureChain(ipt, EXPOSE_CHAIN);
  const wantExpose = cfg.exposedSubnets.map((s) => ['-d', s, '-j', 'ACCEPT']);
  const haveExpose = await ipt.rules(EXPOSE_CHAIN);
  if (haveExpose.length !== wantExpose.length || !haveExpose.every((r, i) => same(r, wantExpose[i]))) {
    await ipt.call(['-t', 'filter', '-F', EXPOSE_CHAIN], `flush ${EXPOSE_CHAIN}`);
    for (const r of wantExpose) await ipt.call(['-t', 'filter', '-A', EXPOSE_CHAIN, ...r], `fill ${EXPOSE_CHAIN}`);
  }
}

async function ensureAtTop(ipt: Iptables, want: readonly string[][]): Promise<void> {
  // Our rules at the top of FORWARD, in order; only what is out of place moves, so traffic
  // is never left without them while this converges.
  for (const [i, rule] of want.entries()) {
    const have = await ipt.rules('FORWARD');
    if (have[i] && same(have[i], rule)) continue;
    await ipt.call(['-t', 'filter', '-I', 'FORWARD', String(i + 1), ...rule], 'insert a FORWARD rule');
    // Any other copy of it further down goes.
    const after = await ipt.rules('FORWARD');
    for (let j = after.length - 1; j > i; j--) {
      if (same(after[j], rule)) await ipt.call(['-t', 'filter', '-D', 'FORWARD', String(j + 1)], 'remove a duplicate FORWARD rule');
    }
  }
}

/**
 * Converges our FORWARD rules in every iptables the host uses; returns the
 * backends it touched. Idempotent: a second call with the same config changes nothing.
 */
export async function ensureForwardRules(cfg: ForwardRulesConfig): Promise<IptablesBackend[]> {
  let backends = cfg.backend ? [cfg.backend] : await iptablesBackendsInUse();
  // Policy needs its gate even where nothing used iptables before.
  if (backends.length === 0 && cfg.npc) backends = ['nft'];
  for (const b of backends) await ensureOn(new Iptables(b), cfg);
  return backends;
}

/**
 * weave-npc's side of `--expect-npc`: WEAVE-NPC accepts what reaches it (each
 * pod's own table decides), in every iptables where the router made the chain,
 * or (`create`, in Kubernetes, where the router expects it) in every iptables
 * in use, so it does not matter which of the two starts first.
 * Returns the backends whose chain it had to fill; none when no router
 * expects it or the chain already held the rule.
 */
export async function openPolicyGate(opts: { create?: boolean } = {}): Promise<IptablesBackend[]> {
  const opened: IptablesBackend[] = [];
  for (const b of await iptablesBackendsInUse()) {
    const ipt = new Iptables(b);
    if (!(await chainExists(ipt, NPC_CHAIN))) {
      if (!opts.create) continue;
      await ipt.call(['-t', 'filter', '-N', NPC_CHAIN], `create ${NPC_CHAIN}`);
    }
    const have = await ipt.rules(NPC_CHAIN);
    if (have.length !== 1 || !same(have[0], NPC_GATE_RULE)) {
      await ipt.call(['-t', 'filter', '-F', NPC_CHAIN], `flush ${NPC_CHAIN}`);
      await ipt.call(['-t', 'filter', '-A', NPC_CHAIN, ...NPC_GATE_RULE], `fill ${NPC_CHAIN}`);
      opened.push(b);
    }
  }
  return opened;
}

/** Removes our FORWARD rules and the expose chain (`weave reset`); tolerates their absence. */
export async function removeForwardRules(bridge: string): Promise<void> {
  for (const b of await iptablesBackendsInUse()) {
    const ipt = new Iptables(b);
    const known = [...forwardRules({ bridge }), ...forwardRules({ bridge, npc: true })];
    const ours = (r: string[]): boolean =>
      known.some((w) => same(w, r)) || (r.length === 6 && r[0] === '-i' && r[2] === '-o' && r[3] === bridge && r[5] === 'DROP');
    const rules = await ipt.rules('FORWARD');
    for (let j = rules.length - 1; j >= 0; j--) {
      if (ours(rules[j])) await ipt.call(['-t', 'filter', '-D', 'FORWARD', String(j + 1)], 'remove a FORWARD rule');
    }
    const input = await ipt.rules('INPUT');
    for (let j = input.length - 1; j >= 0; j--) {
      if (same(input[j], npcInputRule(bridge))) await ipt.call(['-t', 'filter', '-D', 'INPUT', String(j + 1)], 'remove the INPUT rule for weave-npc');
    }
    // Weave's reset removes every WEAVE-NPC* chain (spec §6.5); emptied first, since one may jump to another.
    const chains = [EXPOSE_CHAIN, ...(await ipt.chains()).filter((c) => c.startsWith(NPC_CHAIN))];
    const present: string[] = [];
    for (const c of chains) if (await chainExists(ipt, c)) present.push(c);
    for (const c of present) await ipt.call(['-t', 'filter', '-F', c], `flush ${c}`);
    for (const c of present) await ipt.call(['-t', 'filter', '-X', c], `delete ${c}`);
  }
}
