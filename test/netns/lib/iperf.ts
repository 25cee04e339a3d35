// iperf3 between namespaces, with failures that are failures: a server that is
// known to listen before any client starts, and a client whose result is
// checked. iperf3 3.12 with -J exits 0 even when it could not connect (the
// JSON then holds "error" and an empty "end"), so the exit code alone proves
// nothing; runIperfClient reads the JSON and throws with iperf3's own error.
import { execCommand, pollUntil, spawnTracked, type ExecOptions, type ExecResult, type SpawnedProcess } from './exec.js';
import type { NamespaceRunner } from './testbed.js';

/** Where iperf3 runs: a testbed host or container, or any namespace (see iperfNodeIn). */
export type IperfNode = Pick<NamespaceRunner, 'namespace' | 'exec' | 'spawn'>;

export const IPERF_DEFAULT_PORT = 5201;

export interface IperfServerOptions {
  /** Address to listen on (-B); default all addresses. */
  bind?: string;
  /** TCP port (-p); default 5201. */
  port?: number;
  /** Serve one test and exit (-1); default true. */
  oneOff?: boolean;
  /** How long the server may take to listen (default 30 s: loaded machines and emulated guests are slow). */
  listenTimeoutMs?: number;
}

export interface IperfServer {
  readonly port: number;
  readonly process: SpawnedProcess;
  /** Resolves with the exit code once the server ended (a one-off server ends after its test). */
  readonly exited: Promise<number>;
  /** Kills the server if it still runs and waits until it has exited. */
  stop(): Promise<void>;
}

/** One side's totals from iperf3's end summary. */
export interface IperfSummary {
  bytes: number;
  bits_per_second: number;
  seconds?: number;
  retransmits?: number;
  packets?: number;
  lost_packets?: number;
}

/** The parts of iperf3's -J report the tests read; the rest is there too. */
export interface IperfJson {
  error?: string;
  intervals?: { sum?: IperfSummary }[];
  end?: {
    sum_sent?: IperfSummary;
    sum_received?: IperfSummary;
    sum?: IperfSummary;
    streams?: { sender?: IperfSummary; receiver?: IperfSummary; udp?: IperfSummary }[];
  };
}

export interface IperfResult {
  /** The sender's totals (end.sum_sent, else the streams' sender totals added up). */
  sent: IperfSummary;
  /** The receiver's totals (end.sum_received, else the streams' receiver totals added up). */
  received: IperfSummary;
  sentBytes: number;
  receivedBytes: number;
  sentBitsPerSecond: number;
  receivedBitsPerSecond: number;
  /** The whole report. */
  json: IperfJson;
}

export interface IperfClientOptions {
  /** Kill the client after this long (default 120 s). */
  timeoutMs?: number;
}

/** An IperfNode for a namespace that is not part of a testbed (`ip netns exec NAME ...`). */
export function iperfNodeIn(namespace: string): IperfNode {
  return {
    namespace,
    exec: (cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> =>
      execCommand('ip', ['netns', 'exec', namespace, cmd, ...args], opts),
    spawn: (cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): SpawnedProcess =>
      spawnTracked('ip', ['netns', 'exec', namespace, cmd, ...args], opts),
  };
}

/**
 * Starts `iperf3 -s` in `node` and resolves once that very process listens on
 * the port (`ss -ltnpH` shows its pid), so a client started next cannot be refused.
 * Rejects, with the server's output, if it exits first or does not listen in time.
 */
export async function startIperfServer(node: IperfNode, opts: IperfServerOptions = {}): Promise<IperfServer> {
  const port = opts.port ?? IPERF_DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`iperf3 server: port ${port} is not in 1..65535`);
  const args = ['-s', '-p', String(port)];
  if (opts.oneOff ?? true) args.push('-1');
  if (opts.bind !== undefined) args.push('-B', opts.bind);
  const proc = node.spawn('iperf3', args);
  let exitCode: number | undefined;
  void proc.exited.then((code) => { exitCode = code; });
  const stop = async (): Promise<void> => {
    proc.kill('SIGKILL');
    await proc.exited;
  };
  const where = `iperf3 ${args.join(' ')} in ${node.namespace}`;
  try {
    // ip netns exec execs iperf3, so the spawned pid is the listener's pid.
    const owner = `pid=${proc.pid},`;
    const listening = await pollUntil(async () => {
      if (exitCode !== undefined) throw new Error(`${where} exited ${exitCode} before listening: ${proc.output().trim()}`);
      const ss = await node.exec('ss', ['-ltnpH', `sport = :${port}`], { timeoutMs: 10_000 });
      return ss.code === 0 && ss.stdout.split('\n').some((line) => line.includes(owner));
    }, opts.listenTimeoutMs ?? 30_000, 50);
    if (!listening) {
      throw new Error(`${where} did not listen on port ${port} within ${opts.listenTimeoutMs ?? 30_000} ms: ${proc.output().trim()}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, process: proc, exited: proc.exited, stop };
}

/**
 * Runs `iperf3 ARGS -J` in `node` (ARGS holds -c SERVER and the test's options)
 * and returns both sides' totals. Throws an Error naming the command and
 * iperf3's error text when the report has "error", the exit code is not 0,
 * or there is no sender or receiver total in the report.
 */
export async function runIperfClient(node: IperfNode, args: readonly string[], opts: IperfClientOptions = {}): Promise<IperfResult> {
  if (!args.includes('-c')) throw new Error(`iperf3 client: arguments must name the server with -c (got: ${args.join(' ')})`);
  const full = args.includes('-J') || args.includes('--json') ? [...args] : [...args, '-J'];
  const where = `iperf3 ${full.join(' ')} in ${node.namespace}`;
  const r = await node.exec('iperf3', full, { timeoutMs: opts.timeoutMs ?? 120_000 });
  const extra = `${r.stderr.trim()}${r.stderr.trim() ? '\n' : ''}`;
  const parsed = parseIperfJson(r.stdout);
  if (!parsed) throw new Error(`${where}: no JSON report (exit ${r.code}): ${extra}${r.stdout.trim().slice(-1000)}`);
  const { json, trailing } = parsed;
  const tail = `${trailing ? `\n${trailing.slice(-1000)}` : ''}${extra ? `\n${extra.slice(-1000)}` : ''}`;
  if (typeof json.error === 'string') throw new Error(`${where}: ${json.error} (exit ${r.code})${tail}`);
  if (r.code !== 0) throw new Error(`${where}: exited ${r.code}${tail}`);
  const sent = json.end?.sum_sent ?? streamTotal(json, 'sender');
  const received = json.end?.sum_received ?? streamTotal(json, 'receiver');
  if (!sent || !received) {
    throw new Error(`${where}: the report has no ${sent ? 'receiver' : 'sender'} total in "end": ${JSON.stringify(json.end ?? null).slice(0, 1000)}${tail}`);
  }
  return {
    sent, received, json,
    sentBytes: sent.bytes, receivedBytes: received.bytes,
    sentBitsPerSecond: sent.bits_per_second, receivedBitsPerSecond: received.bits_per_second,
  };
}

/** The streams' own totals of one side, added up (iperf3 sometimes ends without the sum_* lines). */
function streamTotal(json: IperfJson, side: 'sender' | 'receiver'): IperfSummary | undefined {
  const parts = (json.end?.streams ?? []).map((s) => s[side]).filter((p): p is IperfSummary => isSummary(p));
  if (parts.length === 0) return undefined;
  return {
    bytes: parts.reduce((n, p) => n + p.bytes, 0),
    bits_per_second: parts.reduce((n, p) => n + p.bits_per_second, 0),
    seconds: Math.max(...parts.map((p) => p.seconds ?? 0)),
  };
}

function isSummary(x: unknown): x is IperfSummary {
  const s = x as Partial<IperfSummary> | undefined;
  return typeof s === 'object' && s !== null && typeof s.bytes === 'number' && typeof s.bits_per_second === 'number';
}

/**
 * The first top-level JSON object in `text` and whatever follows it (iperf3 may
 * print a message, or a second report, after the first), or undefined.
 */
export function parseIperfJson(text: string): { json: IperfJson; trailing: string } | undefined {
  const start = text.indexOf('{');
  if (start < 0) return undefined;
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '{') depth++;
    else if (ch === '}' && --depth === 0) {
      try {
        const json = JSON.parse(text.slice(start, i + 1)) as unknown;
        if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
        return { json: json as IperfJson, trailing: text.slice(i + 1).trim() };
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
