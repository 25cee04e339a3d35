// Loads a workload's policy table (controlplane/policy/render.ts) into the
// workload's network namespace and reads back what it blocked. nft runs inside
// the namespace (nsenter --net): one script, one transaction.
//
// Why the workload's namespace and not the host's: on the eBPF fast datapath
// frames for a local container are redirected by tc straight into the
// container (bpf_redirect_peer), from another container or from the VXLAN
// device, so they never cross the host's bridge or its netfilter hooks; the
// container's own input/output hooks see every packet on every datapath, and
// have connection tracking.
import { existsSync } from 'node:fs';
import type { BlockedCounts, LoadResult, PolicyEnforcer } from '../../controlplane/policy/enforcer.js';
import { runNft } from './nft-command.js';

export class PolicyTableError extends Error {}

/** The namespace disappeared (its workload is gone): not an error for the caller to report. */
export class NetnsGoneError extends PolicyTableError {}

const TABLE = 'inet weave-npc';

function gone(netns: string, stderr: string): boolean {
  return !existsSync(netns) || /reassociate to namespace|No such file or directory.*nsenter|nsenter: cannot open/.test(stderr);
}

/** Loads `script` (a whole-table replacement) inside the namespace at `netns`. */
export async function loadPolicyTable(netns: string, script: string): Promise<void> {
  if (!existsSync(netns)) throw new NetnsGoneError(`network namespace ${netns} is gone`);
  const r = await runNft(['-f', '-'], script, netns);
  if (r.code === 0) return;
  if (gone(netns, r.stderr)) throw new NetnsGoneError(`network namespace ${netns} is gone`);
  throw new PolicyTableError(`cannot load the policy table into ${netns}: ${r.stderr.trim()}`);
}

interface NftJson {
  nftables?: Record<string, unknown>[];
}

interface NftSetElem {
  elem?: { val?: { concat?: [string | number, string | number] }; counter?: { packets?: number } };
}

/** Reads the blocked counters of the namespace's table; empty when there is no table. */
export async function readBlockedCounts(netns: string): Promise<BlockedCounts> {
  const out: BlockedCounts = { byPort: new Map(), total: new Map() };
  if (!existsSync(netns)) throw new NetnsGoneError(`network namespace ${netns} is gone`);
  const r = await runNft(['-j', 'list', 'table', ...TABLE.split(' ')], undefined, netns);
  if (r.code !== 0) {
    if (/No such file or directory/.test(r.stderr) && existsSync(netns)) return out;
    if (gone(netns, r.stderr)) throw new NetnsGoneError(`network namespace ${netns} is gone`);
    throw new PolicyTableError(`cannot read the policy table in ${netns}: ${r.stderr.trim()}`);
  }
  let parsed: NftJson;
  try {
    parsed = JSON.parse(r.stdout) as NftJson;
  } catch {
    throw new PolicyTableError(`nft printed unreadable JSON for the policy table in ${netns}`);
  }
  for (const item of parsed.nftables ?? []) {
    const set = item.set as { name?: string; elem?: NftSetElem[] } | undefined;
    const blockedSet = set?.name?.match(/^(ingress|egress)-blocked$/);
    if (set && blockedSet) {
      for (const e of set.elem ?? []) {
        const [protocol, port] = e.elem?.val?.concat ?? [];
        const packets = e.elem?.counter?.packets ?? 0;
        if (protocol !== undefined && port !== undefined) out.byPort.set(`${blockedSet[1]} ${protocol} ${port}`, packets);
      }
    }
    const counter = item.counter as { name?: string; packets?: number } | undefined;
    const total = counter?.name?.match(/^(ingress|egress)-blocked-total$/);
    if (counter && total) out.total.set(total[1] as string, counter.packets ?? 0);
  }
  return out;
}

/** The kernel side of the policy controller. */
export const nftPolicyEnforcer: PolicyEnforcer = {
  async load(netns: string, script: string): Promise<LoadResult> {
    try {
      await loadPolicyTable(netns, script);
      return 'loaded';
    } catch (err) {
      if (err instanceof NetnsGoneError) return 'netns-gone';
      throw err;
    }
  },
  async readBlocked(netns: string): Promise<BlockedCounts | undefined> {
    try {
      return await readBlockedCounts(netns);
    } catch (err) {
      if (err instanceof NetnsGoneError) return undefined;
      throw err;
    }
  },
};
