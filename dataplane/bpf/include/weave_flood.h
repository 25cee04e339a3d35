/* SPDX-License-Identifier: GPL-2.0 */
/* Flooding of broadcast, multicast and unknown unicast: a copy to every local
 * port but the ingress one, and a copy to each next hop of the source peer's
 * broadcast tree (spec §5.8, §6.2: VNI = source | next hop << 12). */
#ifndef WEAVE_FLOOD_H
#define WEAVE_FLOOD_H

#include "weave_fdb.h"
#include "weave_tunnel.h"

WEAVE_INLINE struct weave_bcast_hops *bcast_tree(__u32 source_short_id)
{
	__u32 src = source_short_id & WEAVE_SHORT_ID_MASK;
	return bpf_map_lookup_elem(&weave_bcast, &src);
}

/* Which broadcast tree flood_copies sends tunnel copies along: a source short
 * id (its tree in weave_bcast), or one of these. */
#define WEAVE_TREE_NONE 0xffffffffu        /* no tunnel copies */
#define WEAVE_TREE_SLEEVE_RELAY 0xfffffffeu /* bridge mode: weave_bridge_ports.sleeve_relay */

/* Clones go out with bpf_clone_redirect, which may change the packet: nothing
 * here (nor in callers afterwards) reads packet data. `vni_source` is the VNI
 * source of the tunnel copies, `tree_of` the tree whose next hops they go to.
 * `local_copies` = 0 leaves local delivery to the bridge (bridge mode, frames
 * entering a bridge port). In bridge mode the local copies (frames from the
 * tunnel) also go to the host's stack, and to the sleeve's port when the tree
 * continues to a sleeve neighbour.
 *
 * A global function (not inlined, arguments the context and scalars only), so
 * the verifier checks it once, on its own, instead of walking both loops again
 * for every call site and every path that reaches one: that walk was most of
 * the time a router took to load its programs. */
__attribute__((noinline)) int flood_copies(struct __sk_buff *skb, __u32 vni_source, __u32 tree_of,
					   __u32 except_underlay_ip, __u32 local_copies)
{
	__u32 zero = 0;
	struct weave_config *cfg = config();
	if (!cfg)
		return 0;
	__u32 in = skb->ifindex;
	__u32 tunnel = cfg->tunnel_ifindex;
	__u32 local_id = cfg->local_short_id;
	int via_bridge = cfg->flags & WEAVE_CFG_F_BRIDGE;
	struct weave_bridge_ports *bp = via_bridge ? bridge_ports() : NULL;
	struct weave_bcast_hops *tree = NULL;
	if (tree_of == WEAVE_TREE_SLEEVE_RELAY)
		tree = bp ? &bp->sleeve_relay : NULL;
	else if (tree_of != WEAVE_TREE_NONE)
		tree = bcast_tree(tree_of);

	count(WC_FLOOD);
	struct weave_port_list *ports = local_copies ? bpf_map_lookup_elem(&weave_local_ports, &zero) : NULL;
	if (ports) {
		__u32 n = ports->count;
		for (__u32 i = 0; i < WEAVE_MAX_LOCAL_PORTS; i++) {
			if (i >= n)
				break;
			__u32 ifindex = ports->ifindex[i];
			if (ifindex == 0 || ifindex == in)
				continue;
			if (bpf_clone_redirect(skb, ifindex, 0) == 0)
				count(WC_FLOOD_LOCAL_COPY);
		}
	}
	if (local_copies && bp) {
		__u32 host = bp->host_ifindex;
		__u32 sleeve = bp->sleeve_ifindex;
		if (host && host != in && bpf_clone_redirect(skb, host, BPF_F_INGRESS) == 0)
			count(WC_FLOOD_LOCAL_COPY);
		if (sleeve && sleeve != in && tree && (tree->count & WEAVE_BCAST_F_SLEEVE) &&
		    bpf_clone_redirect(skb, sleeve, 0) == 0)
			count(WC_FLOOD_LOCAL_COPY);
	}

	__u32 src = vni_source & WEAVE_SHORT_ID_MASK;
	if (tree && tunnel) {
		__u32 n = tree->count & WEAVE_BCAST_COUNT_MASK;
		for (__u32 i = 0; i < WEAVE_MAX_BCAST_HOPS; i++) {
			if (i >= n)
				break;
			__u32 hop = tree->hops[i] & WEAVE_SHORT_ID_MASK;
			if (hop == src || hop == local_id)
				continue;
			const struct weave_peer *to = peer_route(hop);
			if (!to || to->underlay_ip == except_underlay_ip)
				continue;
			if (set_tunnel(skb, to, vni_encode(src, hop)) < 0) {
				count(WC_DROP_SET_TUNNEL_KEY);
				continue;
			}
			if (bpf_clone_redirect(skb, tunnel, 0) == 0)
				count(WC_FLOOD_TUNNEL_COPY);
		}
	}
	return 0;
}

/* Flood along the source peer's tree and consume the original. */
WEAVE_INLINE int flood(struct __sk_buff *skb, __u32 source_short_id, __u32 except_underlay_ip)
{
	flood_copies(skb, source_short_id, source_short_id & WEAVE_SHORT_ID_MASK, except_underlay_ip, 1);
	return TC_ACT_SHOT;
}

/* Bridge mode: copies to the fastdp next hops of the tree `tree_of` (VNI
 * source: us), then the original continues into the bridge, which delivers it
 * locally and to the sleeve. */
WEAVE_INLINE int flood_via_bridge(struct __sk_buff *skb, const struct weave_config *cfg, __u32 tree_of)
{
	flood_copies(skb, cfg->local_short_id, tree_of, 0, 0);
	count(WC_TO_BRIDGE);
	return TC_ACT_OK;
}

#endif
