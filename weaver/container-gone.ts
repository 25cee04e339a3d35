// What the router releases when a container attached here goes away without
// a runtime telling it: the host noticed its veth deleted with its namespace
// (dataplane/host veth-deletions.ts).
import type { RunningDns } from './dns-wiring.js';
import { identIsAlive, type RunningIpam } from './ipam-wiring.js';

/**
 * A container attached here went away (its veth was deleted with its
 * namespace). Its names are tombstoned at once, as Weave does on a container's
 * death; its addresses are released at once when its namespace is gone for
 * good (a path or pid), else after the grace for a container restarting
 * under the same id (Weave's ContainerDied / ContainerDestroyed).
 */
export function containerGone(ident: string, ipam: RunningIpam | undefined, dns: RunningDns | undefined): void {
  dns?.nameserver.containerDied(ident);
  if (!ipam) return;
  ipam.allocator.containerDied(ident);
  if (!identIsAlive(ident) && ipam.allocator.lookup(ident).length > 0) ipam.allocator.deleteIdent(ident);
}
