/*
 * state_stats.c: see state_stats.h.
 */
#include "state_stats.h"

/* One kind of pause over every tenant's region: counts and totals add up, maxima are the largest, the
 * last is the one that ended last. */
static json_t *pause_json(struct sm_region *const *r, unsigned int n, enum sm_hook_kind k)
{
	struct sm_pause_stats p = {0}, q;
	unsigned int i;

	for (i = 0; i < n; i++) {
		sm_pause_stats(r[i], k, &q);
		p.count += q.count;
		p.total_ns += q.total_ns;
		p.wait_total_ns += q.wait_total_ns;
		if (q.max_ns > p.max_ns)
			p.max_ns = q.max_ns;
		if (q.wait_max_ns > p.wait_max_ns)
			p.wait_max_ns = q.wait_max_ns;
		if (q.count && q.last_at_ns >= p.last_at_ns) {
			p.last_at_ns = q.last_at_ns;
			p.last_ns = q.last_ns;
		}
	}
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "count", (json_int_t)p.count, "last_us",
			 (double)p.last_ns / 1e3, "max_us", (double)p.max_ns / 1e3, "mean_us",
			 p.count ? (double)p.total_ns / 1e3 / (double)p.count : 0.0,
			 /* the part spent waiting for instances to finish the batch they were in */
			 "wait_mean_us", p.count ? (double)p.wait_total_ns / 1e3 / (double)p.count : 0.0,
			 "wait_max_us", (double)p.wait_max_ns / 1e3);
}

json_t *state_stats_regions(struct sm_region *const *r, unsigned int n, uint32_t backend)
{
	return json_pack("{s:s, s:{s:o, s:o, s:o}}", "backend", rs_backend_name((enum rs_backend)backend),
			 "pauses", "split", pause_json(r, n, SM_HOOK_SPLIT), "merge", pause_json(r, n, SM_HOOK_MERGE),
			 "update", pause_json(r, n, SM_HOOK_UPDATE));
}

json_t *state_stats_region(struct sm_region *r, uint32_t backend) { return state_stats_regions(&r, 1, backend); }

json_t *state_stats_instance(const struct sp_instance *in)
{
	const struct rs_stats *s = &in->remote;
	double b = s->batches ? (double)s->batches : 1.0;

	return json_pack("{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f}}", "remote", "batches",
			 (json_int_t)s->batches, "round_trips", (json_int_t)s->round_trips, "ops",
			 (json_int_t)s->ops, "prefetched", (json_int_t)s->prefetched, "hits", (json_int_t)s->hits,
			 "misses", (json_int_t)s->misses, "writes", (json_int_t)s->writes, "us",
			 (double)s->ns / 1e3, "us_per_batch", (double)s->ns / 1e3 / b, "round_trips_per_batch",
			 (double)s->round_trips / b, "last_batch_us", (double)s->last_batch_ns / 1e3,
			 "max_batch_us", (double)s->max_batch_ns / 1e3);
}
