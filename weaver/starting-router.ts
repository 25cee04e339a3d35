// The control API's router while the router starts. The API listens before
// the data plane is loaded (loading the eBPF programs is most of a start), so
// a client sees the router at once: until the mesh runs, the status views
// answer 503 (spec §5.1: not ready) with what is known — our name, nickname,
// port and targets — and peers given to /connect or /forget meanwhile are
// handed to the mesh when it starts.
import type { RouterControl } from '../controlplane/api/router-control.js';
import type { RouterStatus } from '../controlplane/api/status-model.js';
import type { PeerName } from '../controlplane/mesh/types.js';
import type { WeaverConfig } from './flags.js';
import { composeRouterStatus } from './router-status.js';

export class StartingRouter implements RouterControl {
  private running: RouterControl | undefined;
  private readonly queued: ((router: RouterControl) => void)[] = [];

  constructor(
    private readonly ourName: PeerName,
    private readonly nickName: string,
    private readonly config: WeaverConfig,
    private readonly targets: readonly string[],
  ) {}

  get ready(): boolean {
    return this.running !== undefined;
  }

  status(): RouterStatus {
    if (this.running) return this.running.status();
    const known = {
      name: this.ourName, nickName: this.nickName, peers: [], unicastRoutes: [], broadcastRoutes: [],
      connections: [], targets: [...this.targets], terminationCount: 0,
    };
    return { ...composeRouterStatus(known, this.config, []), ready: false };
  }

  connect(peers: string[], replace: boolean): void {
    if (this.running) this.running.connect(peers, replace);
    else this.queued.push((r) => r.connect(peers, replace));
  }

  forget(peers: string[]): void {
    if (this.running) this.running.forget(peers);
    else this.queued.push((r) => r.forget(peers));
  }

  port(): number {
    return this.config.port;
  }

  /** The mesh runs: status comes from it from now on, and what was asked meanwhile is applied in order. */
  started(router: RouterControl): void {
    this.running = router;
    for (const op of this.queued.splice(0)) op(router);
  }
}
