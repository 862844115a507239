/*
 * pace.h: the schedule of one serpens-gen stream, and what happens to the
 * packets the generator could not send on time.
 *
 * Why a file of its own: this arithmetic decides which packets count as
 * sent, which as skipped, and how large a burst the device under test can
 * see after the generator was descheduled. It is pure (no DPDK), so
 * test_pace.c pins it without a port.
 *
 * The schedule: packet k of a stream is due at start + k / rate. At TSC
 * `now`, due(now) packets should have left. `done` counts the packets of
 * the schedule already accounted for (sent, or skipped); due - done are
 * owed. Owed packets are sent a burst per loop iteration, so a short
 * hiccup is caught up at once. But the generator never owes more than
 * `cap` packets (its catch-up bound, --catchup-us worth, at least one
 * burst): beyond that the oldest owed packets are skipped, not sent, and
 * counted by cause:
 *
 *   skipped_stall: the loop iteration that found them came after a gap of
 *     at least the loop-stall threshold, so the generator was descheduled;
 *     at most the packets that fell due during that gap are charged to it;
 *   skipped_slow: the rest; the generator runs but cannot keep the rate
 *     (a real shortfall of offered load).
 *
 * Without the bound, a generator descheduled for 5 ms at 4 Mpps would fire
 * 20 000 packets at the DUT as fast as its loop goes, overflow the DUT's
 * receive ring, and report the overflow as DUT loss.
 *
 * Bursts (TRex's single_burst and multi_burst modes): a stream may have a
 * total; due() never exceeds it, so the stream ends when its packets are
 * sent or skipped. A multi-burst stream sends `ppb` packets at the rate,
 * then leaves a gap of ibg after a burst's last packet before the next
 * burst's first (TRex's stream node adds ibg instead of one packet
 * interval), so burst b starts `period` = (ppb - 1) / rate + ibg after
 * burst b - 1.
 */
#ifndef SERPENS_GEN_PACE_H
#define SERPENS_GEN_PACE_H

#include <stdint.h>

struct pace {
	double per_tsc;         /* packets per TSC tick */
	uint64_t start;         /* TSC at which packet 0 is due */
	uint64_t total;         /* packets in the schedule (0: no end) */
	uint64_t ppb;           /* multi-burst: packets per burst (else 0) */
	uint64_t period;        /* multi-burst: TSC ticks from burst to burst */
	uint64_t done;          /* packets of the schedule accounted for */
	uint64_t cap;           /* most packets ever owed (>= 1 burst) */
	uint64_t skipped_stall;
	uint64_t skipped_slow;
	uint64_t backlog_max;   /* most packets owed at one iteration, after the skip */
};

/* Packets of the schedule due by TSC now. */
static inline uint64_t pace_due(const struct pace *p, uint64_t now)
{
	uint64_t t, b, in, due;

	if (now <= p->start)
		return 0;
	t = now - p->start;
	if (__builtin_expect(p->period == 0, 1)) {
		due = (uint64_t)((double)t * p->per_tsc);
	} else {
		b = t / p->period;
		in = (uint64_t)((double)(t - b * p->period) * p->per_tsc);
		due = b * p->ppb + (in < p->ppb ? in : p->ppb);
	}
	return p->total == 0 || due < p->total ? due : p->total;
}

/* TSC at which the packet after the `done` ones falls due (UINT64_MAX when
 * the schedule has no more). */
static inline uint64_t pace_next(const struct pace *p)
{
	uint64_t k = p->done, b;

	if (p->total != 0 && k >= p->total)
		return UINT64_MAX;
	if (p->period == 0)
		return p->start + (uint64_t)((double)(k + 1) / p->per_tsc);
	b = k / p->ppb;
	return p->start + b * p->period +
		(uint64_t)((double)(k - b * p->ppb + 1) / p->per_tsc);
}

/* Set the schedule's shape: total packets (0: no end) and, for multi-burst
 * streams, packets per burst and the inter-burst gap in TSC ticks (ppb 0:
 * one stretch at the rate). per_tsc must be set. */
static inline void pace_shape(struct pace *p, uint64_t total, uint64_t ppb,
			      uint64_t ibg_tsc)
{
	p->total = total;
	p->ppb = 0;
	p->period = 0;
	if (ppb == 0 || total == 0 || total <= ppb)
		return;
	p->ppb = ppb;
	p->period = (uint64_t)((double)(ppb - 1) / p->per_tsc) + ibg_tsc;
	if (p->period == 0)
		p->period = 1;
}

/* Skip what is owed beyond the cap (gap: TSC ticks since the previous loop
 * iteration; stalled: gap reached the loop-stall threshold). Returns the
 * packets still owed, at most cap. */
static inline uint64_t pace_owed(struct pace *p, uint64_t due, uint64_t gap,
				 int stalled)
{
	uint64_t owed, excess, stall = 0;

	if (due <= p->done)
		return 0;
	owed = due - p->done;
	if (__builtin_expect(owed > p->cap, 0)) {
		excess = owed - p->cap;
		if (stalled) {
			/* +1: due() rounds down at both ends of the gap */
			stall = (uint64_t)((double)gap * p->per_tsc) + 1;
			if (stall > excess)
				stall = excess;
		}
		p->skipped_stall += stall;
		p->skipped_slow += excess - stall;
		p->done += excess;
		owed = p->cap;
	}
	if (owed > p->backlog_max)
		p->backlog_max = owed;
	return owed;
}

/* The catch-up bound of a stream of `pps` packets/s: catchup_us worth of
 * its packets, at least one burst. */
static inline uint64_t pace_cap(double pps, double catchup_us,
				unsigned int burst)
{
	uint64_t cap = (uint64_t)(pps * catchup_us * 1e-6);

	return cap > burst ? cap : burst;
}

#endif
