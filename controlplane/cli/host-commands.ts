// `weave attach`, `detach`, `ps`, `expose`, `hide` (user-surface spec
// §1.6, §1.8-1.10). The router does the kernel work over its control API
// (see controlplane/api/host-routes.ts); the CLI resolves the container,
// turns `net:` addresses into IPAM calls, and prints what was done.
import type { ApiResponse, CallOptions } from './api-client.js';
import { AddressError, ipOf, takeAddresses, type AddressArg } from './address-args.js';
import { ContainerError, resolveContainer } from './docker.js';
import { parseAddHost, renderHostsFile, writeHostsFile } from '../docker/hosts-file.js';
import { dockerShortId } from './plugin-network.js';
import { UsageError } from './usage.js';

export interface HostCommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
}

/** A router call that has already reported an unreachable router (returning its exit status). */
export type RouterCall = (io: HostCommandIo, method: string, path: string, opts?: CallOptions) => Promise<ApiResponse | number>;

export type Command = (args: string[], io: HostCommandIo) => Promise<number>;

/** A failure already explained to the user; carries the exit status. */
export class Stop extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const IPAM_MISSING =
  "IPAM is not available yet: IP address allocation must be enabled to use 'net:' or to attach without an address; give explicit addresses such as 10.32.0.5/12";

/** The IPAM key of the bridge's own addresses (spec §1 address grammar). */
const EXPOSE_ID = 'weave:expose';
/** `weave ps weave:allids`: every container, without the bridge's own line (spec §1.6). */
const ALL_IDS = 'weave:allids';

/** The IPAM and weaveDNS key of names added without a container (spec §1.11). */
export const EXTERN_ID = 'weave:extern';

/** Allocation may wait for IPAM consensus or for space from other peers: no client timeout. */
const WAIT_FOR_IPAM = 0;

export interface Target {
  form: [string, string][];
  /**
   * IPAM and weaveDNS key: the container id, else the namespace path as given
   * (stable across router restarts, unlike the namespace's inode), else `pid:N`.
   */
  id: string;
  /** The container's FQDN, for Docker containers that have a domain. */
  fqdn?: string;
  /** A Docker container's hosts file and names (`--rewrite-hosts`); absent for a namespace given by path or pid. */
  hosts?: { path: string; hostname: string; domain: string };
}

export function ok(res: ApiResponse): boolean {
  return res.code >= 200 && res.code < 300;
}

export async function mustCall(call: RouterCall, io: HostCommandIo, method: string, path: string, opts: CallOptions = {}): Promise<ApiResponse> {
  const res = await call(io, method, path, opts);
  if (typeof res === 'number') throw new Stop(res, '');
  return res;
}

export function optionValue(args: string[], i: number, name: string): { value: string; next: number } | undefined {
  if (args[i] === name) {
    if (i + 1 >= args.length) throw new UsageError(`${name} needs a value`);
    return { value: args[i + 1], next: i + 2 };
  }
  if (args[i].startsWith(`${name}=`)) return { value: args[i].slice(name.length + 1), next: i + 1 };
  return undefined;
}

export interface ParsedTarget {
  netns?: string;
  pid?: string;
  /** `-h FQDN` / `--name FQDN`: the name to register in weaveDNS. */
  fqdn?: string;
  /** `--add-host NAME:IP` entries, in order (for `--rewrite-hosts`). */
  addHosts: string[];
  positional: string[];
  flags: Set<string>;
}

/** Options after the addresses; `--netns PATH` / `--pid N` name a namespace instead of a container. */
export function parseOptions(args: string[], booleans: string[]): ParsedTarget {
  const out: ParsedTarget = { positional: [], flags: new Set(), addHosts: [] };
  for (let i = 0; i < args.length; ) {
    const netns = optionValue(args, i, '--netns');
    if (netns) {
      out.netns = netns.value;
      i = netns.next;
      continue;
    }
    const pid = optionValue(args, i, '--pid');
    if (pid) {
      out.pid = pid.value;
      i = pid.next;
      continue;
    }
    const name = optionValue(args, i, '-h') ?? optionValue(args, i, '--name');
    if (name) {
      out.fqdn = name.value;
      i = name.next;
      continue;
    }
    const addHost = optionValue(args, i, '--add-host');
    if (addHost) {
      out.addHosts.push(addHost.value);
      i = addHost.next;
      continue;
    }
    if (booleans.includes(args[i])) {
      out.flags.add(args[i]);
      i++;
      continue;
    }
    if (args[i].startsWith('-')) throw new UsageError(`unknown option ${args[i]}`);
    out.positional.push(args[i]);
    i++;
  }
  return out;
}

export async function resolveTarget(p: ParsedTarget, io: HostCommandIo): Promise<Target> {
  const given = [p.netns !== undefined, p.pid !== undefined, p.positional.length > 0].filter(Boolean).length;
  if (given !== 1 || p.positional.length > 1) throw new UsageError('name exactly one container, --netns PATH or --pid N');
  if (p.netns !== undefined) {
    if (!p.netns.startsWith('/')) throw new UsageError(`--netns needs an absolute path (e.g. /run/netns/NAME), got ${p.netns}`);
    return { form: [['netns', p.netns], ['label', p.netns]], id: p.netns };
  }
  if (p.pid !== undefined) {
    if (!/^[1-9]\d*$/.test(p.pid)) throw new UsageError(`--pid needs a process id, got ${p.pid}`);
    return { form: [['pid', p.pid], ['label', `pid:${p.pid}`]], id: `pid:${p.pid}` };
  }
  try {
    const c = await resolveContainer(p.positional[0], io.env);
    return {
      form: [['pid', String(c.pid)], ['label', c.id]], id: c.id, fqdn: c.fqdn,
      ...(c.hostsPath !== undefined ? { hosts: { path: c.hostsPath, hostname: c.hostname, domain: c.domain } } : {}),
    };
  } catch (err) {
    if (err instanceof ContainerError) throw new Stop(1, err.message);
    throw err;
  }
}

function ipamPath(id: string, a: AddressArg & { kind: 'net' }): string {
  return `/ip/${encodeURIComponent(id)}${a.subnet ? `/${a.subnet}` : ''}`;
}

/** Allocates (`POST`) or looks up (`GET`) `net:` addresses; claims explicit ones (404 = IPAM off, ignored). */
async function resolveAddresses(call: RouterCall, io: HostCommandIo, id: string, addresses: AddressArg[], mode: 'allocate' | 'lookup'): Promise<string[]> {
  const out: string[] = [];
  for (const a of addresses) {
    if (a.kind === 'cidr') {
      if (mode === 'allocate') {
        const [ip, len] = a.cidr.split('/');
        const res = await mustCall(call, io, 'PUT', `/ip/${encodeURIComponent(id)}/${ip}/${len}`, { timeoutMs: WAIT_FOR_IPAM });
        if (!ok(res) && res.code !== 404) throw new Stop(1, res.body.trim());
      }
      out.push(a.cidr);
      continue;
    }
    const res = await mustCall(call, io, mode === 'allocate' ? 'POST' : 'GET', ipamPath(id, a), { timeoutMs: WAIT_FOR_IPAM });
    if (res.code === 404) throw new Stop(1, IPAM_MISSING);
    if (!ok(res)) throw new Stop(1, res.body.trim());
    out.push(...res.body.trim().split(/\s+/).filter((s) => s !== ''));
  }
  return out;
}

/** Gives IPAM back what was removed; IPAM being off (404) or not owning it is fine. */
async function release(call: RouterCall, io: HostCommandIo, id: string, cidrs: string[]): Promise<void> {
  for (const c of cidrs) await call(io, 'DELETE', `/ip/${encodeURIComponent(id)}/${ipOf(c)}`);
}

/** `PUT /name/{id}/{ip}` per address with check-alive (spec §10.6); weaveDNS off (404) is reported once. */
export async function registerNames(call: RouterCall, io: HostCommandIo, id: string, ips: string[], fqdn: string, checkAlive = true): Promise<void> {
  for (const ip of ips) {
    const form: [string, string][] = [['fqdn', fqdn]];
    if (checkAlive) form.push(['check-alive', 'true']);
    const res = await mustCall(call, io, 'PUT', `/name/${encodeURIComponent(id)}/${ip}`, { form });
    if (res.code === 404) {
      io.stderr.write(`weaveDNS is not running; ${fqdn} was not registered\n`);
      return;
    }
    if (!ok(res)) throw new Stop(1, res.body.trim());
  }
}

function cidrsOf(body: string): string[] {
  return body.trim().split(/\s+/).filter((s) => s !== '');
}

export function guarded(run: Command): Command {
  return async (args, io) => {
    try {
      return await run(args, io);
    } catch (err) {
      if (err instanceof AddressError) {
        io.stderr.write(`${err.message}\n`);
        return 1;
      }
      if (!(err instanceof Stop)) throw err;
      if (err.message) io.stderr.write(`${err.message}\n`);
      return err.status;
    }
  };
}

async function routerResult(call: RouterCall, io: HostCommandIo, path: string, form: [string, string][]): Promise<string[]> {
  const res = await mustCall(call, io, 'POST', path, { form, timeoutMs: 30_000 });
  if (!ok(res)) throw new Stop(1, res.body.trim());
  return cidrsOf(res.body);
}

export function hostCommands(call: RouterCall): Record<string, Command> {
  const attach: Command = async (args, io) => {
    const { addresses, rest } = takeAddresses(args);
    const p = parseOptions(rest, ['--without-dns', '--rewrite-hosts', '--no-multicast-route']);
    const rewriteHosts = p.flags.has('--rewrite-hosts');
    for (const h of p.addHosts) {
      try {
        parseAddHost(h);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    }
    if (p.addHosts.length > 0 && !rewriteHosts) throw new UsageError('--add-host only adds lines to the /etc/hosts that --rewrite-hosts writes; give --rewrite-hosts too');
    if (rewriteHosts && (p.netns !== undefined || p.pid !== undefined)) {
      throw new Stop(1, '--rewrite-hosts needs a Docker container: a namespace given by --netns or --pid has no /etc/hosts weave can find; name the container instead');
    }
    const target = await resolveTarget(p, io);
    if (rewriteHosts && target.hosts === undefined) throw new Stop(1, `--rewrite-hosts: Docker reports no hosts file for container ${target.id}`);
    const cidrs = await resolveAddresses(call, io, target.id, addresses.length > 0 ? addresses : [{ kind: 'net' }], 'allocate');
    const form: [string, string][] = [...target.form, ...cidrs.map((c): [string, string] => ['cidr', c])];
    if (p.flags.has('--no-multicast-route')) form.push(['multicast-route', 'false']);
    try {
      await routerResult(call, io, '/weave/attach', form);
    } catch (err) {
      // Nothing was attached: give back what IPAM handed out for it.
      await release(call, io, target.id, cidrs);
      throw err;
    }
    if (rewriteHosts && target.hosts !== undefined) {
      const { path, hostname, domain } = target.hosts;
      try {
        // The container's own addresses: Weave's script wrote each CIDR's network address (a quirk no name should resolve to).
        writeHostsFile(path, renderHostsFile({ ips: cidrs.map(ipOf), hostname, domain, extraHosts: p.addHosts }));
      } catch (err) {
        throw new Stop(1, `--rewrite-hosts: cannot write ${path}: ${(err as Error).message}`);
      }
    }
    const fqdn = p.fqdn ?? target.fqdn;
    if (fqdn !== undefined && !p.flags.has('--without-dns')) await registerNames(call, io, target.id, cidrs.map(ipOf), fqdn);
    io.stdout.write(`${cidrs.map(ipOf).join(' ')}\n`);
    return 0;
  };

  const detach: Command = async (args, io) => {
    const { addresses, rest } = takeAddresses(args);
    const target = await resolveTarget(parseOptions(rest, []), io);
    // Without addresses only those IPAM gave the container go (net:default, as Weave's
    // `ipam_cidrs lookup`); addresses given explicitly at attach stay until named here.
    const cidrs = await resolveAddresses(call, io, target.id, addresses.length > 0 ? addresses : [{ kind: 'net' }], 'lookup');
    // The router takes "no cidr" as "every address": with nothing to remove, ask nothing.
    const removed = cidrs.length === 0 ? [] : await routerResult(call, io, '/weave/detach', [...target.form, ...cidrs.map((c): [string, string] => ['cidr', c])]);
    await release(call, io, target.id, removed);
    // Names of the removed addresses go too (404 = weaveDNS is off).
    for (const c of removed) await call(io, 'DELETE', `/name/${encodeURIComponent(target.id)}/${ipOf(c)}`);
    io.stdout.write(`${removed.map(ipOf).join(' ')}\n`);
    return 0;
  };

  const expose: Command = async (args, io) => {
    const { addresses, rest } = takeAddresses(args);
    let fqdn: string | undefined;
    let masquerade = true;
    for (let i = 0; i < rest.length; ) {
      const h = optionValue(rest, i, '-h');
      if (h && fqdn === undefined) {
        fqdn = h.value;
        i = h.next;
      } else if (rest[i] === '--without-masquerade') {
        masquerade = false;
        i++;
      } else {
        throw new UsageError();
      }
    }
    const cidrs = await resolveAddresses(call, io, EXPOSE_ID, addresses.length > 0 ? addresses : [{ kind: 'net' }], 'allocate');
    const form: [string, string][] = cidrs.map((c) => ['cidr', c]);
    if (!masquerade) form.push(['skipNAT', 'true']);
    await routerResult(call, io, '/weave/expose', form);
    if (fqdn !== undefined) {
      for (const c of cidrs) {
        const res = await mustCall(call, io, 'PUT', `/name/${EXPOSE_ID}/${ipOf(c)}`, { form: [['fqdn', fqdn]] });
        if (res.code === 404) {
          io.stderr.write(`weaveDNS is not running; ${fqdn} was not registered\n`);
          break;
        }
        if (!ok(res)) throw new Stop(1, res.body.trim());
      }
    }
    io.stdout.write(`${cidrs.map(ipOf).join(' ')}\n`);
    return 0;
  };

  const hide: Command = async (args, io) => {
    const { addresses, rest } = takeAddresses(args);
    if (rest.length > 0) throw new UsageError();
    // Without addresses every bridge address is hidden.
    const cidrs = addresses.length > 0 ? await resolveAddresses(call, io, EXPOSE_ID, addresses, 'lookup') : [];
    const removed = await routerResult(call, io, '/weave/hide', cidrs.map((c) => ['cidr', c]));
    await release(call, io, EXPOSE_ID, removed);
    io.stdout.write(`${removed.map(ipOf).join(' ')}\n`);
    return 0;
  };

  const ps: Command = async (args, io) => {
    // Docker names and ids are asked for by the short id the router lists them under; the
    // line then shows the argument as given, at most 12 characters (spec §1.6).
    const asked = await Promise.all(args.map(async (arg) => ({ arg, id: arg.startsWith('weave:') ? undefined : await dockerShortId(io.env, arg) })));
    // `weave:allids` stands for every container (Weave's `docker ps -q`): ask for all, and leave
    // out the bridge's own line unless `weave:expose` is asked for too.
    const allIds = args.includes(ALL_IDS);
    const query = allIds ? '' : new URLSearchParams(asked.map((a): [string, string] => ['container', a.id ?? a.arg])).toString();
    const res = await mustCall(call, io, 'GET', `/weave/ps${query ? `?${query}` : ''}`);
    if (!ok(res)) throw new Stop(res.code === 404 ? 4 : 1, res.body.trim());
    const shown = new Map(asked.filter((a) => a.id !== undefined).map((a) => [a.id!, a.arg.slice(0, 12)]));
    const lines = res.body.split('\n').filter((line) => !allIds || args.includes(EXPOSE_ID) || !line.startsWith(`${EXPOSE_ID} `));
    io.stdout.write(lines.map((line) => {
      const label = line.split(' ')[0] ?? '';
      const as = shown.get(label);
      return as === undefined ? line : `${as}${line.slice(label.length)}`;
    }).join('\n'));
    return 0;
  };

  return { attach: guarded(attach), detach: guarded(detach), expose: guarded(expose), hide: guarded(hide), ps: guarded(ps) };
}
