/* SPDX-License-Identifier: GPL-2.0 */
/* MAC lookups: local ports, learned remote MACs (with expiry) and peers. */
#ifndef WEAVE_FDB_H
#define WEAVE_FDB_H

#include "weave_maps.h"
#include "weave_counters.h"

#define NSEC_PER_SEC 1000000000ull

WEAVE_INLINE struct weave_config *config(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&weave_config, &zero);
}

WEAVE_INLINE void mac_key(struct weave_mac_key *k, const __u8 *mac)
{
	__builtin_memcpy(k->mac, mac, 6);
	k->pad = 0;
}

WEAVE_INLINE int is_multicast(const __u8 *mac)
{
	return mac[0] & 1;
}

WEAVE_INLINE struct weave_local_port *local_port(const __u8 *mac)
{
	struct weave_mac_key k = {};
	mac_key(&k, mac);
	return bpf_map_lookup_elem(&weave_local_macs, &k);
}

/* Bridge mode: the host's and the sleeve's bridge ports, NULL before the control plane wrote them. */
WEAVE_INLINE struct weave_bridge_ports *bridge_ports(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&weave_bridge_ports, &zero);
}

/* Deliver to a local port; only valid from a tc ingress hook (bpf_redirect_peer
 * is ingress-only). The host's port is the bridge device: the frame enters the
 * host's stack as if the bridge had received it. */
WEAVE_INLINE int redirect_local(const struct weave_local_port *port)
{
	if (port->flags & WEAVE_PORT_F_REDIRECT_PEER)
		return bpf_redirect_peer(port->ifindex, 0);
	if (port->flags & WEAVE_PORT_F_HOST)
		return bpf_redirect(port->ifindex, BPF_F_INGRESS);
	return bpf_redirect(port->ifindex, 0);
}

/* The peer a remote MAC was learned from, or -1 when unknown or expired. */
WEAVE_INLINE int remote_peer(const struct weave_config *cfg, const __u8 *mac)
{
	struct weave_mac_key k = {};
	struct weave_remote_mac *r;

	mac_key(&k, mac);
	r = bpf_map_lookup_elem(&weave_remote_macs, &k);
	if (!r)
		return -1;
	if (cfg->mac_ttl_sec &&
	    bpf_ktime_get_ns() - r->last_seen_ns > (__u64)cfg->mac_ttl_sec * NSEC_PER_SEC)
		return -1;
	return r->peer_short_id;
}

/* Where to send frames for this peer (its entry: underlay address and tunnel
 * source), NULL if nowhere (unknown, or reached over the sleeve: receive-only). */
WEAVE_INLINE const struct weave_peer *peer_route(__u32 short_id)
{
	__u32 k = short_id & WEAVE_SHORT_ID_MASK;
	struct weave_peer *p = bpf_map_lookup_elem(&weave_peers, &k);
	return p && p->underlay_ip && !(p->flags & WEAVE_PEER_F_RECEIVE_ONLY) ? p : NULL;
}

/* Underlay address frames from this peer come from (host order), 0 when the
 * peer's frames are not accepted from the tunnel. */
WEAVE_INLINE __u32 peer_source_underlay(__u32 short_id)
{
	__u32 k = short_id & WEAVE_SHORT_ID_MASK;
	struct weave_peer *p = bpf_map_lookup_elem(&weave_peers, &k);
	return p ? p->underlay_ip : 0;
}

/* Learn src MAC -> peer. Look up first and refresh the timestamp at most once a
 * second: an update takes the bucket lock and dirties a shared cache line. */
WEAVE_INLINE void learn_remote(const __u8 *mac, __u32 peer_short_id)
{
	struct weave_mac_key k = {};
	struct weave_remote_mac *r;
	__u64 now = bpf_ktime_get_ns();

	if (is_multicast(mac))
		return;
	mac_key(&k, mac);
	r = bpf_map_lookup_elem(&weave_remote_macs, &k);
	if (r && r->peer_short_id == peer_short_id) {
		if (now - r->last_seen_ns > NSEC_PER_SEC)
			r->last_seen_ns = now;
		return;
	}
	struct weave_remote_mac v = { .peer_short_id = peer_short_id, .last_seen_ns = now };
	if (bpf_map_update_elem(&weave_remote_macs, &k, &v, BPF_ANY) == 0)
		count(WC_LEARNED);
}

/* Bridge mode: learn a MAC -> the local port it entered through, stamped for
 * ageing (a MAC behind the sleeve's port is a remote container's, which may
 * leave while the port stays). Container
 * ports take their flags from weave_port_flags (redirect_peer only for a veth
 * whose other end is in a container); the host's port passes
 * WEAVE_PORT_F_HOST; the sleeve's port has none. Look up first: an update
 * takes the bucket lock. */
WEAVE_INLINE void learn_local_at(const __u8 *mac, __u32 ifindex, int use_port_flags, __u32 flags)
{
	struct weave_mac_key k = {};
	struct weave_local_port *p;
	__u32 *port_flags;
	__u64 now = bpf_ktime_get_ns();

	if (is_multicast(mac))
		return;
	mac_key(&k, mac);
	p = bpf_map_lookup_elem(&weave_local_macs, &k);
	if (p && p->ifindex == ifindex) {
		/* Entries the control plane wrote (0) are not aged: never stamp them. */
		if (p->last_seen_ns && now - p->last_seen_ns > NSEC_PER_SEC)
			p->last_seen_ns = now;
		return;
	}
	if (use_port_flags) {
		port_flags = bpf_map_lookup_elem(&weave_port_flags, &ifindex);
		flags = port_flags ? *port_flags : 0;
	}
	struct weave_local_port v = { .ifindex = ifindex, .flags = flags, .last_seen_ns = now };
	if (bpf_map_update_elem(&weave_local_macs, &k, &v, BPF_ANY) == 0)
		count(WC_LEARNED_LOCAL);
}

WEAVE_INLINE void learn_local(const __u8 *mac, __u32 ifindex)
{
	learn_local_at(mac, ifindex, 1, 0);
}

#endif
