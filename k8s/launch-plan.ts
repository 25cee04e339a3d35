// The router's command line in the Kubernetes add-on, from the DaemonSet's
// environment (user-surface spec §4.4 "Kubernetes", after Weave's
// prog/weave-kube/launch.sh). Pure: the launcher runs it.
import { DEFAULT_HTTP_ADDR, DEFAULT_MESH_PORT } from '../controlplane/well-known.js';

export const DEFAULT_IPALLOC_RANGE = '10.32.0.0/12';
export const DEFAULT_METRICS_ADDR = '0.0.0.0:6782';
export const DEFAULT_CONN_LIMIT = '200';
/** hostPath /var/lib/weave in the manifest: the peer name, IPAM ring and endpoints survive pod restarts. */
export const DEFAULT_STATE_DIR = '/weavedb';

export interface KubeLaunchPlan {
  args: string[];
  /** Only the password: it goes through the environment, never argv (spec §4.4). */
  env: Record<string, string>;
  httpAddr: string;
}

/** "1", "true", "yes" and any other non-empty value but "0"/"false"/"no" are on, as the shell script's tests were. */
function on(v: string | undefined): boolean {
  return v !== undefined && v !== '' && !['0', 'false', 'no'].includes(v.toLowerCase());
}

export class KubeLaunchError extends Error {}

/** The router arguments for `peers` (the addresses discovered or given in KUBE_PEERS). */
export function planKubeLaunch(env: NodeJS.ProcessEnv, peers: readonly string[], nodeName: string): KubeLaunchPlan {
  const httpAddr = env.WEAVE_HTTP_ADDR || DEFAULT_HTTP_ADDR;
  const args = [
    `--port=${DEFAULT_MESH_PORT}`,
    `--nickname=${nodeName}`,
    `--state-dir=${env.WEAVE_STATE_DIR || DEFAULT_STATE_DIR}`,
    `--ipalloc-range=${env.IPALLOC_RANGE || DEFAULT_IPALLOC_RANGE}`,
    `--http-addr=${httpAddr}`,
    `--metrics-addr=${env.WEAVE_METRICS_ADDR || DEFAULT_METRICS_ADDR}`,
    `--conn-limit=${env.CONN_LIMIT || DEFAULT_CONN_LIMIT}`,
    // Fixed in Weave's launch.sh: no Docker API, no weaveDNS (the cluster has its own DNS).
    '--docker-api=',
    '--no-dns',
    '--datapath=datapath',
  ];
  if (env.WEAVE_STATUS_ADDR) args.push(`--status-addr=${env.WEAVE_STATUS_ADDR}`);
  // Weave's default: EXPECT_NPC=1 unless set to 0.
  if (env.EXPECT_NPC === undefined || on(env.EXPECT_NPC)) args.push('--expect-npc');
  // Weave defaulted NO_MASQ_LOCAL to 1; the router refuses --no-masq-local
  // (weaver/refused-flags.ts), so it is passed only when asked for, to fail loudly.
  if (on(env.NO_MASQ_LOCAL)) args.push('--no-masq-local');
  if (env.WEAVE_MTU) {
    if (!/^\d+$/.test(env.WEAVE_MTU)) throw new KubeLaunchError(`WEAVE_MTU must be a number, got ${JSON.stringify(env.WEAVE_MTU)}`);
    args.push(`--mtu=${env.WEAVE_MTU}`);
  }
  if (on(env.WEAVE_NO_FASTDP)) args.push('--no-fastdp');
  // Consensus among the peers Kubernetes lists, as Weave did.
  args.push(`--ipalloc-init=${env.IPALLOC_INIT || `consensus=${peers.length}`}`);
  if (env.EXTRA_ARGS) args.push(...env.EXTRA_ARGS.split(/\s+/).filter((a) => a !== ''));
  args.push(...peers);
  const out: Record<string, string> = {};
  if (env.WEAVE_PASSWORD) out.WEAVE_PASSWORD = env.WEAVE_PASSWORD;
  return { args, env: out, httpAddr };
}
