// WeaveRouterPort over the router's HTTP API (user-surface spec §5.1 for the
// IPAM and expose paths; the /weave/* host paths of controlplane/api/host-routes.ts).
import { callRouter, RouterUnreachableError, type ApiResponse, type CallOptions } from '../cli/api-client.js';
import type { CniRoute } from './config.js';
import {
  RouterDownError, RouterRequestError,
  type EndpointRequest, type EndpointState, type RouterHealth, type WeaveRouterPort,
} from './router-port.js';

/** The `weave ps` label of the bridge's own addresses (spec §1.6). */
const EXPOSE_LABEL = 'weave:expose';
/** Allocation waits for IPAM consensus and for space from other peers: the runtime's own timeout bounds it. */
const ALLOCATE_TIMEOUT_MS = 10 * 60_000;
/** Attach waits for the datapath to take the port. */
const ATTACH_TIMEOUT_MS = 60_000;

function idPath(containerId: string, subnet?: string): string {
  return `/ip/${encodeURIComponent(containerId)}${subnet === undefined ? '' : `/${subnet}`}`;
}

function firstLine(body: string): string {
  return body.trim().split('\n')[0] ?? '';
}

export class HttpRouterClient implements WeaveRouterPort {
  constructor(readonly address: string) {}

  private async call(method: string, path: string, opts: CallOptions = {}): Promise<ApiResponse> {
    try {
      return await callRouter(this.address, method, path, opts);
    } catch (err) {
      if (err instanceof RouterUnreachableError) throw new RouterDownError(err.message);
      throw err;
    }
  }

  private async ok(method: string, path: string, opts: CallOptions = {}): Promise<string> {
    const res = await this.call(method, path, opts);
    if (res.code >= 200 && res.code < 300) return res.body;
    if (res.code === 404 && path.startsWith('/ip')) throw new RouterRequestError('IPAM is not enabled on the weave router (launch it with --ipalloc-range)');
    throw new RouterRequestError(res.body.trim() || `HTTP ${res.code} from ${method} ${path}`);
  }

  async health(): Promise<RouterHealth> {
    let res: ApiResponse;
    try {
      res = await this.call('GET', '/status');
    } catch (err) {
      return { kind: 'unreachable', reason: (err as Error).message };
    }
    if (res.code === 503) return { kind: 'not-ready', reason: firstLine(res.body) || 'status 503' };
    if (res.code !== 200) return { kind: 'not-ready', reason: `GET /status answered ${res.code}` };
    const ipam = await this.call('GET', '/ipinfo/defaultsubnet');
    if (ipam.code === 404) return { kind: 'no-ipam' };
    return { kind: 'ready' };
  }

  async allocate(containerId: string, subnet?: string): Promise<string> {
    const body = (await this.ok('POST', idPath(containerId, subnet), { timeoutMs: ALLOCATE_TIMEOUT_MS })).trim();
    if (body === 'cancelled') throw new RouterRequestError('allocation cancelled by the router');
    return body;
  }

  async lookup(containerId: string, subnet?: string): Promise<string[]> {
    return (await this.ok('GET', idPath(containerId, subnet))).split(/\s+/).filter((s) => s !== '');
  }

  async release(containerId: string): Promise<boolean> {
    const res = await this.call('DELETE', idPath(containerId));
    if (res.code === 204 || res.code === 200) return true;
    // spec §5.1: 400 "Delete: no addresses for ID" - nothing to release.
    if (res.code === 400 && /no addresses/i.test(res.body)) return false;
    if (res.code === 404) throw new RouterRequestError('IPAM is not enabled on the weave router');
    throw new RouterRequestError(res.body.trim() || `HTTP ${res.code} from DELETE /ip`);
  }

  async bridgeAddresses(): Promise<string[]> {
    const body = await this.ok('GET', `/weave/ps?container=${encodeURIComponent(EXPOSE_LABEL)}`);
    const line = body.split('\n').find((l) => l.startsWith(`${EXPOSE_LABEL} `));
    return line ? line.split(' ').slice(2).filter((s) => s !== '') : [];
  }

  async expose(cidr: string): Promise<void> {
    await this.ok('POST', `/expose/${cidr}`);
  }

  async attach(req: EndpointRequest): Promise<void> {
    const form: [string, string][] = [
      ['netns', req.netns], ['label', req.containerId], ['ifname', req.ifname], ['veth-id', req.containerId],
      ['hairpin', String(req.hairpin)], ['multicast-route', 'false'],
      ...req.cidrs.map((c): [string, string] => ['cidr', c]),
      ...req.routes.map((r): [string, string] => ['route', r.gw === undefined ? r.dst : `${r.dst},${r.gw}`]),
    ];
    if (req.mtu > 0) form.push(['mtu', String(req.mtu)]);
    await this.ok('POST', '/weave/attach', { form, timeoutMs: ATTACH_TIMEOUT_MS });
  }

  async inspect(netns: string, ifname: string): Promise<EndpointState | undefined> {
    const q = new URLSearchParams([['netns', netns], ['ifname', ifname]]).toString();
    const res = await this.call('GET', `/weave/endpoint?${q}`);
    if (res.code === 400) return undefined;
    if (res.code !== 200) throw new RouterRequestError(res.body.trim() || `HTTP ${res.code} from GET /weave/endpoint`);
    const info = JSON.parse(res.body) as { hostVeth: string; mac: string; mtu: number; cidrs: string[]; routes: { dst: string; gateway?: string }[] };
    return {
      hostVeth: info.hostVeth,
      mac: info.mac,
      mtu: info.mtu,
      cidrs: info.cidrs,
      routes: info.routes.map((r): CniRoute => (r.gateway === undefined ? { dst: r.dst } : { dst: r.dst, gw: r.gateway })),
    };
  }

  async detach(netns: string, ifname: string): Promise<boolean> {
    const res = await this.call('POST', '/weave/detach', { form: [['netns', netns], ['ifname', ifname]] });
    if (res.code === 200) return true;
    if (res.code === 400 && /has no .* interface|No such file|ENOENT/.test(res.body)) return false;
    throw new RouterRequestError(res.body.trim() || `HTTP ${res.code} from POST /weave/detach`);
  }
}
