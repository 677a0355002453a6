/* AMX: the tile data permission. */
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kernels/cpu/matmul_impl.h"

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

int cpu_amx_enable(void)
{
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("amx-int8"))
		return -ENOTSUP;
	if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA))
		return -errno;
	return 0;
}

const struct cpu_kernels cpu_kernels_amx = {
	.name = "amx",
};
