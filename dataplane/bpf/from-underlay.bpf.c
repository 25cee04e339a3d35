// SPDX-License-Identifier: GPL-2.0
/* tc ingress of the underlay interface: the receive fast path for fastdp
 * frames. A VXLAN frame on UDP 6784 addressed to one of this host's underlay
 * addresses, from a known peer, for a local container MAC, is decapsulated
 * here and delivered straight to the container, without passing the VXLAN
 * device. That device (collect_md) allocates a metadata dst for every received
 * packet and frees it through RCU; skipping it is what brings the fastdp to
 * the kernel's own VXLAN + bridge throughput.
 *
 * Everything else is passed on unchanged (TC_ACT_UNSPEC: the next filter, then
 * the stack), where the VXLAN device and weave_from_tunnel handle it exactly as
 * before: heartbeats, broadcasts, relays, non-IPv4 inner frames, frames with a
 * UDP checksum, IP options or fragments, unknown peers, senders other than
 * the peer's underlay address in the peer map. The control plane
 * lists no underlay address while IPsec is on: encrypted peers must never have
 * a plaintext frame accepted on this path. */
#include "weave_fdb.h"
#include "weave_tunnel.h"
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>

#define VXLAN_F_VNI_VALID 0x08000000u /* flags word: I bit (RFC 7348) */

struct vxlan_hdr {
	__be32 flags;
	__be32 vni; /* VNI in the top 24 bits, low byte reserved */
};

/* Outer Ethernet, IPv4 without options, UDP, VXLAN, then the inner Ethernet header. */
struct fastdp_frame {
	struct ethhdr outer_eth;
	struct iphdr ip;
	struct udphdr udp;
	struct vxlan_hdr vxlan;
	struct ethhdr inner_eth;
} __attribute__((packed));

#define ENCAP_LEN (sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct vxlan_hdr) + sizeof(struct ethhdr))

/* The one's complement of the sum of the 20-byte IPv4 header at `w` (2-byte
 * aligned: it follows the Ethernet header); 0 when its checksum is right. */
WEAVE_INLINE __u16 ipv4_header_csum(const __u16 *w)
{
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("tc")
int weave_from_underlay(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_UNSPEC;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct fastdp_frame *f = data;
	if ((void *)(f + 1) > data_end) {
		/* Headers not all in the linear part: pull them, unless the frame is
		 * simply too short to be ours. */
		if (skb->len < sizeof(*f) || bpf_skb_pull_data(skb, sizeof(*f)) < 0)
			return TC_ACT_UNSPEC;
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		f = data;
		if ((void *)(f + 1) > data_end)
			return TC_ACT_UNSPEC;
	}
	if (f->outer_eth.h_proto != bpf_htons(ETH_P_IP) || f->ip.version != 4 || f->ip.ihl != 5 ||
	    f->ip.protocol != IPPROTO_UDP || (f->ip.frag_off & bpf_htons(0x3fff)) != 0)
		return TC_ACT_UNSPEC;
	struct weave_underlay_addr *local = bpf_map_lookup_elem(&weave_underlay_addrs, &f->ip.daddr);
	if (!local || f->udp.dest != local->udp_port_be)
		return TC_ACT_UNSPEC;
	/* Frames with a UDP checksum, trailing padding or a bad header checksum
	 * take the stack's path, which checks what this one would not. */
	if (f->udp.check != 0 || bpf_ntohs(f->ip.tot_len) != skb->len - sizeof(struct ethhdr) ||
	    ipv4_header_csum((const __u16 *)((const __u8 *)f + sizeof(struct ethhdr))) != 0)
		return TC_ACT_UNSPEC;
	if (f->vxlan.flags != bpf_htonl(VXLAN_F_VNI_VALID) || (f->vxlan.vni & bpf_htonl(0xff)) != 0)
		return TC_ACT_UNSPEC;
	/* Only IPv4 inside: skb->protocol stays right without rewriting it. */
	if (f->inner_eth.h_proto != bpf_htons(ETH_P_IP) || is_multicast(f->inner_eth.h_dest))
		return TC_ACT_UNSPEC;

	struct weave_config *cfg = config();
	if (!cfg)
		return TC_ACT_UNSPEC;
	__u32 vni = bpf_ntohl(f->vxlan.vni) >> 8;
	__u32 src = vni_source(vni);
	/* From the address we send this peer's frames to (the peer, or our next
	 * hop towards it): anything else, e.g. a relay on an asymmetric path, is
	 * left to the device path. */
	if (vni_destination(vni) != cfg->local_short_id || src == cfg->local_short_id ||
	    peer_source_underlay(src) != bpf_ntohl(f->ip.saddr))
		return TC_ACT_UNSPEC;
	struct weave_local_port *port = local_port(f->inner_eth.h_dest);
	if (!port || local_port(f->inner_eth.h_source))
		return TC_ACT_UNSPEC;
	struct weave_local_port to = *port;

	if (cfg->flags & WEAVE_CFG_F_LEARN)
		learn_remote(f->inner_eth.h_source, src);
	struct ethhdr inner = f->inner_eth;
	/* Remove outer IP, UDP, VXLAN and the inner Ethernet header behind the
	 * outer Ethernet header, then write the inner one in its place. The GSO
	 * size is the inner segment size already: keep it. */
	if (bpf_skb_adjust_room(skb, -(__s32)ENCAP_LEN, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return drop(WC_DROP_DECAP);
	if (bpf_skb_store_bytes(skb, 0, &inner, sizeof(inner), 0) < 0)
		return drop(WC_DROP_DECAP);
	count(WC_FWD_FROM_UNDERLAY);
	return redirect_local(&to);
}

char LICENSE[] SEC("license") = "GPL";
