/*
 * tschz.c: serpens-tschz, the TSC frequency the kernel converts the TSC with, for harness/tsc.py when the
 * kernel log no longer holds its calibration line (the ring buffer of a long-running machine wraps).
 *
 * When the kernel's clocksource is the TSC, CLOCK_MONOTONIC_RAW is the TSC scaled by the kernel's own
 * mult/shift, which it computed from its calibrated tsc_khz (and never adjusts, unlike CLOCK_MONOTONIC).
 * So TSC ticks over CLOCK_MONOTONIC_RAW nanoseconds is the kernel's calibration, to within the rounding of
 * mult (< 1 ppm) and of pairing a TSC read with a clock read (~100 ns over each 50 ms window: 2 ppm). Not
 * DPDK's estimate, which sleeps and rounds to 10 MHz.
 *
 * Prints the frequency in Hz (the median of 5 windows of 50 ms) and exits 0; exits 1 with one line on
 * stderr when the clocksource is not the TSC (then CLOCK_MONOTONIC_RAW says nothing about it).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#define CLOCKSOURCE "/sys/devices/system/clocksource/clocksource0/current_clocksource"
#define WINDOWS 5
#define WINDOW_NS 50000000ull

static uint64_t raw_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_RAW, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* A TSC read and a clock read taken as close together as this process can: the pair whose clock read took
 * the least time of a few tries. */
static void pair(uint64_t *tsc, uint64_t *ns)
{
	uint64_t best = UINT64_MAX;
	int i;

	for (i = 0; i < 8; i++) {
		uint64_t t0 = __rdtsc(), n = raw_ns(), t1 = __rdtsc();

		if (t1 - t0 < best) {
			best = t1 - t0;
			*tsc = t0 + (t1 - t0) / 2;
			*ns = n;
		}
	}
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(void)
{
	char source[64] = "";
	double hz[WINDOWS];
	FILE *f = fopen(CLOCKSOURCE, "r");
	int i;

	if (!f || !fgets(source, sizeof(source), f)) {
		fprintf(stderr, "serpens-tschz: cannot read %s\n", CLOCKSOURCE);
		return 1;
	}
	fclose(f);
	source[strcspn(source, "\n")] = '\0';
	if (strcmp(source, "tsc") != 0) {
		fprintf(stderr, "serpens-tschz: the kernel's clocksource is %s, not tsc\n", source);
		return 1;
	}
	for (i = 0; i < WINDOWS; i++) {
		uint64_t t0 = 0, n0 = 0, t1 = 0, n1 = 0;
		struct timespec nap = {0, (long)WINDOW_NS};

		pair(&t0, &n0);
		nanosleep(&nap, NULL);
		pair(&t1, &n1);
		hz[i] = (double)(t1 - t0) * 1e9 / (double)(n1 - n0);
	}
	qsort(hz, WINDOWS, sizeof(hz[0]), cmp);
	printf("%.0f\n", hz[WINDOWS / 2]);
	return 0;
}
