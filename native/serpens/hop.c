/* hop.c: waking a sleeper (hop.h), shared by serpensd's data plane and the local proxy. */
#include <errno.h>

#include <rte_cycles.h>

#include "hop.h"

bool sp_hop_wake(struct sp_sleeper *s, bool handoff, sp_work_fn work, const void *arg,
		 struct sp_handoff_stats *hs, uint64_t *cost)
{
	uint64_t t_wake, work0, t0, t1, ns, w;
	uint32_t done;

	if (!__atomic_load_n(&s->sleeping, __ATOMIC_SEQ_CST))
		return false;
	t_wake = rte_rdtsc();
	work0 = work(arg);
	done = __atomic_load_n(&s->done, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&s->doorbell, 1, __ATOMIC_SEQ_CST);
	sp_futex_wake(&s->doorbell, 1);
	if (!handoff) {
		*cost += rte_rdtsc() - t_wake;
		return true;
	}
	t0 = rte_rdtsc();
	/* announce the wait (SP_DONE_WAITER); if `done` moved already the sleeper has been and gone (it ran
	 * inside the wake-up call above) and there is nothing to wait for: no system call */
	if (__atomic_compare_exchange_n(&s->done, &done, done | SP_DONE_WAITER, false, __ATOMIC_SEQ_CST,
					__ATOMIC_SEQ_CST)) {
		if (sp_futex_wait(&s->done, done | SP_DONE_WAITER, SP_HANDOFF_TIMEOUT_NS) != 0 && errno == ETIMEDOUT)
			hs->timeouts++;
		__atomic_fetch_and(&s->done, ~SP_DONE_WAITER, __ATOMIC_SEQ_CST);
	}
	t1 = rte_rdtsc();
	ns = (t1 - t0) * 1000000000ull / rte_get_tsc_hz();
	hs->handoffs++;
	if (ns > hs->max_ns)
		hs->max_ns = ns;
	/* the woken process may already run inside the wake-up call (wake-up preemption), so its work is
	 * taken out of the whole interval */
	w = work(arg) - work0;
	*cost += t1 - t_wake > w ? t1 - t_wake - w : 0;
	return true;
}
