// What the HTTP API needs from the running router and the other services.
// The composition root (weaver) implements it over the mesh; unit tests use
// plain objects.
import type { HttpApi } from './http-app.js';
import type { HostControl } from './host-control.js';
import type { MetricFamily } from './metrics.js';
import type { ReportServices } from './report.js';
import type { RouterStatus, ServiceSection } from './status-model.js';

export interface RouterControl {
  /** A consistent snapshot of the router's state. */
  status(): RouterStatus;
  /** Add direct peers (already syntax-checked); `replace` forgets all others first (spec §1.7). */
  connect(peers: string[], replace: boolean): void;
  /** Remove direct peers, given as the same strings used to connect. */
  forget(peers: string[]): void;
  /** The router's own port: the default for peers without one. */
  port(): number;
}

export interface ApiServices {
  router: RouterControl;
  /** Router version string, e.g. `2.8.1`. */
  version: string;
  /** Summary blocks after the router's (IPAM, DNS, proxy, plugin), spec §2.1. */
  summarySections?(): ServiceSection[];
  /** Report sections after `Router`, spec §3. */
  reportServices?(): ReportServices;
  /** Metric families beyond the router's, spec §5.3. */
  metrics?(): MetricFamily[];
  /** Host networking (bridge, attach/detach, ps, expose/hide), when the router owns a bridge. */
  host?: HostControl;
  /**
   * `GET /status/<service>` text (ipam, dns), on the control and the status
   * port alike (spec §5.2); a service left out (disabled) answers 404.
   */
  serviceStatus?: Readonly<Record<string, () => string>>;
  /** Register the service's own routes (IPAM, DNS) on the control API. */
  registerControlRoutes?(app: HttpApi): void;
}
