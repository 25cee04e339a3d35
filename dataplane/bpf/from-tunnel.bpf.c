// SPDX-License-Identifier: GPL-2.0
/* tc ingress of the VXLAN external device (UDP 6784): learn where the source
 * MAC lives from the VNI's source short id, deliver to a local port, relay
 * unicast addressed to another peer, and flood broadcasts to the local ports and
 * onward along the source peer's broadcast tree (spec §6.2). In bridge mode the
 * local ports include the host's stack and, when the tree continues to a sleeve
 * neighbour, the sleeve's bridge port; a MAC learned behind the sleeve's port is
 * a local port too, so unicast for a peer reached over the sleeve goes there.
 * Heartbeats (zero MACs, spec §6.4) go up to the stack, where the router reads
 * them. */
#include "weave_flood.h"

WEAVE_INLINE int is_zero_mac(const __u8 *mac)
{
	return (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]) == 0;
}

/* Flooding what came from the tunnel: local copies, and copies on along the
 * source's tree unless the router has stopped (no relaying then). */
WEAVE_INLINE int flood_from_tunnel(struct __sk_buff *skb, const struct weave_config *cfg, __u32 src, __u32 from_ip)
{
	if (!(cfg->flags & WEAVE_CFG_F_NO_RELAY))
		return flood(skb, src, from_ip);
	flood_copies(skb, src, WEAVE_TREE_NONE, from_ip, 1);
	return TC_ACT_SHOT;
}

SEC("tc")
int weave_from_tunnel(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};

#ifdef WEAVE_EXPERIMENT_CLASSIC_DEVICE
	/* Benchmark experiment only: a classic device carries no metadata; its
	 * VNI (source | local << 12) is fixed at build time. */
	key.tunnel_id = WEAVE_EXPERIMENT_CLASSIC_DEVICE;
#else
	if (bpf_skb_get_tunnel_key(skb, &key, WEAVE_TUNNEL_KEY_SIZE, 0) < 0)
		return drop(WC_DROP_NO_TUNNEL_KEY);
#endif
	struct weave_config *cfg = config();
	if (!cfg)
		return drop(WC_DROP_NO_CONFIG);

	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop(WC_DROP_RUNT);

	if (is_zero_mac(eth->h_dest) && is_zero_mac(eth->h_source)) {
		count(WC_TO_USERSPACE);
		return TC_ACT_OK;
	}

	__u32 src = vni_source(key.tunnel_id);
	__u32 dst = vni_destination(key.tunnel_id);
	__u32 local_id = cfg->local_short_id;
	if (src == local_id)
		return drop(WC_DROP_UNKNOWN_SOURCE);
	if (peer_source_underlay(src) == 0) {
		/* Bridge mode: a restarted peer may send with a short id the mesh has
		 * not told us yet (spec §4.8). Deliver unicast for a local MAC without
		 * learning: replies keep following the MAC's previous entry. */
		struct weave_local_port *to = (cfg->flags & WEAVE_CFG_F_BRIDGE) && dst == local_id && !is_multicast(eth->h_dest)
			? local_port(eth->h_dest) : NULL;
		if (!to)
			return drop(WC_DROP_UNKNOWN_SOURCE);
		count(WC_FWD_FROM_TUNNEL);
		return redirect_local(to);
	}
	struct weave_local_port *src_port = local_port(eth->h_source);
	if (src_port) {
		/* A MAC learned behind the sleeve's port moved to a peer we now reach
		 * over the fastdp (e.g. the connection came back from the sleeve). */
		struct weave_bridge_ports *bp = (cfg->flags & WEAVE_CFG_F_BRIDGE) ? bridge_ports() : NULL;
		if (!bp || !bp->sleeve_ifindex || src_port->ifindex != bp->sleeve_ifindex)
			return drop(WC_DROP_SOURCE_IS_LOCAL);
		struct weave_mac_key k = {};
		mac_key(&k, eth->h_source);
		bpf_map_delete_elem(&weave_local_macs, &k);
	}
	if (cfg->flags & WEAVE_CFG_F_LEARN)
		learn_remote(eth->h_source, src);

	if (is_multicast(eth->h_dest))
		return flood_from_tunnel(skb, cfg, src, key.remote_ipv4);

	if (dst != local_id) {
		/* Unicast for a peer we are a hop towards: re-encapsulate unchanged. */
		const struct weave_peer *to = peer_route(dst);
		if (!to || (cfg->flags & WEAVE_CFG_F_NO_RELAY)) {
			/* Our short id changed (spec §4.8, or a restarted router) and the
			 * sender still uses the old one: deliver what is for a local MAC. */
			struct weave_local_port *mine = local_port(eth->h_dest);
			if (mine) {
				count(WC_FWD_FROM_TUNNEL);
				return redirect_local(mine);
			}
			return drop(WC_DROP_NO_ROUTE);
		}
		if (to->underlay_ip == key.remote_ipv4)
			return drop(WC_DROP_RELAY_LOOP);
		if (set_tunnel(skb, to, key.tunnel_id) < 0)
			return drop(WC_DROP_SET_TUNNEL_KEY);
		count(WC_FWD_RELAY);
		return bpf_redirect(skb->ifindex, 0);
	}

	struct weave_local_port *port = local_port(eth->h_dest);
	if (port) {
		count(WC_FWD_FROM_TUNNEL);
		return redirect_local(port);
	}
	/* Addressed to us but not to a local MAC: never send it back into the
	 * tunnel as unicast; a MAC we learned as remote is a stale sender view. */
	if (remote_peer(cfg, eth->h_dest) >= 0)
		return drop(WC_DROP_BOUNCE);
	return flood_from_tunnel(skb, cfg, src, key.remote_ipv4);
}

char LICENSE[] SEC("license") = "GPL";
