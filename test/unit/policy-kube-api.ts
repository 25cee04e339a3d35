// A stand-in for the Kubernetes API server for the policy source: list and
// watch of Pods, Namespaces, NetworkPolicies, Services and EndpointSlices with the JSON shapes of the
// API reference (PodList, NamespaceList, NetworkPolicyList, ServiceList, EndpointSliceList with
// metadata.resourceVersion; watch streams of {"type","object"} lines), and the
// one failure the informers must survive: a watch answered 410 Gone (the
// resourceVersion is too old), after which they list again.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { serviceAccountConfig } from './k8s-api-server.js';

type Obj = { metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; creationTimestamp?: string } } & Record<string, unknown>;

interface Resource {
  kind: string;
  listKind: string;
  apiVersion: string;
  objects: Map<string, Obj>;
  watchers: Set<ServerResponse>;
}

function keyOf(o: Obj): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

export class FakePolicyApi {
  private rv = 1000;
  private server: Server | undefined;
  /** Watches to answer 410 Gone (then cleared). */
  goneWatches = 0;
  readonly requests: string[] = [];
  private readonly resources: Record<string, Resource> = {
    '/api/v1/pods': { kind: 'Pod', listKind: 'PodList', apiVersion: 'v1', objects: new Map(), watchers: new Set() },
    '/api/v1/namespaces': { kind: 'Namespace', listKind: 'NamespaceList', apiVersion: 'v1', objects: new Map(), watchers: new Set() },
    '/apis/networking.k8s.io/v1/networkpolicies': { kind: 'NetworkPolicy', listKind: 'NetworkPolicyList', apiVersion: 'networking.k8s.io/v1', objects: new Map(), watchers: new Set() },
    '/api/v1/services': { kind: 'Service', listKind: 'ServiceList', apiVersion: 'v1', objects: new Map(), watchers: new Set() },
    '/apis/discovery.k8s.io/v1/endpointslices': { kind: 'EndpointSlice', listKind: 'EndpointSliceList', apiVersion: 'discovery.k8s.io/v1', objects: new Map(), watchers: new Set() },
  };

  private resourceOf(o: Obj): Resource {
    const kind = o.kind;
    const r = Object.values(this.resources).find((x) => x.kind === kind);
    if (!r) throw new Error(`unknown kind ${String(kind)}`);
    return r;
  }

  private stamp(o: Obj, r: Resource): Obj {
    const uid = o.metadata.uid ?? `6b1d2c3e-0000-4000-8000-${String(this.rv).padStart(12, '0')}`;
    return {
      ...o, kind: r.kind, apiVersion: r.apiVersion,
      metadata: { creationTimestamp: '2026-12-01T08:00:00Z', uid, ...o.metadata, resourceVersion: String(++this.rv) },
    };
  }

  private send(r: Resource, type: string, o: Obj): void {
    for (const w of r.watchers) w.write(`${JSON.stringify({ type, object: o })}\n`);
  }

  /** Creates or replaces an object (ADDED / MODIFIED to watchers). */
  put(o: Obj, notify = true): void {
    const r = this.resourceOf(o);
    const existed = r.objects.has(keyOf(o));
    const stored = this.stamp(o, r);
    r.objects.set(keyOf(o), stored);
    if (notify) this.send(r, existed ? 'MODIFIED' : 'ADDED', stored);
  }

  /** Deletes an object (DELETED to watchers, carrying its last state). */
  remove(kind: string, namespace: string | undefined, name: string, notify = true): void {
    const r = Object.values(this.resources).find((x) => x.kind === kind) as Resource;
    const o = r.objects.get(`${namespace ?? ''}/${name}`);
    if (!o) return;
    r.objects.delete(keyOf(o));
    if (notify) this.send(r, 'DELETED', { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.rv) } });
  }

  /** Ends every open watch (the informers reconnect). */
  dropWatches(): void {
    for (const r of Object.values(this.resources)) {
      for (const w of r.watchers) w.end();
      r.watchers.clear();
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push(`${req.method ?? ''} ${url.pathname}${url.searchParams.get('watch') === 'true' ? ' watch' : ''}`);
    const r = this.resources[url.pathname];
    if (!r || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `the server could not find the requested resource`, reason: 'NotFound', code: 404 }));
      return;
    }
    if (url.searchParams.get('watch') === 'true') {
      if (this.goneWatches > 0) {
        this.goneWatches--;
        res.writeHead(410, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'too old resource version: 1 (1200)', reason: 'Expired', code: 410 }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      r.watchers.add(res);
      req.on('close', () => r.watchers.delete(res));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      kind: r.listKind, apiVersion: r.apiVersion, metadata: { resourceVersion: String(this.rv) }, items: [...r.objects.values()].map((o) => ({ ...o, kind: undefined, apiVersion: undefined })),
    }));
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
  }

  kubeConfig(): KubeConfig {
    return serviceAccountConfig((this.server?.address() as AddressInfo).port, 'weave-npc');
  }

  async stop(): Promise<void> {
    this.dropWatches();
    const closed = new Promise<void>((resolve) => this.server?.close(() => resolve()));
    // Keep-alive connections of the client would hold close() open.
    this.server?.closeAllConnections();
    await closed;
  }
}
