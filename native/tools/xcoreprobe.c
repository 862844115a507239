/*
 * xcoreprobe.c: serpens-xcoreprobe, how long a cache line takes to go from one vCPU to another and back.
 *
 * Why: on this machine kind (a 2-vCPU KVM guest) the host places the two vCPUs near each other or far
 * apart, and moves them: a round trip is ~100 ns in one placement and ~340 ns in the other, and it flips
 * between them within seconds. Everything the generator and a platform share over memif crosses that
 * path (the rings' indices, descriptors and packet buffers), so serpensd's receive and transmit cost
 * ~60 ns/packet more in the far placement: the gateway's "two modes" (docs/serpens-dataplane.md,
 * "Per-packet cost"). scripts/perpacket.py runs this around each block so that its trials can be read
 * apart by placement.
 *
 * Two threads, pinned to CPU A and CPU B (default 0 and 1), pass a counter back and forth through one
 * cache line. Prints the median round trip in ns over 9 windows of 20 000 round trips (~30 ms in all) and
 * exits 0; one line on stderr and exit 1 if a thread cannot run on its CPU. Both CPUs busy-poll meanwhile: run
 * it where nothing else runs (the harness's run lock).
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOWS 9
#define TRIPS 20000

static volatile uint64_t line[8] __attribute__((aligned(64)));

static void set_cpu(cpu_set_t *s, int cpu)
{
	CPU_ZERO(s);
	CPU_SET(cpu, s);
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* B answers every odd value with the next even one, until A's last trip. */
static void *answer(void *arg)
{
	uint64_t i;

	(void)arg;
	for (i = 1; i <= (uint64_t)WINDOWS * TRIPS; i++) {
		while (line[0] != 2 * i - 1)
			;
		line[0] = 2 * i;
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	uint64_t rtt[WINDOWS], i = 0, t0;
	int cpu_a = argc > 1 ? atoi(argv[1]) : 0, cpu_b = argc > 2 ? atoi(argv[2]) : 1, w;
	pthread_attr_t attr;
	cpu_set_t s;
	pthread_t t;

	if (argc > 3 || cpu_a == cpu_b || cpu_a < 0 || cpu_b < 0 || cpu_a >= CPU_SETSIZE || cpu_b >= CPU_SETSIZE) {
		fprintf(stderr, "usage: serpens-xcoreprobe [CPU_A CPU_B] (two different CPUs; default 0 1)\n");
		return 2;
	}
	set_cpu(&s, cpu_a);
	if (pthread_setaffinity_np(pthread_self(), sizeof(s), &s) != 0) {
		fprintf(stderr, "serpens-xcoreprobe: cannot run on CPU %d\n", cpu_a);
		return 1;
	}
	/* B is created on its CPU, so that a CPU it cannot have fails here, before A waits for its answers */
	set_cpu(&s, cpu_b);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof(s), &s);
	w = pthread_create(&t, &attr, answer, NULL);
	pthread_attr_destroy(&attr);
	if (w != 0) {
		fprintf(stderr, "serpens-xcoreprobe: cannot run on CPU %d: %s\n", cpu_b, strerror(w));
		return 1;
	}
	for (w = 0; w < WINDOWS; w++) {
		t0 = now_ns();
		for (; i < (uint64_t)(w + 1) * TRIPS; i++) {
			line[0] = 2 * i + 1;
			while (line[0] != 2 * i + 2)
				;
		}
		rtt[w] = (now_ns() - t0) / TRIPS;
	}
	pthread_join(t, NULL);
	qsort(rtt, WINDOWS, sizeof(rtt[0]), cmp_u64);
	printf("%llu\n", (unsigned long long)rtt[WINDOWS / 2]);
	return 0;
}
