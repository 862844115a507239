/*
 * hist.h: a log-linear latency histogram in the style of HdrHistogram.
 *
 * Why: latency percentiles (p50/p99/p99.9) must be recomputable after the
 * trial and mergeable across trials, at ~0.1 % precision, without keeping
 * every sample. Values are nanoseconds:
 *   - below 2048 ns every value has its own bucket (exact);
 *   - above, each power of two [2^e, 2^(e+1)) is split into 1024 equal
 *     sub-buckets, so a bucket is at most 1/1024 of its value wide;
 *   - the top is 2^40 ns (~18 min); larger values land in the last bucket
 *     (max stays exact).
 * Recording is a few instructions (inline, no division).
 */
#ifndef SERPENS_HIST_H
#define SERPENS_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 10
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)          /* 1024 */
#define HIST_EXACT_LIMIT (2u * HIST_SUB_COUNT)        /* 2048 */
#define HIST_MAX_BITS 40                              /* 2^40 ns */
#define HIST_NBUCKETS (HIST_EXACT_LIMIT + \
	(HIST_MAX_BITS - HIST_SUB_BITS - 1) * HIST_SUB_COUNT)

struct hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	uint64_t sum;
	uint64_t *buckets;      /* HIST_NBUCKETS counters */
};

/* Allocate the buckets; returns 0 or -1 (out of memory). */
int hist_init(struct hist *h);
void hist_free(struct hist *h);
void hist_reset(struct hist *h);

/* Bucket index of a value (exposed for tests). */
static inline unsigned int hist_index(uint64_t v)
{
	unsigned int e;

	if (v < HIST_EXACT_LIMIT)
		return (unsigned int)v;
	e = 63u - (unsigned int)__builtin_clzll(v);
	if (e >= HIST_MAX_BITS)
		return HIST_NBUCKETS - 1;
	return HIST_EXACT_LIMIT + (e - HIST_SUB_BITS - 1) * HIST_SUB_COUNT +
		(unsigned int)((v >> (e - HIST_SUB_BITS)) - HIST_SUB_COUNT);
}

static inline void hist_record(struct hist *h, uint64_t v)
{
	h->buckets[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

/* Lowest value that falls into bucket idx. */
uint64_t hist_bucket_lowest(unsigned int idx);
/* Value at quantile q (0..1): lowest value of the bucket holding the
 * ceil(q*count)-th sample, clamped to [min, max]; 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double q);
double hist_mean(const struct hist *h);
/* Add every sample of src into dst. */
void hist_merge(struct hist *dst, const struct hist *src);

#endif
