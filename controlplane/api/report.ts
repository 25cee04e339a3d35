// The `weave report` object (user-surface spec §3, wire spec §10.3): Go field
// names and order, optional services omitted when disabled.
import { once } from '../once.js';
import { connectionInfo, type RouterStatus } from './status-model.js';
import { goMap } from './go-template/fmt.js';

export interface VersionCheckReport {
  Enabled: boolean;
  Success: boolean;
  NewVersion: string;
  NextCheckAt: string;
}

/** The version check never runs here, so it reports Go's zero values (spec §3). */
export const VERSION_CHECK_DISABLED: VersionCheckReport = {
  Enabled: false,
  Success: false,
  NewVersion: '',
  NextCheckAt: '0001-01-01T00:00:00Z',
};

/**
 * Extra services (IPAM, DNS, Proxy, Plugin) contribute their already-shaped
 * sections. buildReport keeps a section given as a getter a getter: a
 * template that does not read it does not build it.
 */
export interface ReportServices {
  IPAM?: Record<string, unknown>;
  DNS?: Record<string, unknown>;
  Proxy?: Record<string, unknown>;
  Plugin?: Record<string, unknown>;
}

/**
 * The report's Router section. Peers, each peer's connections and the routes
 * are built when first read, so that a template asking for a few fields does
 * not build every peer's connection list (O(n²) in a full mesh) to read none
 * of it.
 */
export function routerReport(s: RouterStatus): Record<string, unknown> {
  const peers = once(() => s.peers.map((p) => {
    const connections = once(() => p.connections.map((c) => ({
      Name: c.name,
      NickName: c.nickName,
      Address: c.address,
      Outbound: c.outbound,
      Established: c.established,
    })));
    return { Name: p.name, NickName: p.nickName, UID: p.uid, ShortID: p.shortId, Version: p.version, get Connections() { return connections(); } };
  }));
  const unicastRoutes = once(() => s.unicastRoutes.map((r) => ({ Dest: r.dest, Via: r.via })));
  const broadcastRoutes = once(() => s.broadcastRoutes.map((r) => ({ Source: r.source, Via: r.via })));
  return {
    Protocol: 'weave',
    ProtocolMinVersion: s.protocolMinVersion,
    ProtocolMaxVersion: s.protocolMaxVersion,
    Encryption: s.encryption,
    PeerDiscovery: s.peerDiscovery,
    Name: s.name,
    NickName: s.nickName,
    Port: s.port,
    get Peers() { return peers(); },
    get UnicastRoutes() { return unicastRoutes(); },
    get BroadcastRoutes() { return broadcastRoutes(); },
    Connections: s.connections.map((c) => ({
      Address: c.address,
      Outbound: c.kind === 'target' ? c.inbound !== true : c.outbound,
      State: c.state,
      Info: connectionInfo(c, s.encryption),
      // Weave's map[string]interface{}: nil (JSON null) until the connection has an overlay, and read
      // by templates as a map, so `{{.Attrs.mtu}}` of a connection still retrying is no value, not an error.
      Attrs: goMap(
        c.kind === 'connection' && c.overlay
          ? { name: c.overlay.name, mtu: c.overlay.mtu, ...(c.overlay.encrypted ? { encrypted: true } : {}) }
          : null,
      ),
    })),
    TerminationCount: s.terminationCount,
    Targets: s.targets,
    OverlayDiagnostics: s.overlayDiagnostics,
    TrustedSubnets: s.trustedSubnets,
    Interface: s.interface,
    // Not in Weave's report: how much the kernel forwarded versus userspace.
    ...(s.datapath
      ? {
          Datapath: {
            Kind: s.datapath.kind,
            KernelForwarded: s.datapath.kernelForwarded,
            Userspace: s.datapath.userspace,
            Drops: { ...s.datapath.drops },
            ...(s.datapath.overlayMtu === undefined ? {} : { OverlayMTU: s.datapath.overlayMtu }),
          },
        }
      : {}),
  };
}

export function buildReport(
  s: RouterStatus,
  version: string,
  services: ReportServices = {},
  versionCheck: VersionCheckReport = VERSION_CHECK_DISABLED,
): Record<string, unknown> {
  const report: Record<string, unknown> = {
    Ready: s.ready,
    Version: version,
    VersionCheck: versionCheck,
    Router: routerReport(s),
  };
  // Copied as defined, not spread: spreading would read every section now.
  return Object.defineProperties(report, Object.getOwnPropertyDescriptors(services));
}
