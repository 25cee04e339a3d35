// Host-networking endpoints of the control API. Weave's own script did this
// work itself (user-surface spec §1.8-1.10); here the router does it, and
// the `weave` CLI calls these project endpoints (form values in the query
// string or an urlencoded body, repeated keys allowed):
//
//   POST /weave/attach   netns=PATH | pid=N, label=TEXT, cidr=A.B.C.D/N (repeat),
//                        multicast-route=false  -> 200 "cidr cidr\n" (addresses on ethwe)
//                        and for CNI (spec §7.4): ifname=NAME, veth-id=ID (vethwepl<first 7>),
//                        hairpin=false, mtu=N, route=DST[,GW] (repeat, in order; no GW: on-link)
//   POST /weave/detach   netns=PATH | pid=N, cidr (repeat; none = all), ifname=NAME -> 200 removed cidrs
//   GET  /weave/endpoint netns=PATH | pid=N, ifname=NAME -> 200 JSON {hostVeth, mac, mtu, cidrs, routes:[{dst, gateway?}]};
//                        400 when the namespace has no such interface
//   GET  /weave/addrs    netns=PATH | pid=N -> "cidr cidr\n" (every address on ethwe; "" when not attached)
//   GET  /weave/ps       container=LABEL (repeat; none = all) -> "<label> <mac> <cidr>...\n" lines
//   POST /weave/expose   cidr (repeat), skipNAT=true -> 200 exposed cidrs
//   POST /weave/hide     cidr (repeat; none = all) -> 200 removed cidrs
//   GET  /weave/bridge-type -> "bridge\n"
//   POST /expose/{ip}/{prefixlen}  skipNAT=true  -> 204 (Weave's own path, spec §5.1)
//
// Bad input -> 400 with the reason; a kernel failure -> 500 with the reason.
import type { HttpApi, ApiReply, ApiRequest } from './http-app.js';
import { formValues } from './server.js';
import { HostRequestError, type HostAttachRequest, type HostControl, type HostNetnsTarget, type HostRoute } from './host-control.js';

const TEXT = 'text/plain; charset=utf-8';
const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const IFNAME = /^[^\s/:]{1,15}$/;
const VETH_ID = /^[A-Za-z0-9_.-]{1,64}$/;

class BadRequest extends Error {}

function checkCidr(text: string): string {
  const m = CIDR.exec(text);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32) {
    throw new BadRequest(`invalid address ${JSON.stringify(text)}: expected an IPv4 CIDR such as 10.32.0.5/12`);
  }
  return text;
}

function checkRoute(text: string): HostRoute {
  const [dst, gateway, ...rest] = text.split(',');
  if (dst === undefined || rest.length > 0) throw new BadRequest(`invalid route ${JSON.stringify(text)}: expected DST or DST,GATEWAY`);
  checkCidr(dst);
  if (gateway === undefined) return { dst };
  checkCidr(`${gateway}/32`);
  return { dst, gateway };
}

function optionalIfname(req: ApiRequest): string | undefined {
  const ifname = one(req, 'ifname');
  if (ifname !== undefined && !IFNAME.test(ifname)) throw new BadRequest(`invalid ifname ${JSON.stringify(ifname)}: 1-15 characters, no spaces, '/' or ':'`);
  return ifname;
}

/** The CNI options of an attach (spec §7.4); only those given are set. */
function cniOptions(req: ApiRequest): Pick<HostAttachRequest, 'ifname' | 'vethId' | 'hairpin' | 'mtu' | 'routes'> {
  const out: Pick<HostAttachRequest, 'ifname' | 'vethId' | 'hairpin' | 'mtu' | 'routes'> = {};
  const ifname = optionalIfname(req);
  if (ifname !== undefined) out.ifname = ifname;
  const vethId = one(req, 'veth-id');
  if (vethId !== undefined) {
    if (!VETH_ID.test(vethId)) throw new BadRequest(`invalid veth-id ${JSON.stringify(vethId)}: letters, digits, '.', '_' or '-'`);
    out.vethId = vethId;
  }
  const hairpin = one(req, 'hairpin');
  if (hairpin !== undefined) out.hairpin = hairpin !== 'false';
  const mtu = one(req, 'mtu');
  if (mtu !== undefined) {
    if (!/^\d{1,5}$/.test(mtu) || Number(mtu) > 65535) throw new BadRequest(`invalid mtu ${JSON.stringify(mtu)}`);
    out.mtu = Number(mtu);
  }
  const routes = formValues(req, 'route');
  if (routes.length > 0) out.routes = routes.map(checkRoute);
  return out;
}

function one(req: ApiRequest, key: string): string | undefined {
  const v = formValues(req, key);
  if (v.length > 1) throw new BadRequest(`give ${key} at most once`);
  return v[0];
}

function targetOf(req: ApiRequest): HostNetnsTarget {
  const netns = one(req, 'netns');
  const pid = one(req, 'pid');
  if ((netns === undefined) === (pid === undefined)) throw new BadRequest('give exactly one of netns=PATH or pid=N');
  if (pid !== undefined) {
    if (!/^[1-9]\d{0,9}$/.test(pid)) throw new BadRequest(`invalid pid ${JSON.stringify(pid)}`);
    return { pid: Number(pid) };
  }
  if (!(netns as string).startsWith('/')) throw new BadRequest(`netns must be an absolute path, got ${JSON.stringify(netns)}`);
  return { netns: netns as string };
}

/** Shown as `weave ps` does: full container ids by their first 12 characters (spec §1.6). */
export function psLabel(label: string): string {
  return /^[0-9a-f]{64}$/.test(label) ? label.slice(0, 12) : label;
}

function handle(fn: (req: ApiRequest) => Promise<{ code: number; body: string }>) {
  return async (req: ApiRequest, reply: ApiReply): Promise<ApiReply> => {
    try {
      const { code, body } = await fn(req);
      return reply.code(code).type(TEXT).send(body);
    } catch (err) {
      const code = err instanceof BadRequest || err instanceof HostRequestError ? 400 : 500;
      return reply.code(code).type(TEXT).send(`${(err as Error).message}\n`);
    }
  };
}

export function registerHostRoutes(app: HttpApi, host: HostControl): void {
  app.post('/weave/attach', handle(async (req) => {
    const target = targetOf(req);
    const cidrs = formValues(req, 'cidr').map(checkCidr);
    if (cidrs.length === 0) throw new BadRequest('give at least one cidr=A.B.C.D/N');
    const label = one(req, 'label') ?? ('pid' in target ? `pid:${target.pid}` : target.netns);
    const multicastRoute = one(req, 'multicast-route') !== 'false';
    const now = await host.attach({ target, label, cidrs, multicastRoute, ...cniOptions(req) });
    return { code: 200, body: `${now.join(' ')}\n` };
  }));
  app.post('/weave/detach', handle(async (req) => {
    const removed = await host.detach(targetOf(req), formValues(req, 'cidr').map(checkCidr), optionalIfname(req));
    return { code: 200, body: `${removed.join(' ')}\n` };
  }));
  app.get('/weave/endpoint', async (req, reply) => {
    try {
      const target = targetOf(req);
      const ifname = optionalIfname(req);
      const info = await host.inspect(target, ifname);
      if (!info) throw new HostRequestError(`${'pid' in target ? `process ${target.pid}` : target.netns} has no interface ${ifname ?? 'ethwe'}`);
      return reply.code(200).type('application/json').send(JSON.stringify(info));
    } catch (err) {
      const code = err instanceof BadRequest || err instanceof HostRequestError ? 400 : 500;
      return reply.code(code).type(TEXT).send(`${(err as Error).message}\n`);
    }
  });
  app.get('/weave/addrs', handle(async (req) => ({ code: 200, body: `${(await host.addresses(targetOf(req))).join(' ')}\n` })));
  app.get('/weave/ps', handle(async (req) => {
    const entries = await host.ps(formValues(req, 'container'));
    return { code: 200, body: entries.map((e) => `${[psLabel(e.label), e.mac, ...e.cidrs].join(' ')}\n`).join('') };
  }));
  app.post('/weave/expose', handle(async (req) => {
    const cidrs = formValues(req, 'cidr').map(checkCidr);
    if (cidrs.length === 0) throw new BadRequest('give at least one cidr=A.B.C.D/N');
    const masquerade = one(req, 'skipNAT') !== 'true';
    for (const c of cidrs) await host.expose(c, masquerade);
    return { code: 200, body: `${cidrs.join(' ')}\n` };
  }));
  app.post('/weave/hide', handle(async (req) => {
    const removed = await host.hide(formValues(req, 'cidr').map(checkCidr));
    return { code: 200, body: `${removed.join(' ')}\n` };
  }));
  app.get('/weave/bridge-type', handle(async () => ({ code: 200, body: `${host.bridgeType()}\n` })));
  app.post<{ ip: string; len: string }>('/expose/:ip/:len', async (req, reply) => {
    const cidr = `${req.params.ip}/${req.params.len}`;
    if (!CIDR.test(cidr)) return reply.code(400).type(TEXT).send(`unable to parse ip addr: ${cidr}\n`);
    try {
      await host.expose(cidr, one(req, 'skipNAT') !== 'true');
    } catch (err) {
      return reply.code(500).type(TEXT).send(`unable to expose: ${(err as Error).message}\n`);
    }
    return reply.code(204).send();
  });
}
