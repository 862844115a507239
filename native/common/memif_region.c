/*
 * memif_region.c: see memif_region.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rte_ethdev.h>

#include "memif_region.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static void touch_pages(const volatile uint8_t *p, size_t len, size_t page)
{
	size_t off;

	for (off = 0; off < len; off += page)
		(void)p[off];
}

static int populate(unsigned long lo, unsigned long hi)
{
	size_t len = hi - lo;
	long page = sysconf(_SC_PAGESIZE);

	if (madvise((void *)lo, len, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno != EINVAL)
		return -1;
	/* an older kernel: a read fault on shared memory maps the page */
	touch_pages((const volatile uint8_t *)lo, len,
		    page > 0 ? (size_t)page : 4096);
	return 0;
}

int64_t memif_regions_populate(void)
{
	unsigned long lo, hi;
	int64_t total = -1;
	char line[512];
	FILE *f;

	f = fopen("/proc/self/maps", "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, "/memfd:memif_region_") == NULL ||
		    sscanf(line, "%lx-%lx", &lo, &hi) != 2 || hi <= lo)
			continue;
		if (populate(lo, hi) != 0)
			continue;       /* leave it to fault in as before */
		total = (total < 0 ? 0 : total) + (int64_t)(hi - lo);
	}
	fclose(f);
	return total;
}

void link_watch_init(struct link_watch *lw, uint16_t port, uint64_t period,
		     uint64_t now)
{
	lw->port = port;
	lw->up = 0;
	lw->period = period;
	lw->next = now;
}

int link_watch_came_up(struct link_watch *lw, uint64_t now)
{
	struct rte_eth_link link;
	int up;

	lw->next = now + lw->period;
	up = rte_eth_link_get_nowait(lw->port, &link) == 0 &&
	     link.link_status == RTE_ETH_LINK_UP;
	if (up == lw->up)
		return 0;
	lw->up = up;
	return up;
}
