/* SPDX-License-Identifier: GPL-2.0 */
/* See asm/types.h: BPF objects are built little-endian (x86-64's order), and
 * <linux/ip.h> picks its bitfield order from this header. */
#include <linux/byteorder/little_endian.h>
