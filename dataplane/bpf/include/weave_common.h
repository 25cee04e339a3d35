/* SPDX-License-Identifier: GPL-2.0 */
/* Shared includes and small definitions for every weave tc program.
 *
 * Built against the linux uapi headers and libbpf's bpf_helpers.h only (no
 * generated vmlinux.h): the programs touch nothing but __sk_buff, ethhdr and
 * bpf_tunnel_key, which are stable uapi, so the build needs no BTF of the build
 * host and the object loads on any kernel with the helpers used. */
#ifndef WEAVE_COMMON_H
#define WEAVE_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <stddef.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define WEAVE_INLINE static __always_inline

/* Short peer ids are 12 bits (spec §4.8, §6.2). */
#define WEAVE_SHORT_ID_BITS 12
#define WEAVE_MAX_SHORT_IDS (1 << WEAVE_SHORT_ID_BITS)
#define WEAVE_SHORT_ID_MASK (WEAVE_MAX_SHORT_IDS - 1)

/* Constant loop bounds keep the verifier's path count small (never bound a loop
 * only by a value read from a map). */
#define WEAVE_MAX_LOCAL_PORTS 64
#define WEAVE_MAX_BCAST_HOPS 32

#endif
