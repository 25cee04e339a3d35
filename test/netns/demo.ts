// `make demo`: three simulated hosts (network namespaces) on a shared underlay
// bridge, one container namespace per host, a Weave router in each host, the
// containers attached to the overlay and pinging each other across hosts.
//
// Every step either does the real thing or says plainly that it is not
// available yet and why; nothing is simulated. Exit status 0 only when every
// available step worked.
//
//   node dist/test/netns/demo.js [--password <pass>] [--keep-going-seconds <n>]
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { createTestbed, pollUntil, sweepStale, type Container, type ExecResult, type Host, type Testbed } from './lib/index.js';
import { firstReply, type FirstReply } from './lib/convergence.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const weaveScript = join(repoRoot, 'bin', 'weave');
const cliEntry = join(repoRoot, 'dist', 'router', 'weave.js');
const hostCount = 3;
const overlayPrefixLen = 12;
const containerAddress = (i: number): string => `10.32.0.${i}`;
/**
 * A container must answer every other one this soon after the later of the
 * two `weave attach`es returned (first ARP included): what a user would accept.
 */
const FIRST_REPLY_BOUND_MS = 2000;
/** A status command may take this long on a loaded machine (a CLI process each time). */
const STATUS_TIMEOUT_MS = 30_000;

type StepOutcome = 'ok' | 'unavailable' | 'failed';
const outcomes: { step: string; outcome: StepOutcome }[] = [];

function say(line: string): void {
  process.stdout.write(`demo: ${line}\n`);
}

function indent(text: string): string {
  return text.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');
}

/** A step that could not run because the code it needs is not there yet. */
class Unavailable extends Error {}

async function step(name: string, body: () => Promise<void>): Promise<boolean> {
  say(`--- ${name}`);
  try {
    await body();
    outcomes.push({ step: name, outcome: 'ok' });
    say(`step '${name}': ok`);
    return true;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (err instanceof Unavailable) {
      outcomes.push({ step: name, outcome: 'unavailable' });
      say(`step '${name}' is not available yet: ${reason}`);
    } else {
      outcomes.push({ step: name, outcome: 'failed' });
      say(`step '${name}' FAILED: ${reason}`);
    }
    return false;
  }
}

function skipped(name: string, because: string): void {
  outcomes.push({ step: name, outcome: 'unavailable' });
  say(`--- ${name}`);
  say(`step '${name}' is not available yet: it needs ${because}`);
}

function parseArgs(argv: string[]): { password: string | undefined } {
  let password: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--password' && argv[i + 1] !== undefined) password = argv[++i];
    else if (argv[i] === '--help') {
      process.stdout.write('usage: node dist/test/netns/demo.js [--password <pass>]\n');
      process.exit(0);
    } else throw new Error(`demo: unknown argument '${argv[i]}' (usage: demo.js [--password <pass>])`);
  }
  return { password };
}

/** `weave ARGS` inside a host, with that host's own state directory. */
function weave(host: Host, args: string[], timeoutMs = 60_000): Promise<ExecResult> {
  return host.exec(process.execPath, [weaveScript, ...args], {
    env: { WEAVE_STATE_DIR: join(host.dir, 'weave') },
    timeoutMs,
  });
}

/** Turns a failed weave command into Unavailable when the command itself does not exist yet. */
function weaveFailure(host: Host, args: string[], r: ExecResult): Error {
  const text = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(0, 8).join('\n');
  if (/Unknown weave command/.test(r.stderr) || /ERR_MODULE_NOT_FOUND|Cannot find module/.test(r.stderr)) {
    return new Unavailable(`'weave ${args[0]}' is not implemented (${text.split('\n')[0]})`);
  }
  return new Error(`'weave ${args.join(' ')}' on ${host.label} exited ${r.code}:\n${indent(text)}`);
}

/** The end of a host's router log (`weave launch` writes it into the state directory). */
function logTail(host: Host, lines: number): string {
  const file = join(host.dir, 'weave', 'weaver.log');
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${file})`;
  }
}

/** Per connection: the overlay the router's switch chose and why a more preferred one is not used. */
async function overlayChoices(host: Host): Promise<string> {
  const r = await weave(host, ['report', '-f', '{{json .Router.OverlayDiagnostics}}'], STATUS_TIMEOUT_MS);
  if (r.code !== 0) return `(weave report failed: ${r.stderr.trim()})`;
  let diag: { connections?: Record<string, { overlay?: string; reason?: string }> };
  try {
    diag = JSON.parse(r.stdout) as typeof diag;
  } catch {
    return `(unexpected report output: ${r.stdout.trim()})`;
  }
  const lines = Object.entries(diag.connections ?? {}).map(([peer, c]) => `${peer}: ${c.overlay ?? 'none'}${c.reason ? ` (${c.reason})` : ''}`);
  return lines.length > 0 ? lines.join('\n') : '(no overlay details reported)';
}

async function pingMatrix(pairs: { from: Host | Container; fromName: string; to: string; toName: string }[], timeoutMs: number): Promise<void> {
  const failures: string[] = [];
  for (const p of pairs) {
    const t0 = Date.now();
    const ok = await pollUntil(() => p.from.ping(p.to, { count: 1, waitSeconds: 1 }), timeoutMs, 200);
    say(`  ${p.fromName} -> ${p.toName} (${p.to}): ${ok ? `reply (after ${Date.now() - t0} ms)` : 'NO REPLY'}`);
    if (!ok) failures.push(`${p.fromName} -> ${p.toName}`);
  }
  if (failures.length > 0) throw new Error(`no ping reply for ${failures.join(', ')}`);
}

async function main(): Promise<number> {
  const { password } = parseArgs(process.argv.slice(2));
  const stale = sweepStale();
  if (stale.length > 0) say(`removed ${stale.length} namespace(s) left by earlier runs that crashed`);

  let bed: Testbed | undefined;
  try {
    const built = await step('create simulated hosts', async () => {
      bed = await createTestbed({ hosts: hostCount, underlay: 'bridge' });
      say(`  run prefix ${bed.prefix}; underlay bridge in namespace ${bed.underlayNamespace}, subnet ${bed.subnet}`);
      for (const h of bed.hosts) {
        const c = await h.addContainer('c1');
        say(`  host ${h.label}: namespace ${h.namespace}, eth0 ${h.address}; container namespace ${c.netnsPath}`);
      }
    });
    if (!built || !bed) return finish();
    const hosts = bed.hosts;

    await step('underlay pings between hosts', () => pingMatrix(
      hosts.flatMap((a) => hosts.filter((b) => b !== a).map((b) => ({ from: a, fromName: a.label, to: b.address, toName: b.label }))),
      5000,
    ));

    const launched = await step('launch a router in each host', async () => {
      if (!existsSync(weaveScript)) throw new Unavailable(`${weaveScript} does not exist`);
      if (!existsSync(cliEntry)) throw new Unavailable(`${cliEntry} is not built (run 'make build')`);
      for (const h of hosts) {
        const peers = hosts.filter((p) => p !== h).map((p) => p.address);
        const args = ['launch', '--nickname', h.label, ...(password ? ['--password', password] : []), ...peers];
        const r = await weave(h, args);
        if (r.code !== 0) throw weaveFailure(h, args, r);
        say(`  ${h.label}: weave ${password ? 'launch --password ***' : 'launch'} ${peers.join(' ')} -> pid ${r.stdout.trim()}`);
      }
    });

    if (launched) {
      await step('mesh connections established', async () => {
        const want = hostCount - 1;
        for (const h of hosts) {
          let last: ExecResult | undefined;
          const ok = await pollUntil(async () => {
            last = await weave(h, ['status', 'connections'], STATUS_TIMEOUT_MS);
            return last.code === 0 && (last.stdout.match(/established/g) ?? []).length >= want;
          }, 30_000, 500);
          if (!ok && last && last.code !== 0) throw weaveFailure(h, ['status', 'connections'], last);
          if (!ok) {
            throw new Error(`${h.label} did not report ${want} established connections within 30 s:\n${indent(last?.stdout ?? '')}\n`
              + `  last lines of ${h.label}'s router log:\n${indent(logTail(h, 10))}`);
          }
          say(`  ${h.label}:\n${indent(last?.stdout ?? '')}`);
          say(`  ${h.label}: overlay per connection:\n${indent(await overlayChoices(h))}`);
        }
      });
    } else {
      skipped('mesh connections established', "'launch a router in each host'");
    }

    let attached = false;
    /** Per ordered container pair: when its first reply came, counted from the later attach. */
    const firstReplies: { fromName: string; toName: string; to: string; reply: Promise<FirstReply | undefined>; since: number }[] = [];
    if (launched) {
      attached = await step('attach containers', async () => {
        const done: Host[] = [];
        for (const h of hosts) {
          const c = h.containers[0] as Container;
          const cidr = `${containerAddress(h.index)}/${overlayPrefixLen}`;
          const args = ['attach', cidr, '--netns', c.netnsPath];
          const r = await weave(h, args);
          if (r.code !== 0) throw weaveFailure(h, args, r);
          const addrs = await c.exec('ip', ['-4', '-o', 'addr', 'show']);
          if (!addrs.stdout.includes(`inet ${cidr}`)) {
            throw new Error(`'weave attach' on ${h.label} succeeded but the container has no ${cidr}:\n${indent(addrs.stdout)}`);
          }
          const since = Date.now();
          say(`  ${h.label}/c1 (${c.netnsPath}) has ${cidr}`);
          // From now on every container attached before answers this one and is answered by it.
          for (const o of done) {
            const oc = o.containers[0] as Container;
            firstReplies.push({ fromName: `${o.label}/c1`, toName: `${h.label}/c1`, to: containerAddress(h.index), reply: firstReply(oc, containerAddress(h.index)), since });
            firstReplies.push({ fromName: `${h.label}/c1`, toName: `${o.label}/c1`, to: containerAddress(o.index), reply: firstReply(c, containerAddress(o.index)), since });
          }
          done.push(h);
        }
      });
    } else {
      skipped('attach containers', "'launch a router in each host'");
    }

    if (attached) {
      await step(`first reply between containers within ${FIRST_REPLY_BOUND_MS} ms of the later attach`, async () => {
        const slow: string[] = [];
        for (const p of firstReplies) {
          const r = await p.reply;
          const ms = r === undefined ? undefined : Math.max(0, r.at - p.since);
          say(`  ${p.fromName} -> ${p.toName} (${p.to}): ${r === undefined || ms === undefined ? 'NO REPLY' : `first reply ${ms} ms after the later attach (echo request #${r.seq})`}`);
          if (ms === undefined || ms > FIRST_REPLY_BOUND_MS) slow.push(`${p.fromName} -> ${p.toName} (${ms === undefined ? 'no reply' : `${ms} ms`})`);
        }
        if (slow.length > 0) {
          const choices = await Promise.all(hosts.map(async (h) => `  ${h.label}: overlay per connection:\n${indent(await overlayChoices(h))}`));
          throw new Error(`slower than ${FIRST_REPLY_BOUND_MS} ms: ${slow.join(', ')}\n${choices.join('\n')}`);
        }
      });
      await step('container pings across hosts over the overlay', async () => {
        // A router without a data plane reports no overlay interface: the pings could only fail.
        const r = await weave(hosts[0] as Host, ['report', '-f', '{{.Router.Interface}}'], STATUS_TIMEOUT_MS);
        if (r.code === 0 && r.stdout.trim() === 'none') {
          throw new Unavailable('the routers have no data plane wired yet (weave report: Router.Interface is "none")');
        }
        await pingMatrix(
        hosts.flatMap((a) => hosts.filter((b) => b !== a).map((b) => ({
          from: a.containers[0] as Container, fromName: `${a.label}/c1`, to: containerAddress(b.index), toName: `${b.label}/c1`,
        }))),
        FIRST_REPLY_BOUND_MS,
        );
      });
    } else {
      skipped('container pings across hosts over the overlay', "'attach containers'");
    }

    if (launched) {
      await step('weave status on each host', async () => {
        for (const h of hosts) {
          const r = await weave(h, ['status'], STATUS_TIMEOUT_MS);
          if (r.code !== 0) throw weaveFailure(h, ['status'], r);
          say(`  ${h.label}: weave status\n${indent(r.stdout)}`);
          const peers = await weave(h, ['status', 'peers'], STATUS_TIMEOUT_MS);
          if (peers.code !== 0) throw weaveFailure(h, ['status', 'peers'], peers);
          const listed = peers.stdout.split('\n').filter((l) => /^\S/.test(l)).length;
          if (listed !== hostCount) throw new Error(`${h.label} lists ${listed} peers, expected ${hostCount}:\n${indent(peers.stdout)}`);
          say(`  ${h.label}: weave status peers (${listed} peers)\n${indent(peers.stdout)}`);
        }
      });
    } else {
      skipped('weave status on each host', "'launch a router in each host'");
    }
    return finish();
  } finally {
    if (bed) {
      await bed.teardown();
      say(`removed all namespaces of run ${bed.prefix}`);
    }
  }
}

function finish(): number {
  const failed = outcomes.filter((o) => o.outcome === 'failed');
  const unavailable = outcomes.filter((o) => o.outcome === 'unavailable');
  const ok = outcomes.filter((o) => o.outcome === 'ok');
  say(`summary: ${ok.length} step(s) ok, ${unavailable.length} not available yet, ${failed.length} failed`);
  for (const o of outcomes) say(`  ${o.outcome.padEnd(11)} ${o.step}`);
  return failed.length > 0 ? 1 : 0;
}

if (process.getuid?.() !== 0) {
  process.stderr.write('demo: needs root (it creates network namespaces); run it as root, e.g. sudo make demo\n');
  process.exit(1);
}
process.exitCode = await main();
