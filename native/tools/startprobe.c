/*
 * startprobe.c: serpens-startprobe, the machine's floor under an instance start (docs/startup.md,
 * "The machine's floor under a start").
 *
 * A pooled Serpens start is, at its least, a futex wake of a sleeping process and, per NF, two mmaps of
 * the NF's image memfd (code shared read+exec, data private), each with MAP_POPULATE (docs/startup.md;
 * loader/README.md). This probe times exactly those kernel operations in a minimal process (no DPDK, no
 * hugepage mappings), so that serpensd's measured steps can be read against what this machine charges
 * for the same system calls:
 *
 *   wake_other_us  a thread sleeping in FUTEX_WAIT on one CPU, woken from another: from just before the
 *                  FUTEX_WAKE to the woken thread running (CLOCK_MONOTONIC in both)
 *   wake_same_us   the same with both threads on one CPU: the waker then blocks, the woken one runs
 *   wake_other_proc_us, wake_same_proc_us
 *                  the same two with the sleeper in another process (forked; shared futex word), as
 *                  serpensd's control thread wakes a pool process: the switch also changes address space,
 *                  which a guest whose page tables the hypervisor shadows pays for
 *   map_shared_us  mmap(MAP_SHARED | MAP_POPULATE | MAP_FIXED_NOREPLACE, read+exec) of 3 pages of a memfd
 *   map_private_us mmap(MAP_PRIVATE | MAP_POPULATE | MAP_FIXED_NOREPLACE, read+write) of 3 pages of it
 *   map_bare_us    the shared mmap without MAP_POPULATE: the system call and the new mapping alone, so
 *                  (map_shared_us - map_bare_us) / 3 is what this machine charges per page-table entry
 *   fault_us       one read fault on a page of a fresh MAP_SHARED mapping of the memfd (no MAP_POPULATE)
 *                  The mappings are timed as a start meets them: each repetition after 1 ms asleep (a
 *                  pool process waits far longer; its caches and TLB are the machine's by then). The
 *                  *_hot_us fields repeat them back to back, warm, for comparison: on this project's KVM
 *                  guest the cold mappings cost 2-3x the warm ones (docs/startup.md).
 *
 * Usage: serpens-startprobe [--reps N] [--cpus A,B]   (default 200 repetitions, CPUs 0 and 1)
 * Output: one JSON object on stdout with the median, the 10th and 90th percentile of each, in µs.
 * Run it alone (nothing else busy): it measures the machine, and a busy neighbour is part of the result.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"

#define PAGE 4096
#define IMAGE_PAGES 6
#define MAX_REPS 100000

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static long futex(uint32_t *addr, int op, uint32_t val)
{
	return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
		fprintf(stderr, "serpens-startprobe: cannot pin to CPU %d\n", cpu);
		exit(1);
	}
}

/* ---- futex wake ---------------------------------------------------------------------------------------- */

struct waker {
	uint32_t word;       /* the sleeper waits while it is 0 */
	uint32_t parked;     /* the sleeper is about to wait */
	double t_wake, t_run;
	int cpu;
	int wait_op;         /* FUTEX_WAIT_PRIVATE for a thread, FUTEX_WAIT for a process */
	int reps;
	double *lat;
};

static void *sleeper(void *arg)
{
	struct waker *w = arg;
	int i;

	pin(w->cpu);
	for (i = 0; i < w->reps; i++) {
		__atomic_store_n(&w->parked, 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&w->word, __ATOMIC_ACQUIRE) == 0)
			futex(&w->word, w->wait_op, 0);
		w->t_run = now_us();
		w->lat[i] = w->t_run - w->t_wake;
		__atomic_store_n(&w->word, 0, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* The sleeper on cpu_sleeper, the waker (this thread) on cpu_waker; reps wakes, each after the sleeper
 * has been asleep for a millisecond (as a pool process waits between starts). The sleeper is a thread of
 * this process, or (proc) a child process sharing the futex word and the samples. */
static void measure_wake(int cpu_waker, int cpu_sleeper, int reps, double *lat, int proc)
{
	size_t len = sizeof(struct waker) + (size_t)reps * sizeof(double);
	struct waker *w = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pthread_t t;
	pid_t child = -1;
	int i;

	if (w == MAP_FAILED) {
		fprintf(stderr, "serpens-startprobe: mmap: %s\n", strerror(errno));
		exit(1);
	}
	*w = (struct waker){.cpu = cpu_sleeper, .reps = reps, .lat = (double *)(w + 1),
			    .wait_op = proc ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE};
	pin(cpu_waker);
	if (proc) {
		child = fork();
		if (child == 0) {
			sleeper(w);
			_exit(0);
		}
	}
	if (proc ? child < 0 : pthread_create(&t, NULL, sleeper, w) != 0) {
		fprintf(stderr, "serpens-startprobe: cannot start the sleeper\n");
		exit(1);
	}
	for (i = 0; i < reps; i++) {
		while (!__atomic_load_n(&w->parked, __ATOMIC_ACQUIRE))
			usleep(50);
		usleep(1000); /* asleep in FUTEX_WAIT by now */
		__atomic_store_n(&w->parked, 0, __ATOMIC_SEQ_CST);
		w->t_wake = now_us();
		__atomic_store_n(&w->word, 1, __ATOMIC_RELEASE);
		futex(&w->word, proc ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, 1);
		while (__atomic_load_n(&w->word, __ATOMIC_ACQUIRE) != 0)
			if (cpu_waker == cpu_sleeper)
				sched_yield(); /* one CPU: let the woken thread run */
	}
	if (proc)
		waitpid(child, NULL, 0);
	else
		pthread_join(t, NULL);
	memcpy(lat, w + 1, (size_t)reps * sizeof(double));
	munmap(w, len);
}

/* ---- mmap of an image-sized memfd ------------------------------------------------------------------------ */

/* Each repetition after `idle_us` asleep (1000: as a pool process's start finds the machine after waiting;
 * 0: back to back, caches and TLB warm from the previous repetition). */
static void measure_maps(int cpu, int reps, int idle_us, double *shared, double *priv, double *fault, double *bare)
{
	void *base = (void *)0x7e0000000000ull;
	int fd = memfd_create("startprobe-image", MFD_CLOEXEC);
	char *p;
	int i;

	pin(cpu);
	if (fd < 0 || ftruncate(fd, IMAGE_PAGES * PAGE) != 0) {
		fprintf(stderr, "serpens-startprobe: memfd: %s\n", strerror(errno));
		exit(1);
	}
	p = mmap(NULL, IMAGE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "serpens-startprobe: mmap: %s\n", strerror(errno));
		exit(1);
	}
	memset(p, 0xcc, IMAGE_PAGES * PAGE); /* every page allocated, as a deployed image's are */
	munmap(p, IMAGE_PAGES * PAGE);
	for (i = 0; i < reps; i++) {
		double t0, t1, t2, t3, t4;
		void *a, *b, *c;
		volatile char sink;

		if (idle_us)
			usleep((useconds_t)idle_us);
		t0 = now_us();
		a = mmap(base, 3 * PAGE, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_POPULATE | MAP_FIXED_NOREPLACE, fd, 0);
		t1 = now_us();
		b = mmap((char *)base + 3 * PAGE, 3 * PAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_POPULATE | MAP_FIXED_NOREPLACE, fd, 3 * PAGE);
		t2 = now_us();
		c = mmap((char *)base + 8 * PAGE, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
		t3 = now_us();
		if (a != base || b != (char *)base + 3 * PAGE || c != (char *)base + 8 * PAGE) {
			fprintf(stderr, "serpens-startprobe: fixed mmap failed: %s\n", strerror(errno));
			exit(1);
		}
		sink = *(volatile char *)c; /* the fault */
		t4 = now_us();
		(void)sink;
		shared[i] = t1 - t0;
		priv[i] = t2 - t1;
		fault[i] = t4 - t3;
		munmap(base, 9 * PAGE);
		if (idle_us)
			usleep((useconds_t)idle_us);
		t0 = now_us();
		a = mmap(base, 3 * PAGE, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
		bare[i] = now_us() - t0;
		if (a != base) {
			fprintf(stderr, "serpens-startprobe: fixed mmap failed: %s\n", strerror(errno));
			exit(1);
		}
		munmap(base, 3 * PAGE);
	}
	close(fd);
}

/* ---- output ------------------------------------------------------------------------------------------------ */

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void print_stat(const char *name, double *v, int n, int last)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("  \"%s\": {\"p10\": %.2f, \"p50\": %.2f, \"p90\": %.2f}%s\n", name, v[n / 10], v[n / 2],
	       v[n * 9 / 10], last ? "" : ",");
}

int main(int argc, char **argv)
{
	uint64_t reps = 200, a = 0, b = 1;
	double *v[12];
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
			if (arg_u64(argv[++i], 10, MAX_REPS, &reps)) {
				fprintf(stderr, "serpens-startprobe: --reps must be 10..%d\n", MAX_REPS);
				return 2;
			}
		} else if (!strcmp(argv[i], "--cpus") && i + 1 < argc) {
			char *comma = strchr(argv[++i], ',');

			if (!comma || (*comma = '\0', arg_u64(argv[i], 0, CPU_SETSIZE - 1, &a)) ||
			    arg_u64(comma + 1, 0, CPU_SETSIZE - 1, &b) || a == b) {
				fprintf(stderr, "serpens-startprobe: --cpus takes two different CPUs, e.g. 0,1\n");
				return 2;
			}
		} else {
			fprintf(stderr, "usage: serpens-startprobe [--reps N] [--cpus A,B]\n");
			return 2;
		}
	}
	for (i = 0; i < 12; i++)
		if (!(v[i] = calloc(reps, sizeof(double)))) {
			fprintf(stderr, "serpens-startprobe: out of memory\n");
			return 1;
		}
	measure_wake((int)a, (int)b, (int)reps, v[0], 0);
	measure_wake((int)b, (int)b, (int)reps, v[1], 0);
	measure_wake((int)a, (int)b, (int)reps, v[5], 1);
	measure_wake((int)b, (int)b, (int)reps, v[6], 1);
	measure_maps((int)b, (int)reps, 1000, v[2], v[3], v[4], v[7]);
	measure_maps((int)b, (int)reps, 0, v[8], v[9], v[10], v[11]);
	printf("{\n  \"reps\": %d, \"cpus\": [%d, %d],\n", (int)reps, (int)a, (int)b);
	print_stat("wake_other_us", v[0], (int)reps, 0);
	print_stat("wake_same_us", v[1], (int)reps, 0);
	print_stat("wake_other_proc_us", v[5], (int)reps, 0);
	print_stat("wake_same_proc_us", v[6], (int)reps, 0);
	print_stat("map_shared_us", v[2], (int)reps, 0);
	print_stat("map_private_us", v[3], (int)reps, 0);
	print_stat("map_bare_us", v[7], (int)reps, 0);
	print_stat("map_shared_hot_us", v[8], (int)reps, 0);
	print_stat("map_private_hot_us", v[9], (int)reps, 0);
	print_stat("map_bare_hot_us", v[11], (int)reps, 0);
	print_stat("fault_us", v[4], (int)reps, 1);
	printf("}\n");
	return 0;
}
