// The eBPF fast datapath probe (ARCHITECTURE "Datapath selection"): on a
// kernel without Open vSwitch, fastdp runs as tc programs when the compiled
// programs and libbpf are present. Loading them needs root (CAP_BPF and
// CAP_NET_ADMIN); a failure then is reported by startDataPlane as "cannot
// start" and the router runs on the sleeve alone.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { PeerName } from '../controlplane/mesh/types.js';
import { applyIPsecFirewall } from '../dataplane/host/firewall.js';
import type { FastdpProbe } from './datapath-wiring.js';

export interface BpfProbeOptions {
  bridge: string;
  /** The fastdp overlay MTU (heartbeat size). */
  mtu: number;
  /** Mesh TCP port; VXLAN uses port + 1. */
  port: number;
  logger: Logger;
  /** Our peer name, for the IPsec keys (spec §7.3). */
  ourName?: PeerName;
  /** Encrypted connections are possible (a password is set): enable kernel IPsec where the kernel has ESP (spec §7). */
  ipsec?: boolean;
}

/** Where the build puts the BPF objects (dist/bpf, beside dist/weaver). */
export function bpfObjectDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'bpf');
}

/**
 * `otherReason`: why the preferred kernel datapath (OVS) is not there, kept in
 * the reason shown when the eBPF one is not available either.
 */
export async function probeBpfFastdp(opts: BpfProbeOptions, otherReason?: string): Promise<FastdpProbe> {
  const unavailable = (why: string): FastdpProbe => ({ unavailableReason: otherReason ? `${otherReason}; eBPF fastdp: ${why}` : `eBPF fastdp: ${why}` });
  const objectDir = bpfObjectDir();
  for (const o of ['from-container.bpf.o', 'from-tunnel.bpf.o']) {
    if (!existsSync(join(objectDir, o))) return unavailable(`BPF program ${join(objectDir, o)} is missing (build it with \`make bpf\`)`);
  }
  let mod: typeof import('../dataplane/bpf/datapath/index.js');
  try {
    // libbpf is bound when the module loads: without libbpf.so.1 the import fails.
    mod = await import('../dataplane/bpf/datapath/index.js');
  } catch (err) {
    return unavailable(`libbpf is not usable (${(err as Error).message}); install libbpf1`);
  }
  return {
    create: () => mod.BpfDatapath.open({
      bridge: opts.bridge,
      mtu: opts.mtu,
      port: opts.port,
      objectDir,
      log: (m) => opts.logger.warn(m),
      ...(opts.ipsec && opts.ourName !== undefined ? { ipsec: { ourName: opts.ourName, applyFirewall: applyIPsecFirewall } } : {}),
    }),
  };
}
