/*
 * thread.c: a host process with the NFs loaded creates each instance as a thread of itself (Photons,
 * scaling up). The thread takes its own DPDK lcore id, as a forked instance does.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "starter.h"

static pid_t host_prepare(const struct st_start *s) { return st_spawn_secondary(s); }

static pid_t host_start(const struct st_start *s)
{
	st_ring(s->doorbell);
	return 0;
}

struct body_arg {
	unsigned int lcore_id;
	void (*body)(void *);
	void *arg;
};

static void *thread_main(void *p)
{
	struct body_arg a = *(struct body_arg *)p;

	free(p);
	st_set_lcore(a.lcore_id);
	a.body(a.arg);
	return NULL;
}

static pid_t thread_branch(unsigned int lcore_id, void (*body)(void *), void *arg)
{
	struct body_arg *a = malloc(sizeof(*a));
	pthread_attr_t at;
	pthread_t th;
	int rc;

	if (!a) {
		errno = ENOMEM;
		return -1;
	}
	*a = (struct body_arg){.lcore_id = lcore_id, .body = body, .arg = arg};
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&th, &at, thread_main, a);
	pthread_attr_destroy(&at);
	if (rc != 0) {
		free(a);
		errno = rc;
		return -1;
	}
	return 0;
}

const struct sp_starter sp_starter_thread = {
	.name = "thread", .paper = "Thread create (Photons)", .method = ST_THREAD, .resident = ST_RES_HOST,
	.prepare = host_prepare, .start = host_start, .load = st_load_dlopen, .unload = st_unload,
	.branch = thread_branch,
};
