// The Kubernetes add-on's entry point (user-surface spec §7.5), run by the
// DaemonSet: `weave-kube init` (init container) installs the CNI plugin on the
// node; `weave-kube launch` finds the peers through the Kubernetes API, lets
// bridged traffic pass iptables (bridge-nf-call-iptables), starts the router, waits until it is ready, exposes the host on the weave network
// (`weave expose`), records itself in the peer list and reclaims the IPAM
// space of deleted nodes, then stays with the router until it exits.
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { WEAVE_VERSION } from '../controlplane/api/version.js';
import { callRouter, RouterUnreachableError } from '../controlplane/cli/api-client.js';
import { WEAVER_NODE_FLAGS, weaverEnvironment } from '../controlplane/cli/daemon.js';
import { installCni } from '../controlplane/cni/install.js';
import { BRIDGE_NF_CALL_IPTABLES, setSysctl } from '../dataplane/host/sysctls.js';
import { KubeApi } from './kube-api.js';
import { addSelfToPeerList, discoverPeers, reclaimRemovedPeers } from './kube-peers.js';
import { planKubeLaunch } from './launch-plan.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The router's entry point, as `weave launch` runs it (controlplane/cli/daemon.ts WEAVER_MAIN). */
const WEAVER = `${ROOT}dist/weaver/start.cjs`;
const WEAVE = `${ROOT}bin/weave`;
/** How often readiness is polled: the router has no readiness event to wait on from outside. */
const READY_POLL_MS = 1000;

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} weave-kube: ${line}\n`);
}

function init(env: NodeJS.ProcessEnv): number {
  const report = installCni({
    binDir: env.CNI_BIN_DIR || '/host/opt/cni/bin',
    confDir: env.CNI_CONF_DIR || '/host/etc/cni/net.d',
    version: WEAVE_VERSION,
    sourceRoot: ROOT,
    nodeBinary: process.execPath,
    // The node has no node.js: the plugin brings its own.
    copyNode: true,
    hairpinMode: env.HAIRPIN_MODE !== 'false',
  });
  for (const p of report.written) log(`installed ${p}`);
  for (const p of report.removed) log(`removed ${p}`);
  if (report.keptConflist) log(`kept existing ${report.keptConflist}`);
  return 0;
}

async function waitReady(addr: string, router: { exited: boolean }): Promise<void> {
  for (;;) {
    if (router.exited) throw new Error('the router exited before it became ready');
    try {
      if ((await callRouter(addr, 'GET', '/status')).code === 200) return;
    } catch (err) {
      if (!(err instanceof RouterUnreachableError)) throw err;
    }
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
}

async function launch(env: NodeJS.ProcessEnv): Promise<number> {
  const nodeName = env.HOSTNAME || hostname();
  const api = env.KUBE_PEERS ? undefined : KubeApi.fromEnvironment(env);
  const peers = await discoverPeers(env.KUBE_PEERS, api);
  log(`peers: ${peers.join(' ') || '(none)'}`);
  const plan = planKubeLaunch(env, peers, nodeName);
  try {
    if (setSysctl(BRIDGE_NF_CALL_IPTABLES)) log('set net.bridge.bridge-nf-call-iptables=1');
  } catch (err) {
    // Not fatal: pods still talk; Services between pods on one bridge and the policy gate need it.
    log(`${(err as Error).message}; load br_netfilter on the node (modprobe br_netfilter)`);
  }
  const child = spawn(process.execPath, [...WEAVER_NODE_FLAGS, WEAVER, ...plan.args], { env: weaverEnvironment({ ...process.env, ...plan.env }, plan.args), stdio: 'inherit' });
  const state = { exited: false };
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => {
    state.exited = true;
    resolve(code ?? (signal ? 128 : 1));
  }));
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => child.kill(sig));

  await waitReady(plan.httpAddr, state);
  const expose = spawn(process.execPath, [WEAVE, 'expose'], { env: { ...process.env, WEAVE_HTTP_ADDR: plan.httpAddr }, stdio: 'inherit' });
  await new Promise((r) => expose.on('exit', r));
  if (api) {
    const name = await callRouter(plan.httpAddr, 'GET', `/report?${new URLSearchParams({ format: '{{.Router.Name}}' }).toString()}`);
    const me = { PeerName: name.body.trim(), NodeName: nodeName };
    try {
      await addSelfToPeerList(api, me);
      const outcome = await reclaimRemovedPeers(api, async (peer) => (await callRouter(plan.httpAddr, 'DELETE', `/peer/${encodeURIComponent(peer)}`)).body, me, log);
      log(`reclaimed: ${outcome.reclaimed.join(' ') || 'none'}; left to other routers: ${outcome.leftToOthers.join(' ') || 'none'}`);
    } catch (err) {
      // The router keeps running: reclaim is retried on the next start of any router.
      log(`reclaim of deleted nodes' space failed: ${(err as Error).message}`);
    }
  }
  return exited;
}

const [mode = 'launch'] = process.argv.slice(2);
try {
  if (mode === 'init') process.exitCode = init(process.env);
  else if (mode === 'launch') process.exitCode = await launch(process.env);
  else {
    process.stderr.write('usage: weave-kube init | launch\n');
    process.exitCode = 1;
  }
} catch (err) {
  log(`${mode}: ${(err as Error).message}`);
  process.exitCode = 1;
}
