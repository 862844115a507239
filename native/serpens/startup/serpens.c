/*
 * serpens.c: Serpens's own method (Section III-A) — a pool of pre-initialised runtimes waits in instance
 * slots; a start wakes one, which maps each NF's image that the NF Manager built once in shared memory
 * (native/serpens/loader: no ELF parsing, no relocation per start) and runs its init.
 */
#include "starter.h"

static pid_t pool_prepare(const struct st_start *s) { return st_spawn_secondary(s); }

static pid_t pool_start(const struct st_start *s)
{
	st_ring(s->doorbell);
	return 0;
}

const struct sp_starter sp_starter_serpens = {
	.name = "serpens", .paper = "Memory map (Serpens)", .method = ST_SERPENS, .resident = ST_RES_POOL,
	.image = true, .prepare = pool_prepare, .start = pool_start, .load = st_load_image, .unload = st_unload,
};
