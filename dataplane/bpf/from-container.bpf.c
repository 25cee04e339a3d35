// SPDX-License-Identifier: GPL-2.0
/* tc ingress of every local port's host side (container veths, and the host's
 * own bridge-side port, which is just another local port): switch the frame to
 * a local port, encapsulate it for the peer that owns the destination MAC, or
 * flood it. No frame is ever handed to userspace. In bridge mode
 * (WEAVE_CFG_F_BRIDGE) what the kernel cannot deliver itself goes on into the
 * bridge, where the sleeve picks up what its peers need. */
#include "weave_flood.h"

SEC("tc")
int weave_from_container(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return drop(WC_DROP_RUNT);
	struct weave_config *cfg = config();
	if (!cfg || !cfg->tunnel_ifindex)
		return drop(WC_DROP_NO_CONFIG);
	__u32 local_id = cfg->local_short_id;
	int via_bridge = cfg->flags & WEAVE_CFG_F_BRIDGE;

	if (cfg->flags & WEAVE_CFG_F_LEARN_LOCAL)
		learn_local(eth->h_source, skb->ifindex);

	if (is_multicast(eth->h_dest))
		return via_bridge ? flood_via_bridge(skb, cfg, local_id) : flood(skb, cfg, local_id, 0);

	struct weave_local_port *port = local_port(eth->h_dest);
	if (port) {
		if (port->ifindex == skb->ifindex)
			return drop(WC_DROP_HAIRPIN);
		count(WC_FWD_LOCAL);
		return redirect_local(port);
	}

	int peer = remote_peer(cfg, eth->h_dest);
	if (peer < 0)
		return via_bridge ? flood_via_bridge(skb, cfg, local_id) : flood(skb, cfg, local_id, 0);
#ifdef WEAVE_EXPERIMENT_CLASSIC_DEVICE
	/* Benchmark experiment only: the tunnel device is a classic VXLAN device
	 * for this one peer, whose own fdb supplies remote and VNI. */
	count(WC_FWD_TO_TUNNEL);
	return bpf_redirect(cfg->tunnel_ifindex, 0);
#endif
	__u32 ip = peer_underlay(peer);
	if (ip == 0 && via_bridge) {
		/* The peer is reached over the sleeve: the bridge hands it to the sleeve. */
		count(WC_TO_BRIDGE);
		return TC_ACT_OK;
	}
	if (ip == 0)
		return drop(WC_DROP_NO_ROUTE);
	if (set_tunnel(skb, ip, vni_encode(local_id, peer)) < 0)
		return drop(WC_DROP_SET_TUNNEL_KEY);
	count(WC_FWD_TO_TUNNEL);
	return bpf_redirect(cfg->tunnel_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
