/*
 * dp_guard.c: munmap() interposer that waits for the data-plane loop to be
 * quiescent (see dp_guard.h for why).
 */
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dp_guard.h"

uint64_t dp_guard_epoch;
static int dp_guard_armed;
static pthread_t dp_guard_thread;

void dp_guard_arm(void)
{
	dp_guard_thread = pthread_self();
	__atomic_store_n(&dp_guard_armed, 1, __ATOMIC_SEQ_CST);
}

void dp_guard_disarm(void)
{
	__atomic_store_n(&dp_guard_armed, 0, __ATOMIC_SEQ_CST);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wait until the loop bumps the epoch (it finished its current iteration)
 * or the guard is disarmed, at most DP_GUARD_WAIT_MS. */
static void dp_guard_wait(void)
{
	uint64_t e0, deadline;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	e0 = __atomic_load_n(&dp_guard_epoch, __ATOMIC_SEQ_CST);
	deadline = mono_ns() + DP_GUARD_WAIT_MS * 1000000ull;
	while (__atomic_load_n(&dp_guard_armed, __ATOMIC_SEQ_CST) &&
	       __atomic_load_n(&dp_guard_epoch, __ATOMIC_SEQ_CST) == e0 &&
	       mono_ns() < deadline)
		sched_yield();  /* we may share the CPU with the loop */
}

int munmap(void *addr, size_t len)
{
	if (__atomic_load_n(&dp_guard_armed, __ATOMIC_SEQ_CST) &&
	    !pthread_equal(pthread_self(), dp_guard_thread))
		dp_guard_wait();
	return (int)syscall(SYS_munmap, addr, len);
}
