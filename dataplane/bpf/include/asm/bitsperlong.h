/* SPDX-License-Identifier: GPL-2.0 */
/* See asm/types.h: BPF is a 64-bit target, as the generic header assumes. */
#include <asm-generic/bitsperlong.h>
