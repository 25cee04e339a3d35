// Testbeds whose routers run the eBPF fast datapath. Each host pins its maps
// in a bpffs of its own under /tmp/<prefix>-bpffs/<host>, mounted in the
// test's mount namespace so the maps outlive a router (`ip netns exec`
// remounts /sys) and the test can read them. Kept apart from the index: it
// loads libbpf, which the other netns tests do not need.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePinDir } from '../../../dataplane/bpf/bpffs.js';
import { DatapathMaps, type Counters } from '../../../dataplane/bpf/maps.js';
import { execCommand } from './exec.js';
import { createTestbed, type Host, type Testbed } from './testbed.js';
import { stopRouters, type WeaveOptions } from './weave.js';

function pinRootOf(bed: Testbed): string {
  return join('/tmp', `${bed.prefix}-bpffs`);
}

/** Where `h`'s router pins its maps (pass it as WEAVE_BPF_PIN_DIR). */
export function bpfPinDir(bed: Testbed, h: Host): string {
  return join(pinRootOf(bed), h.label);
}

/** Reads a router's pinned maps while it runs (or after it stopped). */
export function withPinnedMaps<T>(pinDir: string, read: (maps: DatapathMaps) => T): T {
  const maps = DatapathMaps.openPinned(pinDir);
  try {
    return read(maps);
  } finally {
    maps.close();
  }
}

/**
 * Frames from the tunnel the kernel delivered to a local port: through the
 * VXLAN device (fwd_from_tunnel) or decapsulated at the underlay interface
 * (fwd_from_underlay, the receive fast path).
 */
export function deliveredFromTunnel(c: Counters): number {
  return c.fwd_from_tunnel + c.fwd_from_underlay;
}

export function pinnedCounters(pinDir: string): Counters {
  return withPinnedMaps(pinDir, (m) => m.readCounters());
}

/**
 * A bridge-underlay testbed with a pin dir per host; however `body` ends, the
 * routers are stopped (each with its own environment from `envFor`), the
 * namespaces removed and the pin dirs unmounted.
 */
export async function withBpfWeaveBed(hosts: number, envFor: (bed: Testbed, h: Host) => WeaveOptions, body: (bed: Testbed) => Promise<void>): Promise<void> {
  const bed = await createTestbed({ hosts, underlay: 'bridge' });
  try {
    for (const h of bed.hosts) ensurePinDir(bpfPinDir(bed, h));
    await body(bed);
  } finally {
    for (const h of bed.hosts) await stopRouters([h], 'stop', envFor(bed, h));
    await bed.teardown();
    for (const h of bed.hosts) await execCommand('umount', [bpfPinDir(bed, h)]);
    rmSync(pinRootOf(bed), { recursive: true, force: true });
  }
}
