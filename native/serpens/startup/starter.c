/*
 * starter.c: what the startup methods share — the registry of ops tables, spawning the runtime as a DPDK
 * secondary, ringing a resident's doorbell, the three ways of bringing an NF into a process (dlopen, the
 * shared-memory image, the snapshot file), and the lcore id of a branched instance.
 */
#include "starter.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <rte_lcore.h>

#include "ctl.h" /* sp_futex_wake */
#include "state.h"

static const struct sp_starter *const all[ST_COUNT] = {
	[ST_EXEC] = &sp_starter_exec,	  [ST_FORK] = &sp_starter_fork,		[ST_LOAD] = &sp_starter_load,
	[ST_THREAD] = &sp_starter_thread, [ST_SNAPSHOT] = &sp_starter_snapshot, [ST_SERPENS] = &sp_starter_serpens,
};

const struct sp_starter *st_by_method(enum st_method m) { return (unsigned int)m < ST_COUNT ? all[m] : NULL; }

const struct sp_starter *st_by_name(const char *name)
{
	unsigned int i;

	for (i = 0; name && i < ST_COUNT; i++)
		if (!strcmp(all[i]->name, name))
			return all[i];
	return NULL;
}

const char *st_names(void) { return "exec, fork, load, thread, snapshot, serpens"; }

const char *st_loader_name(const struct sp_starter *s)
{
	return s->load == st_load_dlopen ? "dlopen" : s->load == st_load_image ? "image" : "snapshot-file";
}

void st_describe(FILE *out)
{
	static const char *const res[] = {"none", "pool", "zygote", "host"};
	unsigned int i;

	for (i = 0; i < ST_COUNT; i++) {
		const struct sp_starter *s = all[i];

		fprintf(out, "%s resident=%s image=%d snapshot=%d loader=%s paper=%s\n", s->name, res[s->resident],
			s->image, s->snapshot, st_loader_name(s), s->paper);
	}
}

pid_t st_spawn_secondary(const struct st_start *s)
{
	char lcores[64], log_level[64], *argv[64];
	unsigned int n = 0, i;
	pid_t parent = getpid(), pid;

	/* everything the child needs is built before fork: the orchestrator has other threads */
	snprintf(lcores, sizeof(lcores), "%u@%s", s->lcore_id, s->spawn->cpus);
	snprintf(log_level, sizeof(log_level), "--log-level=%s", s->spawn->log_level);
	argv[n++] = (char *)s->spawn->exe;
	argv[n++] = "--lcores";
	argv[n++] = lcores;
	argv[n++] = "--proc-type=secondary";
	argv[n++] = "--file-prefix";
	argv[n++] = (char *)s->spawn->file_prefix;
	argv[n++] = "--no-pci";
	argv[n++] = "--no-telemetry";
	argv[n++] = log_level;
	argv[n++] = "--";
	for (i = 0; s->tail && s->tail[i] && n < 63; i++)
		argv[n++] = s->tail[i];
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		/* a secondary outlives its primary by nothing: it would wait on dead rings (or in EAL init) */
		prctl(PR_SET_PDEATHSIG, s->spawn->deathsig);
		if (getppid() != parent)
			_exit(1);
		execv(s->spawn->exe, argv);
		fprintf(stderr, "cannot exec %s: %s\n", s->spawn->exe, strerror(errno));
		_exit(127);
	}
	return pid;
}

void st_ring(uint32_t *doorbell)
{
	__atomic_fetch_add(doorbell, 1, __ATOMIC_SEQ_CST);
	sp_futex_wake(doorbell, 1);
}

void st_set_lcore(unsigned int lcore_id) { RTE_PER_LCORE(_lcore_id) = lcore_id; }

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Look up the descriptor and run init in the current State Manager phase (deploy or attach); its time in
 * out->init_ns. */
static int init_nf(const struct st_nf *nf, struct st_loaded *out, const char *where, char *err, size_t errlen)
{
	uint64_t t0 = mono_ns();
	int rc;

	out->nf = st_sym(out, "serpens_nf");
	if (!out->nf || !out->nf->handler) {
		snprintf(err, errlen, "NF %s: %s is not an NF (no serpens_nf descriptor defined with SP_NF)", nf->name,
			 where);
		out->nf = NULL;
		return -1;
	}
	sm_set_nf(nf->name, nf->args);
	rc = sm_nf_init(out->nf);
	out->init_ns = mono_ns() - t0;
	if (rc != 0) {
		struct sm_region *r = sm_get_region();

		snprintf(err, errlen, "NF %s: init failed (%d)%s%s", nf->name, rc, r ? ": " : "", r ? sm_last_error(r) : "");
		out->nf = NULL; /* still loaded: its tables may exist; the caller refuses or unloads it */
		return -1;
	}
	return 0;
}

int st_load_dlopen(const struct st_nf *nf, struct st_loaded *out, char *err, size_t errlen)
{
	uint64_t t0 = mono_ns();

	memset(out, 0, sizeof(*out));
	out->loader = "dlopen";
	/* RTLD_LOCAL: every deployment is its own file, so two deployments of one NF never share globals */
	out->dl = dlopen(nf->path, RTLD_NOW | RTLD_LOCAL);
	out->map_ns = mono_ns() - t0;
	if (!out->dl) {
		snprintf(err, errlen, "NF %s: cannot load %s: %s", nf->name, nf->path, dlerror());
		return -1;
	}
	if (init_nf(nf, out, nf->path, err, errlen) != 0) {
		if (!out->nf && !st_sym(out, "serpens_nf")) {
			dlclose(out->dl);
			out->dl = NULL;
		}
		return -1;
	}
	return 0;
}

/* Map the image from fd (opened at t0: the open counts as mapping) and run init. */
static int map_from(const struct st_nf *nf, int fd, const char *what, uint64_t t0, struct st_loaded *out,
		    char *err, size_t errlen)
{
	char why[400];

	if (ldr_map(nf->image, fd, 0, NULL, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "NF %s: cannot map its %s: %s", nf->name, what, why);
		return -1;
	}
	out->map_ns = mono_ns() - t0;
	out->img = nf->image;
	if (init_nf(nf, out, what, err, errlen) != 0) {
		if (!st_sym(out, "serpens_nf")) {
			ldr_unmap(out->img);
			out->img = NULL;
		}
		return -1;
	}
	return 0;
}

int st_load_image(const struct st_nf *nf, struct st_loaded *out, char *err, size_t errlen)
{
	char path[64];
	int fd = nf->cached_fd, rc;
	uint64_t t0 = mono_ns();

	memset(out, 0, sizeof(*out));
	out->loader = "image";
	if (fd < 0 && nf->owner_pid <= 0) { /* serpens-runtime: only by descriptor (handover.h) */
		snprintf(err, errlen, "NF %s: serpensd did not hand over its image", nf->name);
		return -1;
	}
	if (fd < 0) { /* serpens-startbench only (no NF of another tenant there): the orchestrator's memfd */
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", nf->owner_pid, nf->image_fd);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "NF %s: cannot open its image %s: %s", nf->name, path, strerror(errno));
			return -1;
		}
	}
	rc = map_from(nf, fd, "image", t0, out, err, errlen);
	if (fd != nf->cached_fd)
		close(fd);
	return rc;
}

int st_load_snapshot(const struct st_nf *nf, struct st_loaded *out, char *err, size_t errlen)
{
	int fd, rc;
	uint64_t t0 = mono_ns();

	memset(out, 0, sizeof(*out));
	out->loader = "snapshot-file";
	fd = nf->snapshot ? open(nf->snapshot, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0) {
		snprintf(err, errlen, "NF %s: cannot open its snapshot %s: %s", nf->name,
			 nf->snapshot ? nf->snapshot : "(none)", strerror(errno));
		return -1;
	}
	/* MAP_PRIVATE from the file: pages come in on demand, nothing is parsed or relocated */
	rc = map_from(nf, fd, "snapshot", t0, out, err, errlen);
	close(fd);
	return rc;
}

void st_unload(struct st_loaded *l)
{
	if (l->dl)
		dlclose(l->dl);
	else if (l->img)
		ldr_unmap(l->img);
	memset(l, 0, sizeof(*l));
}

void *st_sym(const struct st_loaded *l, const char *name)
{
	if (l->img)
		return ldr_sym(l->img, name);
	return l->dl ? dlsym(l->dl, name) : NULL;
}
