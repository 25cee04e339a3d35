// The Kubernetes add-on's objects (user-surface spec §7.5; the shape of Weave's
// prog/weave-kube/weave-daemonset-k8s.yaml), written as typed objects so the
// compiler rejects a misspelt or misplaced field; k8s/weave-daemonset-k8s.yaml
// is this rendered (test/unit/k8s-manifest.test.ts checks both agree and
// validates every object against the Kubernetes OpenAPI schema).
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import type { IClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import type { IRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import type { IRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import type { IServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { IHostPathVolumeSource } from 'kubernetes-models/v1/HostPathVolumeSource';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import { WEAVE_VERSION } from '../controlplane/api/version.js';
import { NPC_METRICS_PORT } from '../controlplane/policy/controller.js';
import { PEER_CONFIGMAP } from './kube-api.js';

export type WeaveKubeObject = IServiceAccount | IClusterRole | IClusterRoleBinding | IRole | IRoleBinding | IDaemonSet;

const NAME = 'weave-net';
const NAMESPACE = PEER_CONFIGMAP.namespace;
const LABELS = { name: NAME };
/** Built from this repository's Dockerfile: `docker build -t weave-net-ts:<version> .` */
export const IMAGE = `weave-net-ts:${WEAVE_VERSION}`;

const serviceAccount: IServiceAccount = {
  apiVersion: 'v1',
  kind: 'ServiceAccount',
  metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS },
};

// Nodes for peer discovery and reclaim; pods/namespaces/networkpolicies as Weave granted (network policy), services/endpointslices for it too.
const clusterRole: IClusterRole = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRole',
  metadata: { name: NAME, labels: LABELS },
  rules: [
    { apiGroups: [''], resources: ['pods', 'namespaces', 'nodes'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['get', 'list', 'watch'] },
    // Services and their endpoints: egress allowed to pods is allowed through their cluster IPs too.
    { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch', 'update'] },
  ],
};

const clusterRoleBinding: IClusterRoleBinding = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRoleBinding',
  metadata: { name: NAME, labels: LABELS },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NAME },
  subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE }],
};

// The peer bookkeeping ConfigMap kube-system/weave-net: created by the first router, then read and updated.
const role: IRole = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'Role',
  metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS },
  rules: [
    { apiGroups: [''], resources: ['configmaps'], resourceNames: [PEER_CONFIGMAP.name], verbs: ['get', 'update'] },
    { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
  ],
};

const roleBinding: IRoleBinding = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'RoleBinding',
  metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: NAME },
  subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE }],
};

const hostPath = (name: string, path: string, type: NonNullable<IHostPathVolumeSource['type']>): IVolume => ({ name, hostPath: { path, type } });

const daemonSet: IDaemonSet = {
  apiVersion: 'apps/v1',
  kind: 'DaemonSet',
  metadata: { name: NAME, namespace: NAMESPACE, labels: LABELS },
  spec: {
    selector: { matchLabels: LABELS },
    updateStrategy: { type: 'RollingUpdate' },
    minReadySeconds: 5,
    template: {
      metadata: { labels: LABELS },
      spec: {
        serviceAccountName: NAME,
        hostNetwork: true,
        dnsPolicy: 'ClusterFirstWithHostNet',
        priorityClassName: 'system-node-critical',
        restartPolicy: 'Always',
        tolerations: [{ effect: 'NoSchedule', operator: 'Exists' }, { effect: 'NoExecute', operator: 'Exists' }],
        initContainers: [{
          name: 'weave-init',
          image: IMAGE,
          command: ['/weave/bin/weave-kube', 'init'],
          env: [
            { name: 'CNI_BIN_DIR', value: '/host/opt/cni/bin' },
            { name: 'CNI_CONF_DIR', value: '/host/etc/cni/net.d' },
            { name: 'HAIRPIN_MODE', value: 'true' },
          ],
          securityContext: { privileged: true },
          volumeMounts: [
            { name: 'cni-bin', mountPath: '/host/opt/cni/bin' },
            { name: 'cni-conf', mountPath: '/host/etc/cni/net.d' },
          ],
        }],
        containers: [{
          name: 'weave',
          image: IMAGE,
          command: ['/weave/bin/weave-kube', 'launch'],
          env: [
            { name: 'HOSTNAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.nodeName' } } },
            { name: 'IPALLOC_RANGE', value: '10.32.0.0/12' },
            { name: 'CONN_LIMIT', value: '200' },
            { name: 'WEAVE_METRICS_ADDR', value: '0.0.0.0:6782' },
            // EXPECT_NPC is left at Weave's default (on): forwarding into the bridge waits for weave-npc below.
            { name: 'WEAVE_PASSWORD', valueFrom: { secretKeyRef: { name: 'weave-passwd', key: 'weave-passwd', optional: true } } },
          ],
          readinessProbe: { httpGet: { host: '127.0.0.1', path: '/status', port: 6784 }, periodSeconds: 5 },
          resources: { requests: { cpu: '50m', memory: '100Mi' } },
          securityContext: { privileged: true },
          volumeMounts: [
            { name: 'weavedb', mountPath: '/weavedb' },
            // The runtime's pod namespaces (CNI_NETNS) must be visible to the router, which wires them.
            { name: 'netns', mountPath: '/var/run/netns', mountPropagation: 'HostToContainer' },
            { name: 'bpffs', mountPath: '/sys/fs/bpf' },
            { name: 'lib-modules', mountPath: '/lib/modules', readOnly: true },
            { name: 'xtables-lock', mountPath: '/run/xtables.lock' },
          ],
        }, {
          // The policy controller (controlplane/policy): loads each local pod's
          // table into the pod's namespace, found among the runtime's named
          // namespaces by address; opens WEAVE-NPC once its first sync is done.
          name: 'weave-npc',
          image: IMAGE,
          command: ['/weave/bin/weave-npc', '--kube', '--node-name=$(HOSTNAME)'],
          env: [{ name: 'HOSTNAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.nodeName' } } }],
          ports: [{ name: 'npc-metrics', containerPort: NPC_METRICS_PORT, protocol: 'TCP' }],
          resources: { requests: { cpu: '50m', memory: '100Mi' } },
          securityContext: { privileged: true },
          volumeMounts: [
            { name: 'netns', mountPath: '/var/run/netns', mountPropagation: 'HostToContainer' },
            { name: 'xtables-lock', mountPath: '/run/xtables.lock' },
          ],
        }],
        volumes: [
          hostPath('weavedb', '/var/lib/weave', 'DirectoryOrCreate'),
          hostPath('cni-bin', '/opt/cni/bin', 'DirectoryOrCreate'),
          hostPath('cni-conf', '/etc/cni/net.d', 'DirectoryOrCreate'),
          hostPath('netns', '/var/run/netns', 'DirectoryOrCreate'),
          hostPath('bpffs', '/sys/fs/bpf', 'DirectoryOrCreate'),
          hostPath('lib-modules', '/lib/modules', 'Directory'),
          hostPath('xtables-lock', '/run/xtables.lock', 'FileOrCreate'),
        ],
      },
    },
  },
};

/** Every object of the add-on, in the order `kubectl apply` should create them. */
export const WEAVE_KUBE_OBJECTS: readonly WeaveKubeObject[] = [serviceAccount, clusterRole, clusterRoleBinding, role, roleBinding, daemonSet];
