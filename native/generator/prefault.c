/*
 * prefault.c: populate the memif shared-memory region before the trial.
 *
 * Why: the memif client (this generator) creates the region that holds
 * both rings and their packet buffers (16384 slots x 2 KiB each way with
 * the harness's rsize=14: 64 MiB) as a memfd of 4 KiB pages, and nothing
 * touches those pages until packets go through. Every trial is a new
 * process with a new region, so the first pass through the rings took a
 * page fault per page: 25-38 ms here in which the generator could not keep
 * its schedule. It then fired the backlog at the DUT and counted the
 * overflow as DUT loss (docs/generator.md, "Before and after"). Populating
 * the region once, before the clock starts, moves that cost out of the
 * trial.
 *
 * The region is found by its memfd name in /proc/self/maps
 * ("memif_region_N", DPDK's memif PMD). MADV_POPULATE_WRITE (Linux 5.14)
 * faults the pages in writable without touching their contents, so it is
 * safe while the peer already uses the rings; on older kernels every page
 * is read once instead (a shared-memory read fault allocates the page).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_log.h>

#include "gen.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static void touch_pages(const volatile uint8_t *p, size_t len, size_t page)
{
	size_t off;

	for (off = 0; off < len; off += page)
		(void)p[off];
}

static int64_t populate(unsigned long lo, unsigned long hi)
{
	size_t len = hi - lo;
	long page = sysconf(_SC_PAGESIZE);

	if (madvise((void *)lo, len, MADV_POPULATE_WRITE) != 0) {
		if (errno != EINVAL)
			return -1;
		touch_pages((const volatile uint8_t *)lo, len,
			    page > 0 ? (size_t)page : 4096);
	}
	return (int64_t)len;
}

void memif_prefault(struct gen *g)
{
	uint64_t t0 = rte_rdtsc();
	unsigned long lo, hi;
	char line[512];
	int64_t n;
	FILE *f;

	g->prefault_bytes = -1;
	f = fopen("/proc/self/maps", "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "/memfd:memif_region_") == NULL ||
		    sscanf(line, "%lx-%lx", &lo, &hi) != 2 || hi <= lo)
			continue;
		n = populate(lo, hi);
		if (n < 0) {
			RTE_LOG(WARNING, USER1, "prefault of the memif region "
				"failed: %s\n", strerror(errno));
			continue;
		}
		g->prefault_bytes = (g->prefault_bytes < 0 ? 0 :
				     g->prefault_bytes) + n;
	}
	fclose(f);
	g->prefault_ms = (double)(rte_rdtsc() - t0) * 1e3 / (double)g->hz;
}
