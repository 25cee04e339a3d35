// `weave dns-add`, `dns-remove`, `dns-lookup`, `dns-args` (user-surface spec
// §1.11) and the IPAM maintenance commands `rmpeer` and `prime` (§1.13).
import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { isIPv6Literal, splitHostPort } from '../host-port.js';
import {
  EXTERN_ID, Stop, guarded, mustCall, ok, optionValue, registerNames, resolveTarget,
  type Command, type HostCommandIo, type ParsedTarget, type RouterCall, type Target,
} from './host-commands.js';
import { ipOf } from './address-args.js';
import { UsageError } from './usage.js';

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const LOOKUP_TIMEOUT_MS = 5_000;

interface DnsArgs {
  ips: string[];
  fqdn?: string;
  target?: ParsedTarget;
}

/** `[ip ...] [<container> | --netns PATH | --pid N] [-h fqdn]`. */
function parseDnsArgs(args: string[]): DnsArgs {
  const ips: string[] = [];
  let i = 0;
  for (; i < args.length && IPV4.test(args[i]); i++) {
    if (args[i].split('.').some((o) => Number(o) > 255)) throw new UsageError(`invalid IP address ${args[i]}`);
    ips.push(args[i]);
  }
  const target: ParsedTarget = { positional: [], flags: new Set(), addHosts: [] };
  let fqdn: string | undefined;
  let named = false;
  for (; i < args.length; ) {
    const h = optionValue(args, i, '-h');
    const netns = optionValue(args, i, '--netns');
    const pid = optionValue(args, i, '--pid');
    if (h) {
      fqdn = h.value;
      i = h.next;
    } else if (netns) {
      target.netns = netns.value;
      named = true;
      i = netns.next;
    } else if (pid) {
      target.pid = pid.value;
      named = true;
      i = pid.next;
    } else if (args[i].startsWith('-')) {
      throw new UsageError(`unknown option ${args[i]}`);
    } else {
      target.positional.push(args[i]);
      named = true;
      i++;
    }
  }
  return named ? { ips, fqdn, target } : { ips, fqdn };
}

/** Who owns the names and which addresses they map to (spec §1.11). */
async function resolveOwner(call: RouterCall, io: HostCommandIo, a: DnsArgs): Promise<{ id: string; ips: string[]; fqdn: string; checkAlive: boolean }> {
  if (!a.target) {
    if (a.ips.length === 0 || a.fqdn === undefined) throw new UsageError('without a container give the addresses and -h FQDN');
    return { id: EXTERN_ID, ips: a.ips, fqdn: a.fqdn, checkAlive: false };
  }
  const t = await resolveTarget(a.target, io);
  const fqdn = a.fqdn ?? t.fqdn;
  if (fqdn === undefined) throw new Stop(1, `${t.id} has no domain name: give the name with -h FQDN`);
  let ips = a.ips;
  if (ips.length === 0) {
    ips = await containerAddresses(call, io, t);
    if (ips.length === 0) throw new Stop(1, `${t.id} has no weave addresses: give them before the container`);
  }
  return { id: t.id, ips, fqdn, checkAlive: true };
}

/**
 * Every address on the container's weave interface, not only those IPAM gave
 * it (Weave's `with_container_addresses`, spec §1.11).
 */
async function containerAddresses(call: RouterCall, io: HostCommandIo, t: Target): Promise<string[]> {
  const res = await mustCall(call, io, 'GET', `/weave/addrs?${new URLSearchParams(t.form).toString()}`);
  if (!ok(res)) throw new Stop(1, `cannot find the weave addresses of ${t.id}: ${res.body.trim()}; give them before the container`);
  return res.body.trim().split(/\s+/).filter((s) => s !== '').map(ipOf);
}

/** One A query over UDP to the router's DNS server; the addresses in the answer. */
export function queryA(host: string, port: number, name: string, timeoutMs = LOOKUP_TIMEOUT_MS): Promise<string[]> {
  const sock = createSocket(isIPv6Literal(host) ? 'udp6' : 'udp4');
  const id = Math.floor(Math.random() * 65_536);
  const query = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error(`no answer from the DNS server at ${host}:${port} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    sock.on('error', (err) => {
      clearTimeout(timer);
      sock.close();
      reject(err);
    });
    sock.on('message', (msg) => {
      let decoded: ReturnType<typeof dnsPacket.decode>;
      try {
        decoded = dnsPacket.decode(msg);
      } catch {
        return;
      }
      if (decoded.id !== id) return;
      clearTimeout(timer);
      sock.close();
      resolve((decoded.answers ?? []).flatMap((a) => (a.type === 'A' ? [a.data] : [])));
    });
    sock.send(query, port, host);
  });
}

/** `0.0.0.0:53` / `[::]:53` -> where a local client reaches it. */
function splitListen(text: string): { host: string; port: number } {
  const hp = splitHostPort(text);
  if (hp?.port === undefined) throw new Error(`invalid DNS listen address "${text}"`);
  let host = hp.host;
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1';
  if (host === '::') host = '::1';
  return { host, port: hp.port };
}

export function dnsCommands(call: RouterCall): Record<string, Command> {
  const dnsAdd: Command = async (args, io) => {
    const owner = await resolveOwner(call, io, parseDnsArgs(args));
    await registerNames(call, io, owner.id, owner.ips, owner.fqdn, owner.checkAlive);
    return 0;
  };

  const dnsRemove: Command = async (args, io) => {
    const a = parseDnsArgs(args);
    let id = EXTERN_ID;
    let ips = a.ips;
    if (a.target) {
      const t = await resolveTarget(a.target, io);
      id = t.id;
      if (ips.length === 0) ips = await containerAddresses(call, io, t);
    } else if (ips.length === 0) {
      throw new UsageError('without a container give the addresses');
    }
    const paths = ips.length > 0 ? ips.map((ip) => `/name/${encodeURIComponent(id)}/${ip}`) : [`/name/${encodeURIComponent(id)}`];
    for (const path of paths) {
      const res = await mustCall(call, io, 'DELETE', path, a.fqdn === undefined ? {} : { form: [['fqdn', a.fqdn]] });
      if (res.code === 404) throw new Stop(1, 'weaveDNS is not running');
      if (!ok(res)) throw new Stop(1, res.body.trim());
    }
    return 0;
  };

  const dnsLookup: Command = async (args, io) => {
    if (args.length !== 1) throw new UsageError();
    const res = await mustCall(call, io, 'GET', '/dns-address-port');
    if (res.code === 404) throw new Stop(1, 'weaveDNS is not running');
    if (!ok(res)) throw new Stop(1, res.body.trim());
    const { host, port } = splitListen(res.body.trim());
    try {
      for (const ip of await queryA(host, port, args[0])) io.stdout.write(`${ip}\n`);
    } catch (err) {
      throw new Stop(1, `dns-lookup ${args[0]}: ${(err as Error).message}`);
    }
    return 0;
  };

  const dnsArgs: Command = async (args, io) => {
    if (args.length > 0) throw new UsageError();
    const domain = await mustCall(call, io, 'GET', '/domain');
    if (domain.code === 404) return 0; // weaveDNS is off: nothing to add to docker run
    const address = await mustCall(call, io, 'GET', '/dns-address');
    if (!ok(domain) || !ok(address)) throw new Stop(1, (ok(domain) ? address : domain).body.trim());
    io.stdout.write(`--dns=${address.body.trim()} --dns-search=${domain.body.trim()}`);
    return 0;
  };

  const rmpeer: Command = async (args, io) => {
    if (args.length === 0) throw new UsageError();
    let status = 0;
    for (const peer of args) {
      const res = await mustCall(call, io, 'DELETE', `/peer/${encodeURIComponent(peer)}`);
      if (ok(res)) {
        io.stdout.write(res.body);
      } else {
        io.stderr.write(res.code === 404 ? 'IPAM is not enabled on this router\n' : res.body);
        status = 1;
      }
    }
    return status;
  };

  const prime: Command = async (args, io) => {
    if (args.length > 0) throw new UsageError();
    // Blocks until the ring exists (consensus, seed or learned from a peer).
    const res = await mustCall(call, io, 'GET', '/ring', { timeoutMs: 0 });
    if (res.code === 404) throw new Stop(1, 'IPAM is not enabled on this router');
    if (!ok(res)) throw new Stop(1, res.body.trim());
    return 0;
  };

  return {
    'dns-add': guarded(dnsAdd),
    'dns-remove': guarded(dnsRemove),
    'dns-lookup': guarded(dnsLookup),
    'dns-args': guarded(dnsArgs),
    rmpeer: guarded(rmpeer),
    prime: guarded(prime),
  };
}
