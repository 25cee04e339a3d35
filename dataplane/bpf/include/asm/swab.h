/* SPDX-License-Identifier: GPL-2.0 */
/* See asm/types.h: the generic byte swaps (no x86 inline assembly in BPF). */
#include <asm-generic/swab.h>
