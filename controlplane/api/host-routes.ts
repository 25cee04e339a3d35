// Host-networking endpoints of the control API. Weave's own script did this
// work itself (user-surface spec §1.8-1.10); here the router does it, and
// the `weave` CLI calls these project endpoints (form values in the query
// string or an urlencoded body, repeated keys allowed):
//
//   POST /weave/attach   netns=PATH | pid=N, label=TEXT, cidr=A.B.C.D/N (repeat),
//                        multicast-route=false  -> 200 "cidr cidr\n" (addresses on ethwe)
//   POST /weave/detach   netns=PATH | pid=N, cidr (repeat; none = all) -> 200 removed cidrs
//   GET  /weave/addrs    netns=PATH | pid=N -> "cidr cidr\n" (every address on ethwe; "" when not attached)
//   GET  /weave/ps       container=LABEL (repeat; none = all) -> "<label> <mac> <cidr>...\n" lines
//   POST /weave/expose   cidr (repeat), skipNAT=true -> 200 exposed cidrs
//   POST /weave/hide     cidr (repeat; none = all) -> 200 removed cidrs
//   GET  /weave/bridge-type -> "bridge\n"
//   POST /expose/{ip}/{prefixlen}  skipNAT=true  -> 204 (Weave's own path, spec §5.1)
//
// Bad input -> 400 with the reason; a kernel failure -> 500 with the reason.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { formValues } from './server.js';
import { HostRequestError, type HostControl, type HostNetnsTarget } from './host-control.js';

const TEXT = 'text/plain; charset=utf-8';
const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

class BadRequest extends Error {}

function checkCidr(text: string): string {
  const m = CIDR.exec(text);
  if (!m || m.slice(1, 5).some((o) => Number(o) > 255) || Number(m[5]) > 32) {
    throw new BadRequest(`invalid address ${JSON.stringify(text)}: expected an IPv4 CIDR such as 10.32.0.5/12`);
  }
  return text;
}

function one(req: FastifyRequest, key: string): string | undefined {
  const v = formValues(req, key);
  if (v.length > 1) throw new BadRequest(`give ${key} at most once`);
  return v[0];
}

function targetOf(req: FastifyRequest): HostNetnsTarget {
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

function handle(fn: (req: FastifyRequest) => Promise<{ code: number; body: string }>) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    try {
      const { code, body } = await fn(req);
      return reply.code(code).type(TEXT).send(body);
    } catch (err) {
      const code = err instanceof BadRequest || err instanceof HostRequestError ? 400 : 500;
      return reply.code(code).type(TEXT).send(`${(err as Error).message}\n`);
    }
  };
}

export function registerHostRoutes(app: FastifyInstance, host: HostControl): void {
  app.post('/weave/attach', handle(async (req) => {
    const target = targetOf(req);
    const cidrs = formValues(req, 'cidr').map(checkCidr);
    if (cidrs.length === 0) throw new BadRequest('give at least one cidr=A.B.C.D/N');
    const label = one(req, 'label') ?? ('pid' in target ? `pid:${target.pid}` : target.netns);
    const multicastRoute = one(req, 'multicast-route') !== 'false';
    const now = await host.attach({ target, label, cidrs, multicastRoute });
    return { code: 200, body: `${now.join(' ')}\n` };
  }));
  app.post('/weave/detach', handle(async (req) => {
    const removed = await host.detach(targetOf(req), formValues(req, 'cidr').map(checkCidr));
    return { code: 200, body: `${removed.join(' ')}\n` };
  }));
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
  app.post<{ Params: { ip: string; len: string } }>('/expose/:ip/:len', async (req, reply) => {
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
