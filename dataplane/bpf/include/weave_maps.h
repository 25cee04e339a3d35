/* SPDX-License-Identifier: GPL-2.0 */
/* The maps shared by from-container and from-tunnel. Every map is pinned by
 * name; the loader points the pin path at its bpffs directory (default
 * /sys/fs/bpf/weave), so a restarted loader reuses the same maps and forwarding
 * never stops. Layouts here are mirrored by dataplane/bpf/maps.ts. */
#ifndef WEAVE_MAPS_H
#define WEAVE_MAPS_H

#include "weave_common.h"

/* config[0]: written by the control plane before any port is attached. */
#define WEAVE_CFG_F_LEARN 1u /* learn remote source MACs from received frames */
/* Coexistence with a bridge and the sleeve (the router's datapath): a frame from
 * a container that the kernel cannot deliver itself (broadcast, unknown or
 * unrouted destination) continues into the bridge after the fastdp copies, so
 * the bridge delivers it locally and the sleeve carries it to its peers. */
#define WEAVE_CFG_F_BRIDGE 2u
#define WEAVE_CFG_F_LEARN_LOCAL 4u /* learn container MACs from frames entering local ports */
/* The router has stopped (`weave stop`): what stays in the kernel serves this
 * host's own containers only; frames from the tunnel are not relayed on. */
#define WEAVE_CFG_F_NO_RELAY 8u
struct weave_config {
	__u32 local_short_id; /* this peer's short id (12 bits) */
	__u32 tunnel_ifindex; /* the VXLAN external device on UDP 6784 */
	__u32 flags;          /* WEAVE_CFG_F_* */
	__u32 mac_ttl_sec;    /* learned remote MACs older than this count as unknown (0 = never) */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weave_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weave_config SEC(".maps");

/* A MAC address as a map key: the padding must always be zero. */
struct weave_mac_key {
	__u8 mac[6];
	__u16 pad;
};

/* Local MAC -> the host-side veth (or host port, or the sleeve's port) it lives behind. */
#define WEAVE_PORT_F_REDIRECT_PEER 1u /* a veth whose other end is in a container netns:
					* deliver to that end's ingress (bpf_redirect_peer),
					* skipping one backlog queue */
#define WEAVE_PORT_F_HOST 2u /* the bridge device itself (bridge mode): deliver into the
				* host's stack (bpf_redirect with BPF_F_INGRESS) */
struct weave_local_port {
	__u32 ifindex;
	__u32 flags; /* WEAVE_PORT_F_* */
	__u64 last_seen_ns; /* learned (bridge mode): bpf_ktime_get_ns(), refreshed at most once a
			      * second, aged as weave_remote_macs is; 0: written by the control
			      * plane, kept while its port is */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct weave_mac_key);
	__type(value, struct weave_local_port);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weave_local_macs SEC(".maps");

/* Local port ifindex -> WEAVE_PORT_F_* for the MACs learned behind it (bridge
 * mode): only a container veth gets WEAVE_PORT_F_REDIRECT_PEER, never the
 * host's own port or a veth whose other end stays in this namespace. Written by
 * the control plane before the port's program is attached; a port missing here
 * has no flags. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weave_port_flags SEC(".maps");

/* Remote MAC -> peer, learned in the kernel from received frames (the VNI's
 * source short id, spec §6.2). LRU: a full table forgets the coldest MAC, which
 * then floods until relearned. */
struct weave_remote_mac {
	__u32 peer_short_id;
	__u32 pad;
	__u64 last_seen_ns; /* bpf_ktime_get_ns(), refreshed at most once a second */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct weave_mac_key);
	__type(value, struct weave_remote_mac);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weave_remote_macs SEC(".maps");

/* Peer short id -> where to send VXLAN frames for it: the peer's own underlay
 * address when it is a neighbour, else the address of the next hop that relays.
 * A receive-only entry is a peer whose frames we accept from the tunnel (its
 * fastdp heartbeats reach us) while we still send to it over the sleeve: the
 * two ends of a connection may switch overlays a moment apart, and nothing the
 * peer sends in that moment may be lost. The tunnel leaves from local_ip, our
 * address of the connection to that neighbour, as Weave's OVS tunnel action
 * sets it: an encrypted connection's SAs and marking rules cover that address
 * only, so on a host with several, the route's preferred one would not do. */
#define WEAVE_PEER_F_RECEIVE_ONLY 1u
struct weave_peer {
	__u32 underlay_ip; /* IPv4 in host byte order (bpf_tunnel_key convention); 0 = unknown */
	__u32 flags;       /* WEAVE_PEER_F_* */
	__u32 local_ip;    /* tunnel source, host order; 0 = the route's choice */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WEAVE_MAX_SHORT_IDS);
	__type(key, __u32);
	__type(value, struct weave_peer);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weave_peers SEC(".maps");

/* Source peer short id -> next hops of its broadcast tree from this peer (spec §5.8).
 * `count` holds the number of fastdp next hops in its low bits; in bridge mode
 * WEAVE_BCAST_F_SLEEVE says the tree also continues to a neighbour reached over
 * the sleeve, so a copy goes to the sleeve's bridge port. */
#define WEAVE_BCAST_COUNT_MASK 0xffffu
#define WEAVE_BCAST_F_SLEEVE (1u << 31)
struct weave_bcast_hops {
	__u32 count;
	__u16 hops[WEAVE_MAX_BCAST_HOPS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WEAVE_MAX_SHORT_IDS);
	__type(key, __u32);
	__type(value, struct weave_bcast_hops);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weave_bcast SEC(".maps");

/* The local ports a broadcast is flooded to (index 0 only). */
struct weave_port_list {
	__u32 count;
	__u32 ifindex[WEAVE_MAX_LOCAL_PORTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weave_port_list);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weave_local_ports SEC(".maps");

/* Bridge mode: the two bridge ports that are not containers (index 0 only).
 * The host's own port is the bridge device: its program runs at tc egress
 * (frames the host sends), frames for it are delivered into the host's stack.
 * The sleeve's port (vethwe-bridge): frames entering it come from sleeve peers,
 * MACs learned behind it are reached over the sleeve, and what is redirected to
 * it goes to the sleeve. `sleeve_relay`: the fastdp next hops of a broadcast the
 * sleeve hands us (the union of the trees of the peers whose frames reach us
 * over the sleeve: the kernel does not know a sleeve frame's source peer). */
struct weave_bridge_ports {
	__u32 host_ifindex;   /* 0 = none */
	__u32 sleeve_ifindex; /* 0 = none */
	struct weave_bcast_hops sleeve_relay;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct weave_bridge_ports);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weave_bridge_ports SEC(".maps");

/* This host's underlay IPv4 addresses (network order) -> the fastdp UDP port
 * on them, for the receive fast path at the underlay interface
 * (from-underlay). Empty when that path is off (IPsec: an encrypted peer's
 * frames must arrive through the XFRM input path, never in clear). */
struct weave_underlay_addr {
	__be16 udp_port_be;
	__u16 pad;
	__u32 flags; /* reserved, 0 */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __be32);
	__type(value, struct weave_underlay_addr);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weave_underlay_addrs SEC(".maps");

#endif
