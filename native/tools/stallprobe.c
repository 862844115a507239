/*
 * stallprobe.c: serpens-stallprobe, the machine's own floor. A busy loop pinned
 * to one CPU reads the TSC as fast as it can for N seconds; every gap of 10 µs
 * or more between two reads is time the CPU was taken away from it (a host
 * preempting the vCPU, the guest kernel running something else, an interrupt).
 * It prints one JSON object: a histogram of the gaps, the longest ones, and the
 * share of the time lost.
 *
 *   serpens-stallprobe --cpu N --seconds S
 *
 * Why C and not Python: an interpreter's own pauses (allocation, the GIL's
 * switch interval) would be counted as the machine's. Why no DPDK EAL: the
 * probe must measure the machine, not a DPDK start-up; only the inline TSC read
 * (rte_cycles.h) is used. The TSC is calibrated against CLOCK_MONOTONIC twice: a
 * short calibration before the loop sets the gap threshold and the histogram's
 * edges in TSC ticks, and the whole run (both clocks read at its start and end)
 * gives the rate that converts the results. Both rates are reported.
 *
 * harness/floor.py runs it on each vCPU one after another (docs/machine-floor.md).
 * Exit 0 on success, 1 if it could not run (e.g. pinning failed), 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <rte_cycles.h>

#include "args.h"

#define PROBE_MAX_SECONDS 600.0
#define PROBE_CALIBRATION_NS 20000000ull  /* 20 ms of busy waiting for the first TSC rate */
#define PROBE_PAIR_MAX_NS 2000            /* a TSC/monotonic pair read slower than this is retried */
#define PROBE_LONGEST 8                   /* longest gaps reported with their time */

/* Histogram edges in µs (a 1-2-5 series); the first is the gap threshold. The last bucket is open. */
static const double edges_us[] = {10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000};
#define PROBE_BUCKETS (sizeof(edges_us) / sizeof(edges_us[0]))

struct gap {
	uint64_t at;    /* TSC ticks since the loop started */
	uint64_t len;   /* TSC ticks */
};

struct probe {
	uint64_t edges[PROBE_BUCKETS];   /* edges_us in TSC ticks (calibration rate) */
	uint64_t count[PROBE_BUCKETS];
	uint64_t lost[PROBE_BUCKETS];    /* TSC ticks lost in each bucket's gaps */
	struct gap longest[PROBE_LONGEST];
	uint64_t loops;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: serpens-stallprobe --cpu N --seconds S\n"
		   "  pins itself to CPU N, busy-loops on the TSC for S seconds (0 < S <= %.0f)\n"
		   "  and prints the gaps >= %.0f us it saw as JSON on stdout\n",
		PROBE_MAX_SECONDS, edges_us[0]);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * One TSC reading and the monotonic time it was taken at. The TSC is read
 * between two clock reads, which are retried while they are far apart: a stall
 * between the two would otherwise shift the calibration by the stall.
 */
static void read_pair(uint64_t *tsc, uint64_t *ns)
{
	for (int i = 0; i < 1000; i++) {
		uint64_t a = mono_ns();
		uint64_t t = rte_rdtsc();
		uint64_t b = mono_ns();

		*tsc = t;
		*ns = a + (b - a) / 2;
		if (b - a <= PROBE_PAIR_MAX_NS)
			return;
	}
}

static double tsc_hz_between(uint64_t t0, uint64_t n0, uint64_t t1, uint64_t n1)
{
	return (double)(t1 - t0) * 1e9 / (double)(n1 - n0);
}

static int tsc_invariant(void)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned int a, b, c, d;

	if (__get_cpuid(0x80000007, &a, &b, &c, &d))
		return (d >> 8) & 1;   /* CPUID.80000007H:EDX[8]: invariant TSC */
	return 0;
#else
	return -1;
#endif
}

static void keep_longest(struct probe *p, uint64_t at, uint64_t len)
{
	unsigned int min = 0;

	for (unsigned int i = 1; i < PROBE_LONGEST; i++)
		if (p->longest[i].len < p->longest[min].len)
			min = i;
	if (len > p->longest[min].len) {
		p->longest[min].at = at;
		p->longest[min].len = len;
	}
}

/* The busy loop: only compares on the common path; a gap is binned where it is seen. */
static void run(struct probe *p, uint64_t start, uint64_t end)
{
	uint64_t prev = start, threshold = p->edges[0], loops = 0;

	for (;;) {
		uint64_t now = rte_rdtsc();
		uint64_t d = now - prev;

		if (__builtin_expect(d >= threshold, 0)) {
			unsigned int b = PROBE_BUCKETS - 1;

			while (d < p->edges[b])
				b--;
			p->count[b]++;
			p->lost[b] += d;
			keep_longest(p, prev - start, d);
		}
		prev = now;
		loops++;
		if (__builtin_expect(now >= end, 0))
			break;
	}
	p->loops = loops;
}

static int cmp_gap_at(const void *a, const void *b)
{
	const struct gap *x = a, *y = b;

	return (x->at > y->at) - (x->at < y->at);
}

static void print_json(const struct probe *p, unsigned int cpu, double seconds, double hz, double hz_cal,
		       int cpu_at_end, const struct rusage *r0, const struct rusage *r1)
{
	uint64_t gaps = 0, lost = 0, max = 0;
	struct gap longest[PROBE_LONGEST];
	unsigned int n = 0;

	for (unsigned int b = 0; b < PROBE_BUCKETS; b++) {
		gaps += p->count[b];
		lost += p->lost[b];
	}
	for (unsigned int i = 0; i < PROBE_LONGEST; i++) {
		if (p->longest[i].len > max)
			max = p->longest[i].len;
		if (p->longest[i].len > 0)
			longest[n++] = p->longest[i];
	}
	qsort(longest, n, sizeof(longest[0]), cmp_gap_at);

	printf("{\"tool\": \"serpens-stallprobe\", \"cpu\": %u, \"cpu_at_end\": %d, \"probe_s\": %.6f, "
	       "\"tsc_hz\": %.0f, \"tsc_hz_calibration\": %.0f, \"tsc_invariant\": %s, "
	       "\"threshold_us\": %.0f, \"loops\": %llu, \"gaps\": %llu, \"lost_s\": %.6f, "
	       "\"lost_ratio\": %.6f, \"max_gap_us\": %.3f, \"involuntary_switches\": %ld, "
	       "\"voluntary_switches\": %ld,\n \"buckets\": [",
	       cpu, cpu_at_end, seconds, hz, hz_cal,
	       tsc_invariant() == 1 ? "true" : tsc_invariant() == 0 ? "false" : "null",
	       edges_us[0], (unsigned long long)p->loops, (unsigned long long)gaps, (double)lost / hz,
	       (double)lost / hz / seconds, (double)max * 1e6 / hz,
	       r1->ru_nivcsw - r0->ru_nivcsw, r1->ru_nvcsw - r0->ru_nvcsw);
	for (unsigned int b = 0; b < PROBE_BUCKETS; b++) {
		printf("%s\n  {\"lo_us\": %.0f, \"hi_us\": ", b ? "," : "", edges_us[b]);
		if (b + 1 < PROBE_BUCKETS)
			printf("%.0f", edges_us[b + 1]);
		else
			printf("null");
		printf(", \"count\": %llu, \"lost_us\": %.3f}", (unsigned long long)p->count[b],
		       (double)p->lost[b] * 1e6 / hz);
	}
	printf("],\n \"longest\": [");
	for (unsigned int i = 0; i < n; i++)
		printf("%s{\"at_s\": %.6f, \"gap_us\": %.3f}", i ? ", " : "", (double)longest[i].at / hz,
		       (double)longest[i].len * 1e6 / hz);
	printf("]}\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"cpu", required_argument, NULL, 'c'}, {"seconds", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	uint64_t cpu = UINT64_MAX;
	double seconds = 0;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			if (arg_u64(optarg, 0, CPU_SETSIZE - 1, &cpu) < 0) {
				fprintf(stderr, "serpens-stallprobe: --cpu %s: expected a CPU number\n", optarg);
				return 2;
			}
			break;
		case 's':
			if (arg_double(optarg, 1e-3, PROBE_MAX_SECONDS, &seconds) < 0) {
				fprintf(stderr, "serpens-stallprobe: --seconds %s: expected a number of seconds in "
					"(0, %.0f]\n", optarg, PROBE_MAX_SECONDS);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (cpu == UINT64_MAX || seconds == 0 || optind != argc) {
		usage(stderr);
		return 2;
	}

	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET((int)cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		fprintf(stderr, "serpens-stallprobe: cannot pin to CPU %llu: %s (is it online and allowed?)\n",
			(unsigned long long)cpu, strerror(errno));
		return 1;
	}
	sched_yield();   /* let the scheduler move us there before the clocks are read */

	static struct probe p;
	uint64_t t0, n0, t1, n1;

	read_pair(&t0, &n0);
	while (mono_ns() - n0 < PROBE_CALIBRATION_NS)
		;
	read_pair(&t1, &n1);
	double hz_cal = tsc_hz_between(t0, n0, t1, n1);

	for (unsigned int b = 0; b < PROBE_BUCKETS; b++)
		p.edges[b] = (uint64_t)(edges_us[b] * hz_cal / 1e6);

	struct rusage r0, r1;
	uint64_t start, start_ns, end, end_ns;

	getrusage(RUSAGE_THREAD, &r0);
	read_pair(&start, &start_ns);
	run(&p, start, start + (uint64_t)(seconds * hz_cal));
	read_pair(&end, &end_ns);
	getrusage(RUSAGE_THREAD, &r1);

	print_json(&p, (unsigned int)cpu, (double)(end_ns - start_ns) / 1e9,
		   tsc_hz_between(start, start_ns, end, end_ns), hz_cal, sched_getcpu(), &r0, &r1);
	return fflush(stdout) == 0 ? 0 : 1;
}
