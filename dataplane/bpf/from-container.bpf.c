// SPDX-License-Identifier: GPL-2.0
/* Frames entering the overlay on this host. weave_from_container runs at tc
 * ingress of every local port's host side (container veths, and in standalone
 * mode the host's own bridge-side port, which is just another local port):
 * switch the frame to a local port, encapsulate it for the peer that owns the
 * destination MAC, or flood it. No frame is ever handed to userspace. In bridge
 * mode (WEAVE_CFG_F_BRIDGE) what the kernel cannot deliver itself goes on into
 * the bridge, where the sleeve picks up what its peers need, and two more
 * entry points cover the bridge ports that are not containers:
 * weave_from_host at tc egress of the bridge device (frames the host sends)
 * and weave_from_sleeve at tc ingress of the sleeve's bridge port (frames from
 * sleeve peers, which may continue to fastdp peers). */
#include "weave_flood.h"

enum weave_port_role {
	ROLE_CONTAINER,
	ROLE_HOST,   /* tc egress of the bridge device: bpf_redirect_peer is not allowed there */
	ROLE_SLEEVE, /* tc ingress of the sleeve's bridge port */
};

/* Broadcast, multicast and unknown unicast from a local port. In bridge mode a
 * frame from a sleeve peer continues along the sleeve relay tree, any other
 * along ours (spec §5.8: this host is where it entered the fastdp). */
WEAVE_INLINE int flood_from(struct __sk_buff *skb, struct weave_config *cfg, const enum weave_port_role role)
{
	__u32 local_id = cfg->local_short_id;
	if (!(cfg->flags & WEAVE_CFG_F_BRIDGE))
		return flood(skb, local_id, 0);
	return flood_via_bridge(skb, cfg, role == ROLE_SLEEVE ? WEAVE_TREE_SLEEVE_RELAY : local_id & WEAVE_SHORT_ID_MASK);
}

WEAVE_INLINE int from_local(struct __sk_buff *skb, const enum weave_port_role role)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return drop(WC_DROP_RUNT);
	struct weave_config *cfg = config();
	if (!cfg || !cfg->tunnel_ifindex)
		return role == ROLE_CONTAINER ? drop(WC_DROP_NO_CONFIG) : TC_ACT_OK;
	__u32 local_id = cfg->local_short_id;
	int via_bridge = cfg->flags & WEAVE_CFG_F_BRIDGE;
	if (role != ROLE_CONTAINER && !via_bridge)
		return TC_ACT_OK; /* the host and sleeve hooks only exist in bridge mode */

	if (cfg->flags & WEAVE_CFG_F_LEARN_LOCAL) {
		if (role == ROLE_HOST)
			learn_local_at(eth->h_source, skb->ifindex, 0, WEAVE_PORT_F_HOST);
		else if (role == ROLE_SLEEVE)
			learn_local_at(eth->h_source, skb->ifindex, 0, 0);
		else
			learn_local(eth->h_source, skb->ifindex);
	}

	if (is_multicast(eth->h_dest))
		return flood_from(skb, cfg, role);

	struct weave_local_port *port = local_port(eth->h_dest);
	if (port) {
		if (port->ifindex == skb->ifindex)
			return drop(WC_DROP_HAIRPIN);
		count(WC_FWD_LOCAL);
		/* From the host's egress hook: a plain redirect to the port's egress. */
		if (role == ROLE_HOST)
			return bpf_redirect(port->ifindex, 0);
		return redirect_local(port);
	}

	int peer = remote_peer(cfg, eth->h_dest);
	if (peer < 0)
		return flood_from(skb, cfg, role);
#ifdef WEAVE_EXPERIMENT_CLASSIC_DEVICE
	/* Benchmark experiment only: the tunnel device is a classic VXLAN device
	 * for this one peer, whose own fdb supplies remote and VNI. */
	count(WC_FWD_TO_TUNNEL);
	return bpf_redirect(cfg->tunnel_ifindex, 0);
#endif
	const struct weave_peer *to = peer_route(peer);
	if (!to && via_bridge) {
		/* The peer is reached over the sleeve: the bridge hands it to the sleeve. */
		count(WC_TO_BRIDGE);
		return TC_ACT_OK;
	}
	if (!to)
		return drop(WC_DROP_NO_ROUTE);
	if (set_tunnel(skb, to, vni_encode(local_id, peer)) < 0)
		return drop(WC_DROP_SET_TUNNEL_KEY);
	count(WC_FWD_TO_TUNNEL);
	return bpf_redirect(cfg->tunnel_ifindex, 0);
}

SEC("tc")
int weave_from_container(struct __sk_buff *skb)
{
	return from_local(skb, ROLE_CONTAINER);
}

SEC("tc")
int weave_from_host(struct __sk_buff *skb)
{
	return from_local(skb, ROLE_HOST);
}

SEC("tc")
int weave_from_sleeve(struct __sk_buff *skb)
{
	return from_local(skb, ROLE_SLEEVE);
}

char LICENSE[] SEC("license") = "GPL";
