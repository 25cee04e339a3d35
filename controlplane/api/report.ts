// The `weave report` object (user-surface spec §3, wire spec §10.3): Go field
// names and order, optional services omitted when disabled.
import { connectionInfo, type RouterStatus } from './status-model.js';

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

/** Extra services (IPAM, DNS, Proxy, Plugin) contribute their already-shaped sections. */
export interface ReportServices {
  IPAM?: Record<string, unknown>;
  DNS?: Record<string, unknown>;
  Proxy?: Record<string, unknown>;
  Plugin?: Record<string, unknown>;
}

export function routerReport(s: RouterStatus): Record<string, unknown> {
  return {
    Protocol: 'weave',
    ProtocolMinVersion: s.protocolMinVersion,
    ProtocolMaxVersion: s.protocolMaxVersion,
    Encryption: s.encryption,
    PeerDiscovery: s.peerDiscovery,
    Name: s.name,
    NickName: s.nickName,
    Port: s.port,
    Peers: s.peers.map((p) => ({
      Name: p.name,
      NickName: p.nickName,
      UID: p.uid,
      ShortID: p.shortId,
      Version: p.version,
      Connections: p.connections.map((c) => ({
        Name: c.name,
        NickName: c.nickName,
        Address: c.address,
        Outbound: c.outbound,
        Established: c.established,
      })),
    })),
    UnicastRoutes: s.unicastRoutes.map((r) => ({ Dest: r.dest, Via: r.via })),
    BroadcastRoutes: s.broadcastRoutes.map((r) => ({ Source: r.source, Via: r.via })),
    Connections: s.connections.map((c) => ({
      Address: c.address,
      Outbound: c.kind === 'target' ? c.inbound !== true : c.outbound,
      State: c.state,
      Info: connectionInfo(c, s.encryption),
      Attrs:
        c.kind === 'connection' && c.overlay
          ? { name: c.overlay.name, mtu: c.overlay.mtu, ...(c.overlay.encrypted ? { encrypted: true } : {}) }
          : null,
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
  return {
    Ready: s.ready,
    Version: version,
    VersionCheck: versionCheck,
    Router: routerReport(s),
    ...services,
  };
}
