/* exec.c: the cold start — fork + exec a fresh runtime, which initialises the EAL and dlopens the NFs. */
#include "starter.h"

static pid_t exec_start(const struct st_start *s) { return st_spawn_secondary(s); }

const struct sp_starter sp_starter_exec = {
	.name = "exec", .paper = "Exec (cold start)", .method = ST_EXEC, .resident = ST_RES_NONE,
	.start = exec_start, .load = st_load_dlopen, .unload = st_unload,
};
