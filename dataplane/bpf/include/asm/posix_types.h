/* SPDX-License-Identifier: GPL-2.0 */
/* See asm/types.h: the generic header is what x86-64 uses for BPF. */
#include <asm-generic/posix_types.h>
