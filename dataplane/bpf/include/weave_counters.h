/* SPDX-License-Identifier: GPL-2.0 */
/* Per-CPU packet counters: what was forwarded in the kernel, every drop with a
 * named reason, and what was handed up to userspace. The order is mirrored by
 * COUNTER_NAMES in dataplane/bpf/maps.ts. */
#ifndef WEAVE_COUNTERS_H
#define WEAVE_COUNTERS_H

#include "weave_common.h"

enum weave_counter {
	/* forwarded in the kernel */
	WC_FWD_LOCAL = 0,        /* container -> local container */
	WC_FWD_TO_TUNNEL,        /* container -> remote peer (encapsulated) */
	WC_FWD_FROM_TUNNEL,      /* tunnel -> local container */
	WC_FWD_RELAY,            /* tunnel -> tunnel, unicast for another peer */
	WC_FLOOD,                /* broadcast / multicast / unknown unicast frames flooded */
	WC_FLOOD_LOCAL_COPY,     /* copies sent to local ports */
	WC_FLOOD_TUNNEL_COPY,    /* copies sent to broadcast next hops */
	WC_LEARNED,              /* remote MAC learned or moved */
	WC_TO_USERSPACE,         /* handed to the stack (fastdp heartbeats) */
	/* drops, one reason each */
	WC_DROP_RUNT,            /* shorter than an Ethernet header */
	WC_DROP_NO_CONFIG,       /* config not written yet */
	WC_DROP_HAIRPIN,         /* destination is the ingress port */
	WC_DROP_NO_ROUTE,        /* destination peer has no underlay address */
	WC_DROP_NO_TUNNEL_KEY,   /* received frame without tunnel metadata */
	WC_DROP_SET_TUNNEL_KEY,  /* bpf_skb_set_tunnel_key failed */
	WC_DROP_UNKNOWN_SOURCE,  /* VNI source short id is not a known peer */
	WC_DROP_BOUNCE,          /* tunnel frame addressed to us for a remote MAC */
	WC_DROP_RELAY_LOOP,      /* relay would send the frame back where it came from */
	WC_DROP_SOURCE_IS_LOCAL, /* tunnel frame whose source MAC is one of our ports */
	/* bridge mode (WEAVE_CFG_F_BRIDGE) */
	WC_TO_BRIDGE,            /* container frame passed on to the bridge (local delivery, sleeve) */
	WC_LEARNED_LOCAL,        /* container MAC learned or moved to another local port */
	/* the receive fast path at the underlay interface (from-underlay) */
	WC_FWD_FROM_UNDERLAY,    /* tunnel frame decapsulated at the underlay and delivered locally */
	WC_DROP_DECAP,           /* decapsulation failed (the frame was already changed) */
	/* sent from the route's source address: the kernel took no tunnel source (before 6.0) */
	WC_TUNNEL_SOURCE_UNSUPPORTED,
	WC_COUNTER_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WC_COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weave_counters SEC(".maps");

WEAVE_INLINE void count(enum weave_counter which)
{
	__u32 key = which;
	__u64 *c = bpf_map_lookup_elem(&weave_counters, &key);
	if (c)
		*c += 1;
}

/* Count a drop and consume the packet. */
WEAVE_INLINE int drop(enum weave_counter reason)
{
	count(reason);
	return TC_ACT_SHOT;
}

#endif
