/* SPDX-License-Identifier: GPL-2.0 */
/* Flooding of broadcast, multicast and unknown unicast: a copy to every local
 * port but the ingress one, and a copy to each next hop of the source peer's
 * broadcast tree (spec §5.8, §6.2: VNI = source | next hop << 12). */
#ifndef WEAVE_FLOOD_H
#define WEAVE_FLOOD_H

#include "weave_fdb.h"
#include "weave_tunnel.h"

/* Clones go out with bpf_clone_redirect, which may change the packet: nothing
 * here (nor in callers afterwards) reads packet data. `local_copies` = 0 leaves
 * local delivery to the bridge (bridge mode). */
WEAVE_INLINE void flood_copies(struct __sk_buff *skb, const struct weave_config *cfg,
			       __u32 source_short_id, __u32 except_underlay_ip, int local_copies)
{
	__u32 zero = 0;
	__u32 in = skb->ifindex;
	__u32 tunnel = cfg->tunnel_ifindex;
	__u32 local_id = cfg->local_short_id;

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

	__u32 src = source_short_id & WEAVE_SHORT_ID_MASK;
	struct weave_bcast_hops *tree = bpf_map_lookup_elem(&weave_bcast, &src);
	if (tree && tunnel) {
		__u32 n = tree->count;
		for (__u32 i = 0; i < WEAVE_MAX_BCAST_HOPS; i++) {
			if (i >= n)
				break;
			__u32 hop = tree->hops[i] & WEAVE_SHORT_ID_MASK;
			if (hop == src || hop == local_id)
				continue;
			__u32 ip = peer_underlay(hop);
			if (ip == 0 || ip == except_underlay_ip)
				continue;
			if (set_tunnel(skb, ip, vni_encode(src, hop)) < 0) {
				count(WC_DROP_SET_TUNNEL_KEY);
				continue;
			}
			if (bpf_clone_redirect(skb, tunnel, 0) == 0)
				count(WC_FLOOD_TUNNEL_COPY);
		}
	}
}

/* Flood and consume the original. */
WEAVE_INLINE int flood(struct __sk_buff *skb, const struct weave_config *cfg,
		       __u32 source_short_id, __u32 except_underlay_ip)
{
	flood_copies(skb, cfg, source_short_id, except_underlay_ip, 1);
	return TC_ACT_SHOT;
}

/* Bridge mode: copies to the fastdp broadcast next hops, then the original
 * continues into the bridge, which delivers it locally and to the sleeve. */
WEAVE_INLINE int flood_via_bridge(struct __sk_buff *skb, const struct weave_config *cfg, __u32 local_id)
{
	flood_copies(skb, cfg, local_id, 0, 0);
	count(WC_TO_BRIDGE);
	return TC_ACT_OK;
}

#endif
