/*
 * loopstat.c: stall statistics of a busy-poll loop (see loopstat.h).
 */
#include "loopstat.h"
#include "report.h"

void loopstat_init(struct loopstat *l, uint64_t hz, uint64_t now)
{
	l->prev = now;
	l->hz = hz;
	l->threshold = hz * LOOPSTAT_THRESHOLD_US / 1000000u;
	l->count = 0;
	l->total = 0;
	l->max = 0;
}

json_t *loopstat_json(const struct loopstat *l)
{
	json_t *o = json_object();
	double hz = l->hz ? (double)l->hz : 1.0;

	report_set(o, "threshold_us", json_integer(LOOPSTAT_THRESHOLD_US));
	report_set(o, "count", report_u64(l->count));
	report_set(o, "total_ms", json_real((double)l->total * 1e3 / hz));
	report_set(o, "max_us", json_real((double)l->max * 1e6 / hz));
	return o;
}
