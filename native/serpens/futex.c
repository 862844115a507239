/* futex.c: wait/wake on 32-bit words in shared memory (serpensd and its runtimes use them to sleep and
 * wake instances; not FUTEX_PRIVATE: the words live in a memzone mapped by several processes). */
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"

int sp_futex_wait(uint32_t *addr, uint32_t val, long timeout_ns)
{
	struct timespec ts = {.tv_sec = timeout_ns / 1000000000L, .tv_nsec = timeout_ns % 1000000000L};

	return (int)syscall(SYS_futex, addr, FUTEX_WAIT, val, timeout_ns > 0 ? &ts : NULL, NULL, 0);
}

int sp_futex_wake(uint32_t *addr, int n)
{
	return (int)syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
}
