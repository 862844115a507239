/*
 * load.c: a pool of pre-initialised runtimes (EAL done, no NF) waits in instance slots; a start wakes one,
 * which dlopens the NFs and runs their init (SOCK).
 */
#include "starter.h"

static pid_t pool_prepare(const struct st_start *s) { return st_spawn_secondary(s); }

static pid_t pool_start(const struct st_start *s)
{
	st_ring(s->doorbell); /* the request is in the slot already */
	return 0;
}

const struct sp_starter sp_starter_load = {
	.name = "load", .paper = "Load (SOCK)", .method = ST_LOAD, .resident = ST_RES_POOL,
	.prepare = pool_prepare, .start = pool_start, .load = st_load_dlopen, .unload = st_unload,
};
