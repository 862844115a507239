/*
 * memif_region.h: populate the memif shared-memory regions this process
 * maps, and notice when a port's link comes up (the moment to do it).
 *
 * Why: the memif client (the generator, one process per trial) creates the
 * region that holds both rings and their packet buffers (16384 slots x
 * 2 KiB each way: 64 MiB of 4 KiB pages) anew on every connection, and
 * nothing maps those pages until packets go through. Each side then takes
 * a page fault per page on its first pass round the rings, 25-40 ms in
 * which a forwarder cannot drain its ring: at >= 4 Mpps that overflowed
 * the ring at the start of every trial and was counted as DUT loss
 * (docs/generator.md, "Before and after"). Populating the region once,
 * when the link comes up and before the generator's clock starts, moves
 * that cost out of the trial. The generator does it for its mapping; the
 * wire and serpensd for theirs.
 */
#ifndef SERPENS_MEMIF_REGION_H
#define SERPENS_MEMIF_REGION_H

#include <stdint.h>

/* Populate every mapping of a memif region ("/memfd:memif_region_N") in
 * this process. Returns the bytes populated, or -1 if none was found (or
 * /proc/self/maps is unreadable). MADV_POPULATE_WRITE (Linux 5.14) maps the
 * pages writable without touching their contents, so it is safe while the
 * peer already uses the rings; on older kernels each page is read once. */
int64_t memif_regions_populate(void);

/* Polls a port's link status at most every `period` TSC ticks and says when
 * it went up. */
struct link_watch {
	uint16_t port;
	int up;
	uint64_t next;
	uint64_t period;
};

void link_watch_init(struct link_watch *lw, uint16_t port, uint64_t period,
		     uint64_t now);

/* 1 when the link came up since the last call that returned; cheap when
 * called before `next` (the caller checks `now >= lw->next` first). */
int link_watch_came_up(struct link_watch *lw, uint64_t now);

#endif
