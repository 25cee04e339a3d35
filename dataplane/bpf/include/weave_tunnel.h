/* SPDX-License-Identifier: GPL-2.0 */
/* VXLAN tunnel metadata in Weave's fastdp encoding (spec §6.2):
 * VNI bits 0-11 = short id of the source peer (where the frame entered the
 * overlay), bits 12-23 = short id of the destination peer (for broadcasts the
 * next-hop neighbour); outer TTL 64, DF set, UDP checksum 0. */
#ifndef WEAVE_TUNNEL_H
#define WEAVE_TUNNEL_H

#include "weave_common.h"
#include "weave_counters.h"
#include "weave_maps.h"

/* The key size before local_ipv4 was added: accepted by every kernel that has
 * tunnel keys, including ones older than the uapi header we build against. */
#define WEAVE_TUNNEL_KEY_SIZE offsetof(struct bpf_tunnel_key, local_ipv4)
/* The key size with the tunnel's source address (Linux 6.0 and later). */
#define WEAVE_TUNNEL_KEY_SIZE_WITH_SOURCE \
	(offsetof(struct bpf_tunnel_key, local_ipv6) + sizeof(((struct bpf_tunnel_key *)0)->local_ipv6))

WEAVE_INLINE __u32 vni_encode(__u32 src_short_id, __u32 dst_short_id)
{
	return (src_short_id & WEAVE_SHORT_ID_MASK) |
	       ((dst_short_id & WEAVE_SHORT_ID_MASK) << WEAVE_SHORT_ID_BITS);
}

WEAVE_INLINE __u32 vni_source(__u32 vni)
{
	return vni & WEAVE_SHORT_ID_MASK;
}

WEAVE_INLINE __u32 vni_destination(__u32 vni)
{
	return (vni >> WEAVE_SHORT_ID_BITS) & WEAVE_SHORT_ID_MASK;
}

/* Outer header flags (spec §6.2: DF set, UDP checksum 0). Overridable at build
 * time only for benchmark experiments. */
#ifndef WEAVE_TUNNEL_FLAGS
#define WEAVE_TUNNEL_FLAGS (BPF_F_DONT_FRAGMENT | BPF_F_ZERO_CSUM_TX)
#endif

/* Attach TX metadata for the external VXLAN device: to the peer entry's
 * underlay address, from its local address when it names one. */
WEAVE_INLINE int set_tunnel(struct __sk_buff *skb, const struct weave_peer *to, __u32 vni)
{
	struct bpf_tunnel_key key = {};
	__u32 source = to->local_ip;

	key.remote_ipv4 = to->underlay_ip;
	key.tunnel_id = vni;
	key.tunnel_ttl = 64;
	if (source) {
		key.local_ipv4 = source;
		if (bpf_skb_set_tunnel_key(skb, &key, WEAVE_TUNNEL_KEY_SIZE_WITH_SOURCE, WEAVE_TUNNEL_FLAGS) == 0)
			return 0;
		/* A kernel before 6.0 takes no source address (EINVAL for the
		 * longer key): the route picks it, and an encrypted connection's
		 * marking rules drop what leaves from another address. */
		count(WC_TUNNEL_SOURCE_UNSUPPORTED);
	}
	return bpf_skb_set_tunnel_key(skb, &key, WEAVE_TUNNEL_KEY_SIZE, WEAVE_TUNNEL_FLAGS);
}

#endif
