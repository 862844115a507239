/*
 * test_hist.c: unit test of the latency histogram (run by `meson test`).
 *
 * Why: the percentiles in every report come from these buckets; this checks
 * that values below 2048 ns are exact, that each bucket is at most ~0.1 %
 * wide, that indices are monotonic and cover 100 s, and that percentiles land
 * where they should.
 */
#include <stdio.h>
#include <stdlib.h>

#include "hist.h"

static int failures;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		failures++; \
	} \
} while (0)

static void test_exact(void)
{
	uint64_t v;

	for (v = 0; v < HIST_EXACT_LIMIT; v++) {
		CHECK(hist_index(v) == v, "index(%lu)", (unsigned long)v);
		CHECK(hist_bucket_lowest(hist_index(v)) == v, "lowest(%lu)",
		      (unsigned long)v);
	}
}

static void test_precision(void)
{
	uint64_t v, lo;
	unsigned int prev = 0, idx;

	for (v = 1; v < 100000000000ull; v = v * 1.0007 + 1) {
		idx = hist_index(v);
		lo = hist_bucket_lowest(idx);
		CHECK(idx >= prev, "monotonic at %lu", (unsigned long)v);
		CHECK(lo <= v, "lowest %lu > v %lu", (unsigned long)lo,
		      (unsigned long)v);
		CHECK((double)(v - lo) <= (double)v / 1000.0,
		      "precision at %lu (lowest %lu)", (unsigned long)v,
		      (unsigned long)lo);
		CHECK(idx < HIST_NBUCKETS - 1, "100 s fits (%lu)",
		      (unsigned long)v);
		prev = idx;
	}
	CHECK(hist_index(UINT64_MAX) == HIST_NBUCKETS - 1, "clamp");
}

static void test_percentiles(void)
{
	struct hist h;
	uint64_t i, p50, p99;

	if (hist_init(&h) != 0) {
		failures++;
		return;
	}
	for (i = 1; i <= 100000; i++)
		hist_record(&h, i * 10);  /* 10 ns .. 1 ms, uniform */
	p50 = hist_percentile(&h, 0.5);
	p99 = hist_percentile(&h, 0.99);
	CHECK(h.count == 100000 && h.min == 10 && h.max == 1000000, "stats");
	CHECK(p50 >= 499000 && p50 <= 500010, "p50 %lu", (unsigned long)p50);
	CHECK(p99 >= 989000 && p99 <= 990010, "p99 %lu", (unsigned long)p99);
	CHECK(hist_percentile(&h, 1.0) == 1000000, "p100");
	CHECK(hist_mean(&h) > 500004 && hist_mean(&h) < 500006, "mean");
	hist_free(&h);
}

int main(void)
{
	test_exact();
	test_precision();
	test_percentiles();
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("hist: ok (%u buckets)\n", HIST_NBUCKETS);
	return 0;
}
