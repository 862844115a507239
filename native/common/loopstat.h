/*
 * loopstat.h: detects stalls of a busy-poll loop (gaps between iterations).
 *
 * Why: the harness runs on small shared VMs where a vCPU can be descheduled
 * for milliseconds; a DUT-side drop caused by such a stall is not the NF's
 * fault. Each loop iteration records the TSC; gaps longer than
 * LOOPSTAT_THRESHOLD_US are counted, summed and the longest kept, and the
 * numbers go into the report so a noisy trial can be recognised.
 */
#ifndef SERPENS_LOOPSTAT_H
#define SERPENS_LOOPSTAT_H

#include <stdint.h>

#include <jansson.h>

#define LOOPSTAT_THRESHOLD_US 50

struct loopstat {
	uint64_t prev;
	uint64_t threshold;     /* in TSC ticks */
	uint64_t count;
	uint64_t total;
	uint64_t max;
	uint64_t hz;
};

void loopstat_init(struct loopstat *l, uint64_t hz, uint64_t now);

static inline void loopstat_tick(struct loopstat *l, uint64_t now)
{
	uint64_t d = now - l->prev;

	l->prev = now;
	if (__builtin_expect(d >= l->threshold, 0)) {
		l->count++;
		l->total += d;
		if (d > l->max)
			l->max = d;
	}
}

/* {"threshold_us", "count", "total_ms", "max_us"} */
json_t *loopstat_json(const struct loopstat *l);

#endif
