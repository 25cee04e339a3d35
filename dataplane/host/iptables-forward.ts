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
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { FirewallError } from './firewall.js';

export type IptablesBackend = 'nft' | 'legacy';

/** The command for each backend (Debian's iptables package installs both). */
export const IPTABLES_COMMAND: Record<IptablesBackend, string> = { nft: 'iptables-nft', legacy: 'iptables-legacy' };
/** Weave's chain for exposed subnets. */
export const EXPOSE_CHAIN = 'WEAVE-EXPOSE';

export interface ForwardRulesConfig {
  bridge: string;
  /** `--docker-bridge`: traffic from it into the weave bridge is dropped (omit for none). */
  dockerBridge?: string;
  /** Exposed subnets (network CIDRs) accepted towards the bridge. */
  exposedSubnets: readonly string[];
  /** Program only this iptables (Weave's IPTABLES_BACKEND); default: every one in use. */
  backend?: IptablesBackend;
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
  const nft = await run('nft', ['list', 'chain', 'ip', 'filter', 'FORWARD']);
  if (nft.code === 0) out.push('nft');
  try {
    if (readFileSync('/proc/net/ip_tables_names', 'utf8').split('\n').includes('filter')) out.push('legacy');
  } catch {
    // no legacy x_tables in this kernel: nothing to do for it
  }
  return out;
}

/** Our FORWARD rules in order, as `iptables -S` prints them (after `-A FORWARD`). */
export function forwardRules(cfg: Pick<ForwardRulesConfig, 'bridge' | 'dockerBridge'>): string[][] {
  const br = cfg.bridge;
  const rules: string[][] = [];
  if (cfg.dockerBridge && cfg.dockerBridge !== br) rules.push(['-i', cfg.dockerBridge, '-o', br, '-j', 'DROP']);
  rules.push(
    ['-i', br, '-o', br, '-j', 'ACCEPT'],
    ['-o', br, '-j', EXPOSE_CHAIN],
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

  /** The rules of a chain, each as its argument list after `-A <chain>`. */
  async rules(chain: string): Promise<string[][]> {
    const text = await this.call(['-t', 'filter', '-S', chain], `list ${chain}`);
    return text.split('\n').filter((l) => l.startsWith(`-A ${chain} `)).map((l) => splitRule(l.slice(`-A ${chain} `.length)));
  }
}

/** `iptables -S` prints quoted words only for comments; ours have none, but keep quoted words whole. */
function splitRule(text: string): string[] {
  return (text.match(/"[^"]*"|\S+/g) ?? []).map((w) => w.replace(/^"(.*)"$/, '$1'));
}

const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((w, i) => w === b[i]);

async function ensureOn(ipt: Iptables, cfg: ForwardRulesConfig): Promise<void> {
  // The expose chain first, so the jump to it can be inserted.
  if (!(await ipt.rules(EXPOSE_CHAIN).then(() => true, () => false))) await ipt.call(['-t', 'filter', '-N', EXPOSE_CHAIN], `create ${EXPOSE_CHAIN}`);
  const wantExpose = cfg.exposedSubnets.map((s) => ['-d', s, '-j', 'ACCEPT']);
  const haveExpose = await ipt.rules(EXPOSE_CHAIN);
  if (haveExpose.length !== wantExpose.length || !haveExpose.every((r, i) => same(r, wantExpose[i]))) {
    await ipt.call(['-t', 'filter', '-F', EXPOSE_CHAIN], `flush ${EXPOSE_CHAIN}`);
    for (const r of wantExpose) await ipt.call(['-t', 'filter', '-A', EXPOSE_CHAIN, ...r], `fill ${EXPOSE_CHAIN}`);
  }
  // Our rules at the top of FORWARD, in order; only what is out of place moves, so traffic
  // is never left without them while this converges.
  const want = forwardRules(cfg);
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
  const backends = cfg.backend ? [cfg.backend] : await iptablesBackendsInUse();
  for (const b of backends) await ensureOn(new Iptables(b), cfg);
  return backends;
}

/** Removes our FORWARD rules and the expose chain (`weave reset`); tolerates their absence. */
export async function removeForwardRules(bridge: string): Promise<void> {
  for (const b of await iptablesBackendsInUse()) {
    const ipt = new Iptables(b);
    const ours = (r: string[]): boolean =>
      forwardRules({ bridge }).some((w) => same(w, r)) || (r.length === 6 && r[0] === '-i' && r[2] === '-o' && r[3] === bridge && r[5] === 'DROP');
    const rules = await ipt.rules('FORWARD');
    for (let j = rules.length - 1; j >= 0; j--) {
      if (ours(rules[j])) await ipt.call(['-t', 'filter', '-D', 'FORWARD', String(j + 1)], 'remove a FORWARD rule');
    }
    if (await ipt.rules(EXPOSE_CHAIN).then(() => true, () => false)) {
      await ipt.call(['-t', 'filter', '-F', EXPOSE_CHAIN], `flush ${EXPOSE_CHAIN}`);
      await ipt.call(['-t', 'filter', '-X', EXPOSE_CHAIN], `delete ${EXPOSE_CHAIN}`);
    }
  }
}
