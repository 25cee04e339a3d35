// The changes the proxy makes to `POST /containers/create` for a container it
// attaches (user-surface spec §7.3.2-7.3.4): the waiter bound read-only at /w
// and put in front of the entrypoint, hostname/domain, weaveDNS server and
// search list. Works on the JSON object as sent, so fields this code does not
// know pass through untouched.
import { dnsSettings, hostnameCandidate, type HostnameRules } from './hostname.js';

/** The waiter as the container sees it; a container whose entrypoint starts with it is weave-managed. */
export const WAITER_ENTRYPOINT = '/w/w';
/** Where the waiter's folder is bound in containers. */
export const WAITER_MOUNT = '/w';

export type JsonObject = Record<string, unknown>;

export interface ImageCommand {
  Entrypoint?: unknown;
  Cmd?: unknown;
}

export interface CreateRewriteOptions {
  /** Host folder holding the waiter variant to bind (`w`, `w-nomcast`). */
  waiterDir: string;
  /** weaveDNS domain and server address; undefined with --without-dns or weaveDNS off. */
  dns?: { domain: string; server: string };
  hostnameRules: HostnameRules;
  /** The image's entrypoint and command, when the request names neither entrypoint. */
  imageCommand(image: string): Promise<ImageCommand>;
}

export class CreateRequestError extends Error {}

/** Docker accepts a command as a string or a list (strslice); null and absent mean "not given". */
export function commandList(v: unknown): string[] | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  throw new CreateRequestError(`invalid command ${JSON.stringify(v)}: expected a string or a list of strings`);
}

function stringList(v: unknown, what: string): string[] {
  if (v === null || v === undefined) return [];
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  throw new CreateRequestError(`invalid ${what} ${JSON.stringify(v)}: expected a list of strings`);
}

export function objectField(o: JsonObject, key: string): JsonObject {
  const v = o[key];
  if (v === null || v === undefined) {
    const fresh: JsonObject = {};
    o[key] = fresh;
    return fresh;
  }
  if (typeof v !== 'object' || Array.isArray(v)) throw new CreateRequestError(`invalid ${key}: expected an object`);
  return v as JsonObject;
}

export function isWeaveManaged(entrypoint: unknown): boolean {
  const e = Array.isArray(entrypoint) ? entrypoint : [];
  return e[0] === WAITER_ENTRYPOINT;
}

/** Puts the waiter in front of the entrypoint (spec §7.3.2), taking the image's when the request has none. */
async function wrapEntrypoint(body: JsonObject, opts: CreateRewriteOptions): Promise<void> {
  let entrypoint = commandList(body.Entrypoint);
  let cmd = commandList(body.Cmd);
  if (entrypoint === undefined || entrypoint.length === 0) {
    const image = typeof body.Image === 'string' ? body.Image : '';
    const fromImage = await opts.imageCommand(image);
    if (cmd === undefined || cmd.length === 0) cmd = commandList(fromImage.Cmd);
    // An explicitly empty entrypoint (`--entrypoint ""`) stays empty.
    if (entrypoint === undefined) entrypoint = commandList(fromImage.Entrypoint);
  }
  entrypoint ??= [];
  if (entrypoint.length === 0 && (cmd === undefined || cmd.length === 0)) throw new CreateRequestError('No command specified');
  if (entrypoint[0] !== WAITER_ENTRYPOINT) entrypoint = [WAITER_ENTRYPOINT, ...entrypoint];
  body.Entrypoint = entrypoint;
  if (cmd !== undefined) body.Cmd = cmd;
}

/** Binds the waiter folder read-only at /w (replacing an earlier /w bind of ours). */
export function addWaiterBind(hostConfig: JsonObject, waiterDir: string): void {
  const binds = stringList(hostConfig.Binds, 'HostConfig.Binds').filter((b) => b.split(':')[1] !== WAITER_MOUNT);
  binds.push(`${waiterDir}:${WAITER_MOUNT}:ro`);
  hostConfig.Binds = binds;
}

/** Points the container at weaveDNS and derives its hostname (spec §7.3.4); returns a warning to log, if any. */
export function addDnsSettings(body: JsonObject, hostConfig: JsonObject, name: string, opts: CreateRewriteOptions): string | undefined {
  if (!opts.dns) return undefined;
  const labels = body.Labels;
  const s = dnsSettings({
    hostname: typeof body.Hostname === 'string' ? body.Hostname : '',
    candidate: hostnameCandidate(name, typeof labels === 'object' && labels !== null ? (labels as JsonObject) : undefined, opts.hostnameRules),
    domain: opts.dns.domain,
    dnsServer: opts.dns.server,
    dns: stringList(hostConfig.Dns, 'HostConfig.Dns'),
    dnsSearch: stringList(hostConfig.DnsSearch, 'HostConfig.DnsSearch'),
  });
  if (s.hostname !== undefined) {
    body.Hostname = s.hostname;
    body.Domainname = s.domainname;
  }
  hostConfig.Dns = s.dns;
  hostConfig.DnsSearch = s.dnsSearch;
  return s.warning;
}

/** Rewrites a create body in place for a container the proxy attaches; returns warnings to log. */
export async function rewriteCreate(body: JsonObject, name: string, opts: CreateRewriteOptions): Promise<string[]> {
  const hostConfig = objectField(body, 'HostConfig');
  addWaiterBind(hostConfig, opts.waiterDir);
  await wrapEntrypoint(body, opts);
  const warning = addDnsSettings(body, hostConfig, name, opts);
  return warning === undefined ? [] : [warning];
}
