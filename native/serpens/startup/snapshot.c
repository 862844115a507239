/*
 * snapshot.c: fork + exec a fresh runtime that restores each NF from its memory image saved to a file at
 * deployment (mapped with on-demand paging, not parsed or relocated: Catalyzer-style; docs/startup.md
 * says what is and is not restored).
 */
#include "starter.h"

static pid_t snapshot_start(const struct st_start *s) { return st_spawn_secondary(s); }

const struct sp_starter sp_starter_snapshot = {
	.name = "snapshot", .paper = "Instance snapshot (Catalyzer)", .method = ST_SNAPSHOT,
	.resident = ST_RES_NONE, .image = true, .snapshot = true,
	.start = snapshot_start, .load = st_load_snapshot, .unload = st_unload,
};
