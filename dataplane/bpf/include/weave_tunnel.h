/* SPDX-License-Identifier: GPL-2.0 */
/* VXLAN tunnel metadata in Weave's fastdp encoding (spec §6.2):
 * VNI bits 0-11 = short id of the source peer (where the frame entered the
 * overlay), bits 12-23 = short id of the destination peer (for broadcasts the
 * next-hop neighbour); outer TTL 64, DF set, UDP checksum 0. */
#ifndef WEAVE_TUNNEL_H
#define WEAVE_TUNNEL_H

#include "weave_common.h"

/* The key size before local_ipv4 was added: accepted by every kernel that has
 * tunnel keys, including ones older than the uapi header we build against. */
#define WEAVE_TUNNEL_KEY_SIZE offsetof(struct bpf_tunnel_key, local_ipv4)

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

/* Attach TX metadata for the external VXLAN device. underlay_ip is host order. */
WEAVE_INLINE int set_tunnel(struct __sk_buff *skb, __u32 underlay_ip, __u32 vni)
{
	struct bpf_tunnel_key key = {};

	key.remote_ipv4 = underlay_ip;
	key.tunnel_id = vni;
	key.tunnel_ttl = 64;
	return bpf_skb_set_tunnel_key(skb, &key, WEAVE_TUNNEL_KEY_SIZE, WEAVE_TUNNEL_FLAGS);
}

#endif
