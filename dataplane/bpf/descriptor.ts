// The eBPF fast datapath as a datapath kind for the composition root: tc
// programs, available when the compiled programs and libbpf are present.
// Loading them needs root (CAP_BPF and CAP_NET_ADMIN); a failure then is
// reported by the composition root as "cannot start" and the router runs on
// the sleeve alone.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DatapathDescriptor } from '../../controlplane/router/datapath.js';
import { applyIPsecFirewall } from '../host/firewall.js';

/** Where the build puts the BPF objects (dist/bpf, beside dist/dataplane). */
export function bpfObjectDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bpf');
}

const PROGRAM_OBJECTS = ['from-container.bpf.o', 'from-tunnel.bpf.o'];

// libbpf is bound when the datapath module loads: without libbpf.so.1 the import fails.
const datapathModule = (): Promise<typeof import('./datapath/index.js')> => import('./datapath/index.js');

export const bpfDatapath: DatapathDescriptor = {
  kind: 'bpf',
  overlay: 'fastdp',
  interfaceLabel: 'vxlan-6784 (via eBPF tc programs)',
  probe: async () => {
    const unavailable = (why: string): { available: false; reason: string } => ({ available: false, reason: `eBPF fastdp: ${why}` });
    const objectDir = bpfObjectDir();
    for (const o of PROGRAM_OBJECTS) {
      if (!existsSync(join(objectDir, o))) return unavailable(`BPF program ${join(objectDir, o)} is missing (build it with \`make bpf\`)`);
    }
    try {
      await datapathModule();
    } catch (err) {
      return unavailable(`libbpf is not usable (${(err as Error).message}); install libbpf1`);
    }
    return { available: true };
  },
  open: async (opts) => (await datapathModule()).BpfDatapath.open({
    bridge: opts.bridge,
    mtu: opts.mtu,
    port: opts.port,
    objectDir: bpfObjectDir(),
    log: opts.log,
    ...(opts.ipsec ? { ipsec: { ourName: opts.ourName, applyFirewall: applyIPsecFirewall } } : {}),
  }),
  teardown: async (opts) => (await datapathModule()).teardownBpfFastdp(opts),
};
