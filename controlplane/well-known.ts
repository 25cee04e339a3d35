// Weave's well-known ports and names (wire spec §0, §10, §11), one constant
// each: the CLI, the router, the data plane and the Kubernetes launcher all
// take them from here.

/** TCP control connections and the sleeve's UDP (`--port`). */
export const DEFAULT_MESH_PORT = 6783;

/** The fast datapath's VXLAN UDP port is always the mesh port + 1 (spec §0, §6.1). */
export function fastdpPortFor(meshPort: number): number {
  return meshPort + 1;
}

/** UDP 6784: VXLAN of the fast datapath on the default mesh port. */
export const DEFAULT_FASTDP_PORT = fastdpPortFor(DEFAULT_MESH_PORT);

/** The router's local HTTP API (spec §10). */
export const DEFAULT_HTTP_ADDR = '127.0.0.1:6784';

/** The Linux bridge (or OVS datapath's internal port) that joins local containers to the overlay. */
export const DEFAULT_BRIDGE = 'weave';

/**
 * Overlay heartbeats, the same for the sleeve (spec §5.5) and the fast
 * datapath (spec §6.4): fast until the remote acknowledges, slow afterwards,
 * and the connection is unhealthy after the timeout without one.
 */
export const OVERLAY_HEARTBEAT_FAST_MS = 500;
export const OVERLAY_HEARTBEAT_SLOW_MS = 10_000;
export const OVERLAY_HEARTBEAT_TIMEOUT_MS = 60_000;
