// IPAM's routes on the control API (wire spec §10.4, and DELETE /peer[/{id}]
// from §10.2): thin adapters from HTTP to the allocator.
import type { HttpApi, ApiReply, ApiRequest } from '../api/http-app.js';
import type { CIDR } from './addr.js';
import { cidrRange, formatCIDR, parseAddress, parseCIDR, isNetworkCIDR } from './addr.js';
import type { Allocator } from './allocator.js';
import { IpamCancelledError } from './allocator.js';

const TEXT = 'text/plain; charset=utf-8';

export interface IpamHttpOptions {
  /** `GET /ipinfo/tracker` answer: '', 'awsvpc' or the no-masq-local tracker name. */
  tracker?: string;
  /** Called after DELETE /peer handed our ranges away (the router then stops IPAM). */
  onLeave?: () => void;
}

function form(req: ApiRequest, key: string): string[] {
  const fromQuery = new URL(req.url, 'http://localhost').searchParams.getAll(key);
  const body = typeof req.body === 'string' ? new URLSearchParams(req.body).getAll(key) : [];
  return [...body, ...fromQuery];
}

const flag = (req: ApiRequest, key: string): boolean => form(req, key).includes('true');

function text(reply: ApiReply, code: number, body: string): ApiReply {
  return reply.code(code).type(TEXT).send(body);
}

function badRequest(reply: ApiReply, err: unknown): ApiReply {
  return text(reply, 400, `${(err as Error).message}\n`);
}

type Params = { id?: string; ip?: string; prefixlen?: string };

/**
 * Fires when the caller goes away before we answered (the CLI was killed or
 * timed out), so a request still waiting in the allocator is withdrawn.
 */
function callerGone(reply: ApiReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => { if (!reply.raw.writableFinished) controller.abort(); });
  return controller.signal;
}

/** `{ip}/{prefixlen}` path segments as a CIDR; throws a readable error. */
function pathCIDR(p: Params): CIDR {
  return parseCIDR(`${p.ip ?? ''}/${p.prefixlen ?? ''}`);
}

function subnetFromPath(p: Params): CIDR {
  const c = pathCIDR(p);
  if (!isNetworkCIDR(c)) {
    throw new Error(`Invalid subnet ${formatCIDR(c)} - bits after network prefix are not all zero (did you mean ${formatCIDR({ addr: cidrRange(c).start, prefixLen: c.prefixLen })}?)`);
  }
  return c;
}

export function registerIpamRoutes(app: HttpApi, alloc: Allocator, opts: IpamHttpOptions = {}): void {
  const allocate = async (req: ApiRequest<Params>, reply: ApiReply, subnet?: CIDR): Promise<ApiReply> => {
    try {
      const got = await alloc.allocate(req.params.id!, subnet, { checkAlive: flag(req, 'check-alive'), signal: callerGone(reply) });
      return text(reply, 200, formatCIDR(got));
    } catch (err) {
      if (err instanceof IpamCancelledError) return text(reply, 200, 'cancelled');
      return badRequest(reply, err);
    }
  };

  app.post<Params>('/ip/:id', (req, reply) => allocate(req, reply));
  app.post<Params>('/ip/:id/:ip/:prefixlen', async (req, reply) => {
    let subnet: CIDR;
    try { subnet = subnetFromPath(req.params); } catch (err) { return badRequest(reply, err); }
    return allocate(req, reply, subnet);
  });

  app.put<Params>('/ip/:id/:ip/:prefixlen', async (req, reply) => {
    try {
      await alloc.claim(req.params.id!, pathCIDR(req.params), {
        checkAlive: flag(req, 'check-alive'), noErrorOnUnknown: flag(req, 'noErrorOnUnknown'), signal: callerGone(reply),
      });
      return reply.code(204).send();
    } catch (err) {
      if (err instanceof IpamCancelledError) return text(reply, 200, 'cancelled');
      return text(reply, 400, `Unable to claim: ${(err as Error).message}\n`);
    }
  });

  app.get<Params>('/ip/:id', (req, reply) =>
    text(reply, 200, alloc.lookup(req.params.id!, alloc.defaultSubnet).map(formatCIDR).join(' ')));
  app.get<Params>('/ip/:id/:ip/:prefixlen', (req, reply) => {
    try {
      return text(reply, 200, alloc.lookup(req.params.id!, subnetFromPath(req.params)).map(formatCIDR).join(' '));
    } catch (err) { return badRequest(reply, err); }
  });
  app.get('/ip', (_req, reply) => reply.code(200).type('application/json').send(JSON.stringify({
    owned: alloc.allOwned().map((o) => ({ containerid: o.ident, addrs: o.addrs.map(formatCIDR) })),
  })));

  app.delete<Params>('/ip/:id/:ip', (req, reply) => {
    try {
      alloc.free(req.params.id!, parseAddress(req.params.ip ?? ''));
      return reply.code(204).send();
    } catch (err) { return badRequest(reply, err); }
  });
  app.delete<Params>('/ip/:id', (req, reply) => {
    try {
      alloc.deleteIdent(req.params.id!);
      return reply.code(204).send();
    } catch (err) { return badRequest(reply, err); }
  });

  app.get('/ring', async (_req, reply) => {
    await alloc.prime();
    return text(reply, 200, '');
  });
  app.get('/ipinfo/defaultsubnet', (_req, reply) => text(reply, 200, formatCIDR(alloc.defaultSubnet)));
  app.get('/ipinfo/tracker', (_req, reply) => text(reply, 200, `${opts.tracker ?? ''}\n`));

  app.delete<Params>('/peer/:id', (req, reply) => {
    const n = alloc.adminTakeRangesFromPeer(req.params.id!);
    return text(reply, 200, `${n} IPs taken over from ${req.params.id!}\n`);
  });
  app.delete('/peer', (_req, reply) => {
    alloc.leave();
    opts.onLeave?.();
    return reply.code(204).send();
  });
}
