// A small stand-in for the Kubernetes API server, answering the calls the
// launcher makes with the JSON shapes the real one sends (core/v1 NodeList,
// ConfigMap, and Status objects for 404 NotFound / 409 AlreadyExists /
// 409 Conflict, as in the Kubernetes API reference), with the real
// optimistic-concurrency rule: a PUT carrying a stale metadata.resourceVersion
// is refused. @kubernetes/client-node talks to it over HTTP.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export interface FakeNode {
  name: string;
  addresses: { type: string; address: string }[];
}

interface StoredConfigMap {
  annotations: Record<string, string>;
  resourceVersion: number;
  uid: string;
  creationTimestamp: string;
}

const CM_PATH = /^\/api\/v1\/namespaces\/kube-system\/configmaps(?:\/([^/?]+))?(?:\?.*)?$/;

function status(code: number, reason: string, message: string, name?: string): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(name ? { details: { name, kind: 'configmaps' } } : {}),
    code,
  };
}

export class FakeKubeApi {
  nodes: FakeNode[] = [];
  configMap: StoredConfigMap | undefined;
  /** Every request, as "METHOD path". */
  readonly requests: string[] = [];
  /** When set, GET /api/v1/nodes answers 500 (an API server in trouble). */
  failNodeList = false;
  /** Holds PUTs until this many are waiting, then answers them in arrival order: forces writers to race. */
  holdPuts = 0;
  /** 409 Conflict answers given (stale resourceVersion). */
  conflicts = 0;
  private heldPuts: (() => void)[] = [];
  private rv = 100;
  private server: Server | undefined;

  private nodeJson(n: FakeNode, i: number): Record<string, unknown> {
    return {
      metadata: {
        name: n.name,
        uid: `0f0e0d0c-0000-4000-8000-${String(i).padStart(12, '0')}`,
        resourceVersion: String(50 + i),
        creationTimestamp: '2026-11-30T10:00:00Z',
        labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux' },
      },
      spec: { podCIDR: `10.244.${i}.0/24` },
      status: {
        addresses: n.addresses,
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: '2026-12-03T09:00:00Z', lastTransitionTime: '2026-11-30T10:01:00Z' }],
        nodeInfo: { kubeletVersion: 'v1.31.2', osImage: 'Debian GNU/Linux 12 (bookworm)', kernelVersion: '6.1.0-27-amd64', containerRuntimeVersion: 'containerd://1.7.22', architecture: 'amd64', operatingSystem: 'linux', machineID: '', systemUUID: '', bootID: '', kubeProxyVersion: '' },
      },
    };
  }

  private cmJson(): Record<string, unknown> {
    const cm = this.configMap!;
    return {
      kind: 'ConfigMap',
      apiVersion: 'v1',
      metadata: {
        name: 'weave-net',
        namespace: 'kube-system',
        uid: cm.uid,
        resourceVersion: String(cm.resourceVersion),
        creationTimestamp: cm.creationTimestamp,
        ...(Object.keys(cm.annotations).length > 0 ? { annotations: cm.annotations } : {}),
      },
    };
  }

  private handle(req: IncomingMessage, body: string, res: ServerResponse): void {
    const send = (code: number, obj: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    const url = req.url ?? '';
    this.requests.push(`${req.method ?? ''} ${url.split('?')[0] ?? ''}`);
    if (req.method === 'GET' && url.split('?')[0] === '/api/v1/nodes') {
      if (this.failNodeList) return send(500, status(500, 'InternalError', 'Internal error occurred: etcdserver: request timed out'));
      return send(200, { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items: this.nodes.map((n, i) => this.nodeJson(n, i)) });
    }
    const m = CM_PATH.exec(url);
    if (!m) return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const name = m[1];
    if (req.method === 'GET' && name === 'weave-net') {
      if (!this.configMap) return send(404, status(404, 'NotFound', 'configmaps "weave-net" not found', 'weave-net'));
      return send(200, this.cmJson());
    }
    if (req.method === 'POST' && name === undefined) {
      if (this.configMap) return send(409, status(409, 'AlreadyExists', 'configmaps "weave-net" already exists', 'weave-net'));
      this.configMap = { annotations: {}, resourceVersion: ++this.rv, uid: '7d6b2f7a-1111-4b8e-9c55-3a1f2e4d5c6b', creationTimestamp: '2026-12-03T09:30:00Z' };
      return send(201, this.cmJson());
    }
    if (req.method === 'PUT' && name === 'weave-net') {
      if (!this.configMap) return send(404, status(404, 'NotFound', 'configmaps "weave-net" not found', 'weave-net'));
      const obj = JSON.parse(body) as { metadata?: { resourceVersion?: string; annotations?: Record<string, string> } };
      if (obj.metadata?.resourceVersion !== String(this.configMap.resourceVersion)) {
        this.conflicts++;
        return send(409, status(409, 'Conflict', 'Operation cannot be fulfilled on configmaps "weave-net": the object has been modified; please apply your changes to the latest version and try again', 'weave-net'));
      }
      this.configMap = { ...this.configMap, annotations: obj.metadata.annotations ?? {}, resourceVersion: ++this.rv };
      return send(200, this.cmJson());
    }
    return send(405, status(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
  }

  /** Listens on `host` (default loopback) at a free port. */
  async start(host = '127.0.0.1'): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const run = (): void => this.handle(req, Buffer.concat(chunks).toString('utf8'), res);
        if (req.method !== 'PUT' || this.holdPuts === 0) return run();
        this.heldPuts.push(run);
        if (this.heldPuts.length < this.holdPuts) return;
        this.holdPuts = 0;
        for (const r of this.heldPuts.splice(0)) r();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, host, resolve));
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  /** A client configuration pointing at this server with a bearer token, as a service account has. */
  kubeConfig(): KubeConfig {
    return serviceAccountConfig(this.port, 'weave-net');
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A client configuration for a test API server on 127.0.0.1:`port`, with `user`'s service-account bearer token. */
export function serviceAccountConfig(port: number, user: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: user, token: 'service-account-token' }],
    contexts: [{ name: 'test', cluster: 'test', user }],
    currentContext: 'test',
  });
  return kc;
}
