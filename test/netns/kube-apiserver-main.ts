// Runs the stand-in Kubernetes API server (test/unit/k8s-api-server.ts) as its
// own process, so a simulated host's namespace can hold it:
//   node kube-apiserver-main.js <listen-address> <nodes.json> [<annotations.json>]
// prints "listening <port>" once it accepts connections.
import { readFileSync } from 'node:fs';
import { FakeKubeApi, type FakeNode } from '../unit/k8s-api-server.js';

const [host = '127.0.0.1', nodesFile, annotationsFile] = process.argv.slice(2);
const api = new FakeKubeApi();
api.nodes = JSON.parse(readFileSync(nodesFile ?? '', 'utf8')) as FakeNode[];
if (annotationsFile) {
  api.configMap = {
    annotations: JSON.parse(readFileSync(annotationsFile, 'utf8')) as Record<string, string>,
    resourceVersion: 1,
    uid: '7d6b2f7a-1111-4b8e-9c55-3a1f2e4d5c6b',
    creationTimestamp: '2026-12-01T08:00:00Z',
  };
}
await api.start(host);
process.stdout.write(`listening ${api.port}\n`);
