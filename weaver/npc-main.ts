// weave-npc: the network policy controller (user-surface spec §5.3, §6.3).
// Reads NetworkPolicy, Namespace and Pod objects from a directory (the Docker
// users' source; controlplane/policy/file-source.ts), keeps every local
// workload's table in step with it (controlplane/policy/controller.ts,
// dataplane/host/policy-table.ts), and serves weavenpc_* metrics.
//
//   weave-npc --policy-dir DIR [--metrics-addr HOST:PORT] [--resync-interval S] [--blocked-log-interval S] [--log-level L]
import { createServer, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { formatMetricFamilies } from '../controlplane/api/metrics.js';
import { PolicyController } from '../controlplane/policy/controller.js';
import { loadPolicyDirectory, watchPolicyDirectory } from '../controlplane/policy/file-source.js';
import { nftPolicyEnforcer } from '../dataplane/host/policy-table.js';

/** Where weave-npc serves metrics by default (spec §6.4). */
const DEFAULT_METRICS_ADDR = '0.0.0.0:6781';
const DEFAULT_RESYNC_S = 300;
const DEFAULT_BLOCKED_LOG_S = 10;

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
  const colon = addr.lastIndexOf(':');
  const port = Number(addr.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535) fail(`--metrics-addr must be HOST:PORT, not ${JSON.stringify(addr)}`);
  return { host: addr.slice(0, colon) || '0.0.0.0', port };
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      'policy-dir': { type: 'string' },
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
if (!dir) fail('--policy-dir DIR is required (a directory of NetworkPolicy, Namespace and Pod YAML files)');
const level = parsed['log-level'] ?? 'info';
if (!['debug', 'info', 'warn', 'error'].includes(level)) fail(`--log-level must be debug, info, warn or error, not ${JSON.stringify(level)}`);
const resyncMs = seconds(parsed['resync-interval'], '--resync-interval', DEFAULT_RESYNC_S) * 1000;
const blockedMs = seconds(parsed['blocked-log-interval'], '--blocked-log-interval', DEFAULT_BLOCKED_LOG_S) * 1000;
const metricsAddr = parsed['metrics-addr'] ?? DEFAULT_METRICS_ADDR;

const log = pino({ level, base: { pid: process.pid } });
const controller = new PolicyController({ enforcer: nftPolicyEnforcer, log });

let lastErrors = '';
async function reload(reason: string): Promise<void> {
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
  const s = loaded.snapshot;
  const stats = await controller.update(s);
  log.info({ reason, policies: s.policies.length, pods: s.pods.length, ...stats }, 'policy synced');
}

// Watch before the first read, so a change made while it runs is not missed.
const stopWatching = watchPolicyDirectory(dir, () => void reload('files changed').catch((err: unknown) => log.error({ err }, 'reload failed')));
await reload('start');
const resyncTimer = setInterval(() => {
  void controller.resync().then((stats) => log.info({ ...stats }, 'full resync'), (err: unknown) => log.error({ err }, 'resync failed'));
}, resyncMs);
const blockedTimer = setInterval(() => void controller.pollBlocked(), blockedMs);

let server: Server | undefined;
if (metricsAddr !== '') {
  const { host, port } = parseListen(metricsAddr);
  server = createServer((req, res) => {
    if (req.url === '/metrics') {
      void controller.pollBlocked().finally(() => {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(formatMetricFamilies(controller.metricFamilies()));
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
    stopWatching();
    clearInterval(resyncTimer);
    clearInterval(blockedTimer);
    server?.close();
    process.exit(0);
  });
}
