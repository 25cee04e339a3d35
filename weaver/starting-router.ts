// The control API's router while the router starts. The API listens before
// the data plane is loaded (loading the eBPF programs is most of a start), so
// a client sees the router at once: until the mesh runs, the status views
// answer 503 (spec §5.1: not ready) with what is known — our name, nickname,
// port and targets — and peers given to /connect or /forget meanwhile are
// handed to the mesh when it starts.
//
// What was asked meanwhile is kept as its net effect on the target list, not
// as a queue of calls, so it takes no more memory than the running mesh's own
// list of direct peers however many requests arrive.
import type { RouterControl } from '../controlplane/api/router-control.js';
import type { RouterStatus } from '../controlplane/api/status-model.js';
import type { PeerName } from '../controlplane/mesh/types.js';
import type { WeaverConfig } from './flags.js';
import { composeRouterStatus } from './router-status.js';

export class StartingRouter implements RouterControl {
  private running: RouterControl | undefined;
  /** The direct peers as the mesh will have them once it applies what was asked meanwhile. */
  private pendingTargets: string[];
  /** A `/connect?replace=true` was asked: the mesh's initial targets are replaced, not added to. */
  private replaced = false;
  /** Peers forgotten (and not asked for again since): the mesh may know them from its initial targets. */
  private readonly forgotten = new Set<string>();

  constructor(
    private readonly ourName: PeerName,
    private readonly nickName: string,
    private readonly config: WeaverConfig,
    private readonly targets: readonly string[],
  ) {
    this.pendingTargets = [...targets];
  }

  get ready(): boolean {
    return this.running !== undefined;
  }

  status(): RouterStatus {
    if (this.running) return this.running.status();
    const known = {
      name: this.ourName, nickName: this.nickName, peers: [], unicastRoutes: [], broadcastRoutes: [],
      connections: [], targets: [...this.pendingTargets], terminationCount: 0,
    };
    return { ...composeRouterStatus(known, this.config, []), ready: false };
  }

  connect(peers: string[], replace: boolean): void {
    if (this.running) return this.running.connect(peers, replace);
    if (replace) {
      this.replaced = true;
      this.pendingTargets = [];
      this.forgotten.clear();
    }
    for (const p of peers) {
      this.forgotten.delete(p);
      if (!this.pendingTargets.includes(p)) this.pendingTargets.push(p);
    }
  }

  forget(peers: string[]): void {
    if (this.running) return this.running.forget(peers);
    const gone = new Set(peers);
    this.pendingTargets = this.pendingTargets.filter((p) => !gone.has(p));
    for (const p of gone) this.forgotten.add(p);
  }

  port(): number {
    return this.config.port;
  }

  /**
   * The mesh runs, started with the configured targets: status comes from it
   * from now on, and the net effect of what was asked meanwhile is applied.
   */
  started(router: RouterControl): void {
    this.running = router;
    if (this.replaced) {
      router.connect(this.pendingTargets, true);
    } else {
      const added = this.pendingTargets.filter((p) => !this.targets.includes(p));
      if (added.length > 0) router.connect(added, false);
    }
    if (this.forgotten.size > 0) router.forget([...this.forgotten]);
    this.forgotten.clear();
  }
}
