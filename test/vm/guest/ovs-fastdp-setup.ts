// Shared by the guest tests that drive OvsFastDatapath directly: simulated
// hosts as namespaces with a `weave` bridge and a container on it, and pairs
// of forwarders whose control messages are wired to each other in-process, as
// two routers' control connections would carry them (spec §6).
import { execFileSync } from 'node:child_process';
import { mustRun, pollUntil, runCommand } from '../../support/exec.js';
import type { OvsFastDatapath } from '../../../dataplane/ovs/fastdp/index.js';
import type { ForwarderEvents, ForwarderParams, OverlayForwarder } from '../../../controlplane/router/datapath.js';

export function loadOpenvswitch(): void {
  try {
    execFileSync('modprobe', ['openvswitch'], { stdio: 'ignore' });
  } catch {
    // built in or already loaded: OdpConnection.open tells
  }
}

/** Runs `ip -batch` with `lines`, inside namespace `ns` when given. */
export async function ipBatch(ns: string | undefined, lines: string[]): Promise<void> {
  await mustRun('ip', [...(ns ? ['-n', ns] : []), '-batch', '-'], { input: lines.join('\n') + '\n' });
}

/** Adds the namespaces with IPv6 off: its router solicitations and MLD reports would be misses of their own. */
export async function addNamespaces(namespaces: readonly string[]): Promise<void> {
  await ipBatch(undefined, namespaces.map((n) => `netns add ${n}`));
  await Promise.all(namespaces.map((n) => mustRun('ip', ['netns', 'exec', n, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'])));
}

/** Deletes the namespaces, ignoring any that are already gone. */
export async function deleteNamespaces(namespaces: readonly string[]): Promise<void> {
  await runCommand('ip', ['-force', '-batch', '-'], { input: namespaces.map((n) => `netns del ${n}\n`).join('') });
}

/** Brings up lo and a `weave` bridge of `mtu` in host namespace `ns`. */
export async function addWeaveBridge(ns: string, mtu: number): Promise<void> {
  await ipBatch(ns, ['link set lo up', 'link add weave type bridge', `link set weave mtu ${mtu} up`]);
}

export interface ContainerSpec {
  /** The container's namespace. */
  cns: string;
  mac: string;
  ip: string;
}

/** Puts container namespace `c.cns` on host `ns`'s weave bridge as eth0 with `c.mac` and `c.ip`/24. */
export async function addBridgedContainer(ns: string, c: ContainerSpec, mtu: number): Promise<void> {
  await ipBatch(ns, [`link add vc type veth peer name eth0 netns ${c.cns}`, `link set vc mtu ${mtu} master weave up`]);
  await ipBatch(c.cns, ['link set lo up', `link set eth0 address ${c.mac} mtu ${mtu}`, `addr add ${c.ip}/24 dev eth0`, 'link set eth0 up']);
}

export interface ForwarderEnd {
  datapath: OvsFastDatapath;
  params: ForwarderParams;
}

export interface PairOptions {
  /** Where the forwarders' health changes and failures are written. */
  log: (line: string) => void;
  /** Sees every control message end `i` sends, before the other end handles it. */
  onSend?: (i: 0 | 1, subTag: number) => void;
}

/** Two forwarders whose control messages go straight to each other; resolves once both are established. */
export async function pairForwarders(what: string, a: ForwarderEnd, b: ForwarderEnd, options: PairOptions): Promise<[OverlayForwarder, OverlayForwarder]> {
  const pair: { fa?: OverlayForwarder; fb?: OverlayForwarder } = {};
  const established = [false, false];
  const events = (i: 0 | 1, remote: () => OverlayForwarder | undefined): ForwarderEvents => ({
    sendControlMessage: (subTag, payload) => {
      options.onSend?.(i, subTag);
      remote()?.handleControlMessage(subTag, payload);
    },
    established: () => {
      established[i] = true;
    },
    healthChanged: (healthy, reason) => options.log(`forwarder ${i} healthy=${healthy} ${reason ?? ''}`),
    failed: (e) => options.log(`forwarder ${i} failed: ${e.message}`),
  });
  const fa = a.datapath.createForwarder(a.params, events(0, () => pair.fb));
  pair.fa = fa;
  const fb = b.datapath.createForwarder(b.params, events(1, () => pair.fa));
  pair.fb = fb;
  await pollUntil(what, 30_000, async () => (established[0] && established[1] ? true : undefined));
  return [fa, fb];
}
