/* SPDX-License-Identifier: GPL-2.0 */
/* -target bpf has no multiarch include directory, so <linux/types.h> cannot
 * find the architecture's asm/types.h. The generic one is what x86-64 uses. */
#include <asm-generic/types.h>
