/*
 * prefault.c: populate the generator's mapping of the memif region before
 * the trial (why: native/common/memif_region.h), and time it for the report.
 */
#include <rte_cycles.h>
#include <rte_log.h>

#include "gen.h"
#include "memif_region.h"

void memif_prefault(struct gen *g)
{
	uint64_t t0 = rte_rdtsc();

	g->prefault_bytes = memif_regions_populate();
	g->prefault_ms = (double)(rte_rdtsc() - t0) * 1e3 / (double)g->hz;
	if (g->prefault_bytes < 0)
		RTE_LOG(WARNING, USER1, "no memif region found to populate: "
			"the first pass round the rings will fault\n");
}
