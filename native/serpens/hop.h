/*
 * hop.h: the one wake rule every hop uses (delivery.h's contract) — serpensd waking an instance or the
 * proxy, the proxy waking an NF's instance. A sleeper is woken once wake_batch packets wait on its ring or
 * the oldest has waited flush_us (paper Section IV-B2: the router's rule), so every hop of a chain pays
 * the same queueing; with a hand-off the waker gives its core to the sleeper and waits (futex on `done`)
 * until it went back to sleep, so two processes never busy-poll one core.
 */
#ifndef SERPENS_HOP_H
#define SERPENS_HOP_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_ring.h>

#include "ctl.h"

#define SP_HANDOFF_TIMEOUT_NS (20 * 1000 * 1000L)

/* Set in a sleeper's `done` word by a waker that is about to wait on it (sp_hop_wake with a hand-off), and
 * cleared by that waker when its wait is over. A sleeper that finds it clear when it bumps `done` skips
 * the futex wake: on a shared core the waker is usually preempted inside its own wake-up call (the woken
 * sleeper runs at once) and never reaches its wait, so the wake would be a system call that wakes nobody,
 * once per hand-off. The counter is the low bits; the bit is only ever set by compare-and-swap from the
 * value read before the wake-up, so a sleeper that bumped `done` first is never waited for. */
#define SP_DONE_WAITER 0x80000000u

struct sp_handoff_stats {
	uint64_t handoffs, timeouts, max_ns;
};

/* Queue n packets on a sleeper's ring (the caller is its only producer). *started becomes true if the ring
 * was empty: the flush clock of the oldest packet starts now, and the caller stamps it with a TSC it has at
 * hand (a TSC read costs ~20 ns in a VM). Returns how many were queued; the caller frees and counts the
 * rest. */
static inline unsigned int sp_hop_enqueue_started(struct rte_ring *r, struct rte_mbuf **m, unsigned int n,
						  bool *started)
{
	unsigned int was_empty = rte_ring_empty(r), k;

	k = rte_ring_sp_enqueue_burst(r, (void **)m, n, NULL);
	if (k && was_empty)
		*started = true;
	return k;
}

/* The same, stamping *pending_since with the TSC of now if the ring was empty. */
static inline unsigned int sp_hop_enqueue(struct rte_ring *r, struct rte_mbuf **m, unsigned int n,
					  uint64_t *pending_since)
{
	bool started = false;
	unsigned int k = sp_hop_enqueue_started(r, m, n, &started);

	if (started)
		*pending_since = rte_rdtsc();
	return k;
}

/* Packets on the ring are due for their consumer: wake_batch of them, or the oldest waited flush_tsc. */
static inline bool sp_hop_due(unsigned int count, uint64_t pending_since, uint64_t now, uint32_t wake_batch,
			      uint64_t flush_tsc)
{
	return count && (count >= wake_batch || now - pending_since >= flush_tsc);
}

/* The sleeper's side, on its way to sleep: it finished its work. Bumps `done`, and wakes a waker that
 * waits for it. */
static inline void sp_hop_done(struct sp_sleeper *s)
{
	if (__atomic_fetch_add(&s->done, 1, __ATOMIC_SEQ_CST) & SP_DONE_WAITER)
		sp_futex_wake(&s->done, 1);
}

/* The sleeper's own work, a TSC counter that grows while it runs (e.g. an instance's slot_work_cycles):
 * a hand-off's cost to the waker is the interval less that growth. */
typedef uint64_t (*sp_work_fn)(const void *arg);

/* Wake a sleeper that sleeps (false at once if it runs: it will find its packets). With handoff, wait
 * until it went back to sleep (SP_HANDOFF_TIMEOUT_NS at most, counted in hs). Adds to *cost the TSC time
 * this cost the waker: the wake-up call; with handoff the whole interval less the sleeper's work in it
 * (the wake-up, two context switches and the sleeper's way back to sleep: core time spent on its
 * behalf). */
bool sp_hop_wake(struct sp_sleeper *s, bool handoff, sp_work_fn work, const void *arg,
		 struct sp_handoff_stats *hs, uint64_t *cost);

#endif /* SERPENS_HOP_H */
