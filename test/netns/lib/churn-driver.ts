// Container churn at a fixed rate, run inside a host's namespace by the soak:
// attach with a name, detach, dns-add and dns-remove, making the router API
// calls `weave attach -h`, `weave detach`, `weave dns-add` and `dns-remove`
// make (controlplane/cli/host-commands.ts, dns-commands.ts). The CLI's own
// process start costs more CPU than the router's work, so on a small machine
// ten CLI runs a second would measure node's start-up instead of the router.
//
//   node churn-driver.js <operations-per-second> <duration-ms> <label> <netns-path>...
//
// Prints one JSON line: {"operations": n, "errors": n, "firstError": "..."}.
import { callRouter, type CallOptions } from '../../../controlplane/cli/api-client.js';
import { DEFAULT_HTTP_ADDR } from '../../../controlplane/well-known.js';

const [rateText, durationText, label, ...pool] = process.argv.slice(2);
const rate = Number(rateText);
const durationMs = Number(durationText);
if (!(rate > 0) || !(durationMs > 0) || !label || pool.length === 0) {
  process.stderr.write('usage: churn-driver.js <operations-per-second> <duration-ms> <label> <netns-path>...\n');
  process.exit(2);
}
/** The router answers within this even under churn on a busy machine. */
const CALL_TIMEOUT_MS = 30_000;
const EXTERN = 'weave:extern';

let operations = 0;
let errors = 0;
let firstError: string | undefined;

async function call(method: string, path: string, form?: [string, string][]): Promise<string> {
  const opts: CallOptions = { timeoutMs: CALL_TIMEOUT_MS };
  if (form) opts.form = form;
  const res = await callRouter(DEFAULT_HTTP_ADDR, method, path, opts);
  if (res.code < 200 || res.code >= 300) throw new Error(`${method} ${path}: HTTP ${res.code} ${res.body.trim()}`);
  return res.body;
}

const ipOf = (cidr: string): string => cidr.split('/')[0]!;

/** `weave attach --netns PATH -h NAME`: allocate, attach, register the name. */
async function attach(netns: string, name: string): Promise<void> {
  const id = encodeURIComponent(netns);
  const cidr = (await call('POST', `/ip/${id}`)).trim();
  await call('POST', '/weave/attach', [['netns', netns], ['label', netns], ['cidr', cidr]]);
  await call('PUT', `/name/${id}/${ipOf(cidr)}`, [['fqdn', name], ['check-alive', 'true']]);
}

/** `weave detach --netns PATH`: look up, detach, release, drop the names. */
async function detach(netns: string): Promise<void> {
  const id = encodeURIComponent(netns);
  const cidrs = (await call('GET', `/ip/${id}`)).trim().split(/\s+/).filter((c) => c !== '');
  if (cidrs.length === 0) return;
  const removed = (await call('POST', '/weave/detach', [['netns', netns], ['label', netns], ...cidrs.map((c): [string, string] => ['cidr', c])]))
    .trim().split(/\s+/).filter((c) => c !== '');
  for (const c of removed) {
    await call('DELETE', `/ip/${id}/${ipOf(c)}`);
    await call('DELETE', `/name/${id}/${ipOf(c)}`);
  }
}

const attached = new Set<string>();
const busy = new Set<string>();
const inFlight = new Set<Promise<void>>();
let externAdded: string | undefined;

function run(key: string, op: () => Promise<void>): void {
  busy.add(key);
  const p = op().then(() => { operations++; }, (err: unknown) => {
    errors++;
    firstError ??= (err as Error).message;
  }).finally(() => {
    busy.delete(key);
    inFlight.delete(p);
  });
  inFlight.add(p);
}

const started = Date.now();
for (let k = 0; Date.now() - started < durationMs; k++) {
  // Pacing: operation k is due at k/rate seconds; the rate is what is under test.
  const due = started + (k * 1000) / rate;
  if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
  if (k % 4 === 3) {
    // Every fourth operation is a name without a container, added or removed in turn.
    while (busy.has(EXTERN)) await Promise.race(inFlight);
    const ip = `192.0.2.${(k % 200) + 1}`;
    const prev = externAdded;
    externAdded = prev === undefined ? ip : undefined;
    run(EXTERN, () => (prev === undefined
      ? call('PUT', `/name/${EXTERN}/${ip}`, [['fqdn', `ext${k}-${label}.weave.local.`]])
      : call('DELETE', `/name/${EXTERN}/${prev}`)).then(() => undefined));
    continue;
  }
  let netns = pool.find((p) => !busy.has(p));
  while (netns === undefined) {
    await Promise.race(inFlight);
    netns = pool.find((p) => !busy.has(p));
  }
  const n = netns;
  const i = pool.indexOf(n);
  if (attached.has(n)) {
    attached.delete(n);
    run(n, () => detach(n));
  } else {
    attached.add(n);
    run(n, () => attach(n, `churn${i}-${label}.weave.local`));
  }
}
await Promise.all(inFlight);
// Leave nothing attached: the soak compares the footprint with the one before the churn.
for (const n of attached) await detach(n).catch((err: unknown) => { errors++; firstError ??= (err as Error).message; });
if (externAdded !== undefined) await call('DELETE', `/name/${EXTERN}/${externAdded}`).catch(() => undefined);
process.stdout.write(`${JSON.stringify({ operations, errors, firstError, seconds: (Date.now() - started) / 1000 })}\n`);
