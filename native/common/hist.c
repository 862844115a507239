/*
 * hist.c: log-linear latency histogram (see hist.h for the layout and why).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

int hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
	h->buckets = calloc(HIST_NBUCKETS, sizeof(*h->buckets));
	if (h->buckets == NULL)
		return -1;
	h->min = UINT64_MAX;
	return 0;
}

void hist_free(struct hist *h)
{
	free(h->buckets);
	h->buckets = NULL;
}

void hist_reset(struct hist *h)
{
	memset(h->buckets, 0, HIST_NBUCKETS * sizeof(*h->buckets));
	h->count = 0;
	h->sum = 0;
	h->max = 0;
	h->min = UINT64_MAX;
}

uint64_t hist_bucket_lowest(unsigned int idx)
{
	unsigned int k, e;
	uint64_t sub;

	if (idx < HIST_EXACT_LIMIT)
		return idx;
	k = idx - HIST_EXACT_LIMIT;
	e = k / HIST_SUB_COUNT + HIST_SUB_BITS + 1;
	sub = (uint64_t)(k % HIST_SUB_COUNT) + HIST_SUB_COUNT;
	return sub << (e - HIST_SUB_BITS);
}

uint64_t hist_percentile(const struct hist *h, double q)
{
	uint64_t target, seen = 0, v;
	unsigned int i;

	if (h->count == 0)
		return 0;
	if (q <= 0.0)
		return h->min;
	target = (uint64_t)ceil(q * (double)h->count);
	if (target < 1)
		target = 1;
	if (target >= h->count)
		return h->max;
	for (i = 0; i < HIST_NBUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= target)
			break;
	}
	v = hist_bucket_lowest(i < HIST_NBUCKETS ? i : HIST_NBUCKETS - 1);
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

double hist_mean(const struct hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	unsigned int i;

	for (i = 0; i < HIST_NBUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->count && src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}
