// Egress through a Service's cluster IP (controlplane/policy/services.ts): the
// cluster IP port opens exactly when the pod's egress rules allow every ready
// endpoint on the port kube-proxy translates to (weaveworks/weave#3764).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress } from '../../controlplane/ipam/addr.js';
import { compileWorkload, decide, IP_PROTOCOL } from '../../controlplane/policy/compile.js';
import { serviceFrontends } from '../../controlplane/policy/services.js';
import type { EndpointSlice, Service, ServicePort } from '../../controlplane/policy/types.js';
import { parseEndpointSlice, parseService, PolicyError } from '../../controlplane/policy/validate.js';
import { namespace, pod, policy, state } from './policy-support.js';

const DNS_IP = '10.96.0.10';
const WEB_IP = '10.96.0.20';

function service(ns: string, name: string, clusterIP: string, ports: ServicePort[]): Service {
  return { metadata: { name, namespace: ns }, spec: { clusterIP, ports } };
}

function slice(ns: string, svc: string, endpoints: { ip: string; ready?: boolean }[], ports: EndpointSlice['ports'], addressType: EndpointSlice['addressType'] = 'IPv4'): EndpointSlice {
  return {
    metadata: { name: `${svc}-x1`, namespace: ns, labels: { 'kubernetes.io/service-name': svc } }, addressType,
    endpoints: endpoints.map((e) => ({ addresses: [e.ip], ...(e.ready === undefined ? {} : { conditions: { ready: e.ready } }) })), ports,
  };
}

const PODS = [
  pod('app', 'client', '10.32.0.1', { app: 'client' }),
  pod('kube-system', 'dns-1', '10.32.0.10', { 'k8s-app': 'kube-dns' }),
  pod('kube-system', 'dns-2', '10.32.0.11', { 'k8s-app': 'kube-dns' }),
  pod('kube-system', 'other', '10.32.0.12', { app: 'other' }),
  pod('app', 'web', '10.32.0.20', { app: 'web' }),
];
const NAMESPACES = [namespace('app'), namespace('kube-system')];
const DNS_EGRESS = policy('app', 'dns-only', {
  podSelector: { matchLabels: { app: 'client' } }, policyTypes: ['Egress'],
  egress: [
    { to: [{ namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
    { to: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 8080 }] },
  ],
});
const DNS_SERVICE = service('kube-system', 'kube-dns', DNS_IP, [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 53 }, { name: 'metrics', protocol: 'TCP', port: 9153 }]);
const DNS_PORTS: EndpointSlice['ports'] = [{ name: 'dns', protocol: 'UDP', port: 53 }, { name: 'dns-tcp', protocol: 'TCP', port: 53 }, { name: 'metrics', protocol: 'TCP', port: 9153 }];

function clientEgress(services: Service[], slices: EndpointSlice[]): (ip: string, protocol: 'TCP' | 'UDP', port: number) => boolean {
  const s = { ...state(NAMESPACES, PODS, [DNS_EGRESS]), services: serviceFrontends(services, slices) };
  const client = s.workloads.find((w) => w.name === 'client');
  assert.ok(client);
  const rules = compileWorkload(s, client).egress;
  return (ip, protocol, port) => decide(rules, parseAddress(ip), IP_PROTOCOL[protocol], port);
}

test('a Service whose endpoints the egress policy allows is reachable on its cluster IP; only on the allowed ports', () => {
  const allowed = clientEgress([DNS_SERVICE], [slice('kube-system', 'kube-dns', [{ ip: '10.32.0.10' }, { ip: '10.32.0.11' }], DNS_PORTS)]);
  assert.ok(allowed(DNS_IP, 'UDP', 53), 'DNS over UDP to the kube-dns Service');
  assert.ok(allowed(DNS_IP, 'TCP', 53), 'and over TCP');
  assert.ok(!allowed(DNS_IP, 'TCP', 9153), 'not its metrics port: the policy allows only 53');
  assert.ok(allowed('10.32.0.10', 'UDP', 53), 'the pods themselves stay allowed');
});

test('service port and target port differ: the verdict is on the translated port', () => {
  const web = service('app', 'web', WEB_IP, [{ name: 'http', protocol: 'TCP', port: 80 }]);
  const ok = clientEgress([web], [slice('app', 'web', [{ ip: '10.32.0.20' }], [{ name: 'http', protocol: 'TCP', port: 8080 }])]);
  assert.ok(ok(WEB_IP, 'TCP', 80), 'cluster IP port 80 leads to 8080, which the policy allows');
  assert.ok(!ok('10.32.0.20', 'TCP', 80), 'the pod itself on 80 stays blocked');
  const wrong = clientEgress([web], [slice('app', 'web', [{ ip: '10.32.0.20' }], [{ name: 'http', protocol: 'TCP', port: 9090 }])]);
  assert.ok(!wrong(WEB_IP, 'TCP', 80), 'a target port the policy does not allow keeps the Service closed');
});

test('partly allowed, not ready, no endpoints, headless, IPv6: closed or ignored, never more than the policy allows', () => {
  const mixed = clientEgress([DNS_SERVICE], [slice('kube-system', 'kube-dns', [{ ip: '10.32.0.10' }, { ip: '10.32.0.12' }], DNS_PORTS)]);
  assert.ok(!mixed(DNS_IP, 'UDP', 53), 'one endpoint (other) is not allowed: kube-proxy could pick it');
  const notReady = clientEgress([DNS_SERVICE], [slice('kube-system', 'kube-dns', [{ ip: '10.32.0.10' }, { ip: '10.32.0.12', ready: false }], DNS_PORTS)]);
  assert.ok(notReady(DNS_IP, 'UDP', 53), 'an endpoint that is not ready gets no traffic, so it does not count');
  assert.ok(!clientEgress([DNS_SERVICE], [])(DNS_IP, 'UDP', 53), 'no endpoints: closed');
  assert.ok(!clientEgress([DNS_SERVICE], [slice('kube-system', 'other-svc', [{ ip: '10.32.0.10' }], DNS_PORTS)])(DNS_IP, 'UDP', 53), "another Service's slice does not count");
  assert.deepEqual(serviceFrontends([service('kube-system', 'kube-dns', 'None', [{ name: 'dns', protocol: 'UDP', port: 53 }])], []), [], 'headless: no cluster IP to open');
  const v6 = serviceFrontends([DNS_SERVICE], [slice('kube-system', 'kube-dns', [{ ip: 'fd00::10' }], DNS_PORTS, 'IPv6')]);
  assert.ok(v6.every((f) => f.backends.length === 0), 'IPv6 slices are not IPv4 endpoints');
});

test('Service and EndpointSlice validation: bad ports and address types are named', () => {
  assert.throws(() => parseService({ metadata: { name: 's' }, spec: { ports: [{ port: 70000 }] } }), (e: unknown) => e instanceof PolicyError && /Service default\/s\.spec\.ports\[0\]\.port: must be 1-65535/.test(e.message));
  assert.throws(() => parseService({ metadata: { name: 's' }, spec: { ports: [{ port: 53, protocol: 'ICMP' }] } }), /protocol/);
  assert.throws(() => parseEndpointSlice({ metadata: { name: 'e' }, addressType: 'IPX', endpoints: [] }), /addressType/);
  assert.throws(() => parseEndpointSlice({ metadata: { name: 'e' }, addressType: 'IPv4', endpoints: [{ addresses: [5] }] }), /addresses\[0\]/);
  const ok = parseEndpointSlice({ metadata: { name: 'e', namespace: 'n' }, addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.1'], conditions: { ready: false } }], ports: [{ port: 53, protocol: 'UDP' }] });
  assert.deepEqual(ok.endpoints, [{ addresses: ['10.0.0.1'], conditions: { ready: false } }]);
});
