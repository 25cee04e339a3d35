// weave-npc: the network policy controller (user-surface spec §5.3, §6.3).
// Reads NetworkPolicy, Namespace and Pod objects from the Kubernetes API (the
// DaemonSet's second container; controlplane/policy/kube-source.ts) or from a
// directory (users without Kubernetes; controlplane/policy/file-source.ts),
// optionally with the containers on weave's Docker networks standing in for pods
// (--docker; controlplane/policy/docker-source.ts),
// keeps every local workload's table in step with them
// (controlplane/policy/controller.ts, dataplane/host/policy-table.ts), and
// serves weavenpc_* metrics.
//
//   weave-npc --policy-dir DIR [--docker [--docker-api URL]] | --kube [--kubeconfig FILE] [--node-name NAME] [--weave-bridge weave]
//             [--metrics-addr HOST:PORT] [--resync-interval S] [--blocked-log-interval S] [--log-level L]
import { createServer, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { METRICS_CONTENT_TYPE, MetricsRegistry } from '../controlplane/api/metrics.js';
import { splitHostPort } from '../controlplane/host-port.js';
import { formatAddress, parseAddress } from '../controlplane/ipam/addr.js';
import { NPC_METRICS_PORT, PolicyController } from '../controlplane/policy/controller.js';
import type { PolicySnapshot } from '../controlplane/policy/controller.js';
import { DockerPolicySource, withContainers } from '../controlplane/policy/docker-source.js';
import { loadPolicyDirectory, watchPolicyDirectory } from '../controlplane/policy/file-source.js';
import { dockerHostFrom, EngineClient } from '../controlplane/docker/engine-client.js';
import type { KubePolicySource } from '../controlplane/policy/kube-source.js';
import { NetnsLocator, runCommand } from '../dataplane/host/netns-locator.js';
import { DEFAULT_BRIDGE } from '../dataplane/host/names.js';
import { nftPolicyEnforcer } from '../dataplane/host/policy-table.js';
import { openPolicyGate } from '../dataplane/host/iptables-forward.js';

/** Where weave-npc serves metrics by default (spec §6.4). */
const DEFAULT_METRICS_ADDR = `0.0.0.0:${NPC_METRICS_PORT}`;
const DEFAULT_RESYNC_S = 300;
const DEFAULT_BLOCKED_LOG_S = 10;
/** How often WEAVE-NPC is checked (two short iptables runs): a router started or reset later is served within this. */
const GATE_CHECK_MS = 5_000;

function fail(message: string): never {
  process.stderr.write(`weave-npc: ${message}\n`);
  process.exit(2);
}

function seconds(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) fail(`${flag} must be a positive number of seconds, not ${JSON.stringify(text)}`);
  return n;
}

function parseListen(addr: string): { host: string; port: number } {
  const hp = splitHostPort(addr);
  if (hp?.port === undefined) fail(`--metrics-addr must be HOST:PORT, not ${JSON.stringify(addr)}`);
  return { host: hp.host || '0.0.0.0', port: hp.port };
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      'policy-dir': { type: 'string' },
      docker: { type: 'boolean' },
      'docker-api': { type: 'string' },
      kube: { type: 'boolean' },
      kubeconfig: { type: 'string' },
      'node-name': { type: 'string' },
      'weave-bridge': { type: 'string' },
      'metrics-addr': { type: 'string' },
      'resync-interval': { type: 'string' },
      'blocked-log-interval': { type: 'string' },
      'log-level': { type: 'string' },
    },
    strict: true,
  }).values;
} catch (err) {
  fail((err as Error).message);
}
const dir = parsed['policy-dir'];
const kube = parsed.kube === true || parsed.kubeconfig !== undefined;
if (!dir && !kube) fail('give --policy-dir DIR (NetworkPolicy, Namespace and Pod YAML files) or --kube (the Kubernetes API)');
if (dir && kube) fail('--policy-dir and --kube are exclusive: policy comes from one source');
const docker = parsed.docker === true || parsed['docker-api'] !== undefined;
if (docker && !dir) fail('--docker takes the policies from --policy-dir DIR');
const nodeName = parsed['node-name'] ?? process.env.NODE_NAME ?? process.env.HOSTNAME;
const level = parsed['log-level'] ?? 'info';
if (!['debug', 'info', 'warn', 'error'].includes(level)) fail(`--log-level must be debug, info, warn or error, not ${JSON.stringify(level)}`);
const resyncMs = seconds(parsed['resync-interval'], '--resync-interval', DEFAULT_RESYNC_S) * 1000;
const blockedMs = seconds(parsed['blocked-log-interval'], '--blocked-log-interval', DEFAULT_BLOCKED_LOG_S) * 1000;
const metricsAddr = parsed['metrics-addr'] ?? DEFAULT_METRICS_ADDR;

const log = pino({ level, base: { pid: process.pid } });
const locator = new NetnsLocator();
const bridge = parsed['weave-bridge'] ?? DEFAULT_BRIDGE;
let hostAddresses: number[] = [];
/** The bridge's addresses (weave expose): the node's own traffic to its pods is never blocked. */
async function refreshHostAddresses(): Promise<void> {
  const r = await runCommand('ip', ['-4', '-o', 'addr', 'show', 'dev', bridge]);
  hostAddresses = r.code === 0 ? [...r.stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => parseAddress(m[1] as string)) : [];
}
const controller = new PolicyController({
  enforcer: nftPolicyEnforcer,
  log,
  hostAddresses: () => hostAddresses,
  // Kubernetes pods are found by address among the CNI namespaces of this node;
  // the directory source names each container's namespace itself.
  ...(kube ? { netnsOf: (pod, ip) => (nodeName && pod.spec?.nodeName && pod.spec.nodeName !== nodeName ? undefined : locator.pathOf(formatAddress(ip))) } : {}),
});

let dirSnapshot: PolicySnapshot | undefined;
let dockerSource: DockerPolicySource | undefined;
let lastErrors = '';
async function reloadDirectory(reason: string): Promise<void> {
  let loaded;
  try {
    loaded = loadPolicyDirectory(dir as string);
  } catch (err) {
    log.warn({ dir, err: (err as Error).message }, 'cannot read the policy directory; keeping the rules in force');
    return;
  }
  // Each bad file is reported once, not on every reload.
  const errors = loaded.errors.join('\n');
  if (errors !== lastErrors) for (const e of loaded.errors) log.warn({ reason }, `skipped: ${e}`);
  lastErrors = errors;
  dirSnapshot = loaded.snapshot;
  await syncDirectory(reason);
}

/** The directory's objects, with Docker's containers when --docker. */
async function syncDirectory(reason: string): Promise<void> {
  if (!dirSnapshot) return;
  const s = dockerSource ? withContainers(dirSnapshot, dockerSource.snapshot(), dockerSource.networkNames()) : dirSnapshot;
  await refreshHostAddresses();
  const stats = await controller.update(s);
  log.info({ reason, policies: s.policies.length, pods: s.pods.length, ...stats }, 'policy synced');
}

let stopWatching: () => void | Promise<void>;
if (dir) {
  // Watch before the first read, so a change made while it runs is not missed.
  const stopFiles = watchPolicyDirectory(dir, () => void reloadDirectory('files changed').catch((err: unknown) => log.error({ err }, 'reload failed')));
  stopWatching = stopFiles;
  if (docker) {
    const client = new EngineClient(dockerHostFrom(parsed['docker-api'], process.env));
    const source = new DockerPolicySource(client, () => {
      void syncDirectory('containers changed').catch((err: unknown) => log.error({ err }, 'sync failed'));
    }, log);
    source.start();
    // The first sync waits for Docker's containers: a policy must not be applied to half of them.
    await source.synced;
    dockerSource = source;
    stopWatching = async () => {
      stopFiles();
      await source.stop();
    };
  }
  await reloadDirectory('start');
} else {
  // Loaded only here: the Kubernetes client is large, and a directory source's start should not wait for it.
  const { KubeConfig } = await import('@kubernetes/client-node');
  const { KubePolicySource: Source } = await import('../controlplane/policy/kube-source.js');
  const config = new KubeConfig();
  try {
    if (parsed.kubeconfig) config.loadFromFile(parsed.kubeconfig);
    else config.loadFromCluster();
  } catch (err) {
    fail(`cannot read the Kubernetes client configuration ${parsed.kubeconfig ? `--kubeconfig ${parsed.kubeconfig}` : 'of the pod (service account)'}: ${(err as Error).message}`);
  }
  let pending: NodeJS.Timeout | undefined;
  const sync = async (reason: string): Promise<void> => {
    await locator.refresh();
    await refreshHostAddresses();
    const s = source.snapshot();
    const stats = await controller.update(s);
    log.info({ reason, policies: s.policies.length, pods: s.pods.length, ...stats }, 'policy synced');
  };
  // Events come in bursts (a Deployment scaling): gather them for a moment.
  const source: KubePolicySource = new Source(config, () => {
    pending ??= setTimeout(() => {
      pending = undefined;
      void sync('api changed').catch((err: unknown) => log.error({ err }, 'sync failed'));
    }, 20);
  }, log);
  stopWatching = () => source.stop();
  await source.start();
  await sync('start');
}
/**
 * A router started with --expect-npc drops new connections into its bridge
 * until WEAVE-NPC accepts them: opened only after a full sync, so no pod is
 * reachable before its table is in place. In Kubernetes the chain is made here
 * if the router has not made it yet (the two containers start in either
 * order); checked again every GATE_CHECK_MS (a router relaunched after `weave
 * reset` makes the chain afresh, empty).
 */
async function openGate(): Promise<void> {
  try {
    const backends = await openPolicyGate({ create: kube });
    if (backends.length > 0) log.info({ backends }, 'WEAVE-NPC accepts: the router forwards into the bridge');
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'cannot fill WEAVE-NPC (retried at the next resync)');
  }
}
await openGate();
const gateTimer = setInterval(() => void openGate(), GATE_CHECK_MS);
const resyncTimer = setInterval(() => {
  void controller.resync().then((stats) => log.info({ ...stats }, 'full resync'), (err: unknown) => log.error({ err }, 'resync failed'));
}, resyncMs);
const blockedTimer = setInterval(() => void controller.pollBlocked(), blockedMs);

let server: Server | undefined;
if (metricsAddr !== '') {
  const { host, port } = parseListen(metricsAddr);
  const registry = new MetricsRegistry();
  server = createServer((req, res) => {
    if (req.url === '/metrics') {
      // Metrics are served even when reading the blocked-packet counters failed (that failure is logged).
      void controller.pollBlocked()
        .catch((err: unknown) => log.error({ err }, 'reading blocked connections'))
        .then(() => registry.render(controller.metricFamilies()))
        .then((text) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(text), (err: unknown) => {
          log.error({ err }, 'rendering metrics');
          res.writeHead(500).end();
        });
      return;
    }
    res.writeHead(404).end();
  });
  server.listen(port, host, () => log.info({ addr: metricsAddr }, 'serving metrics'));
}

// Tables stay in place when the controller stops: enforcement must not lapse
// while it restarts, and the next start resyncs everything.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    log.info({ signal }, 'shutting down; policy tables stay in force');
    void stopWatching();
    clearInterval(resyncTimer);
    clearInterval(gateTimer);
    clearInterval(blockedTimer);
    server?.close();
    process.exit(0);
  });
}
