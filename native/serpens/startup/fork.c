/*
 * fork.c: a zygote runtime with the EAL initialised and the NFs loaded and initialised forks each
 * instance (SAND). The child takes its own DPDK lcore id before it runs anything: it inherits the
 * zygote's, and per-lcore state in shared memory (mempool caches) must never be used by two processes
 * under one id.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "starter.h"

static pid_t zygote_prepare(const struct st_start *s) { return st_spawn_secondary(s); }

static pid_t zygote_start(const struct st_start *s)
{
	st_ring(s->doorbell); /* the target slot is in the request already */
	return 0;
}

static pid_t fork_branch(unsigned int lcore_id, void (*body)(void *), void *arg)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		/* the zygote reaps and reports its instances; without it nobody would */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		st_set_lcore(lcore_id);
		body(arg);
		_exit(0);
	}
	return pid;
}

const struct sp_starter sp_starter_fork = {
	.name = "fork", .paper = "Fork (SAND)", .method = ST_FORK, .resident = ST_RES_ZYGOTE,
	.prepare = zygote_prepare, .start = zygote_start, .load = st_load_dlopen, .unload = st_unload,
	.branch = fork_branch,
};
