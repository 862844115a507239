/*
 * starter.h: the startup axis (paper Sections II-B2, III-A; docs/startup.md) as one ops table per method,
 * shared by serpensd's Instance Manager (native/serpens) and serpens-startbench (native/startup), so that
 * Fig. 11 measures the code Figs. 12 and 15 run.
 *
 * A method has two sides:
 *   orchestrator  prepare: launch what stays resident (a pool process, a zygote, a thread host);
 *                 start: start one instance — exec a fresh runtime, or ring a resident's doorbell.
 *                 What the request says (which SFC or NF, which slot) the program writes into its own
 *                 control block before it calls start; the starter only delivers it.
 *   instance      load/unload: bring one NF into this process (dlopen, map the shared-memory image, map
 *                 the snapshot file) and run its init; branch: a resident starts the instance as a
 *                 child (fork) or a thread of itself.
 * Process spawning, the doorbell and the lcore id of a branched instance are in starter.c; the NF
 * Manager's deployment steps (copy, image, snapshot) in nfm.h.
 */
#ifndef SERPENS_STARTER_H
#define SERPENS_STARTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "loader.h"

enum st_method { ST_EXEC, ST_FORK, ST_LOAD, ST_THREAD, ST_SNAPSHOT, ST_SERPENS, ST_COUNT };

/* What is resident before a start request, and where the instance runs. */
enum st_resident {
	ST_RES_NONE,   /* nothing: the start spawns the instance's own process (exec, snapshot) */
	ST_RES_POOL,   /* a pre-initialised process waits in the instance's slot and loads on request */
	ST_RES_ZYGOTE, /* a process with the NFs loaded forks the instance */
	ST_RES_HOST,   /* a process with the NFs loaded creates the instance as a thread */
};

/* One deployed NF as a starter sees it (each program fills this view from its own descriptor). */
struct st_nf {
	const char *name;               /* deployment name: State Manager tables are name/table */
	const char *path;               /* the deployment's own copy of the object */
	const char *snapshot;           /* the image saved as a file (snapshot) */
	const struct ldr_image *image;  /* the image built at deployment (serpens, snapshot) */
	int image_fd;                   /* ... held open by owner_pid: /proc/<owner_pid>/fd/<image_fd> (only */
	int owner_pid;                  /* serpens-startbench; serpens-runtime: owner 0, cached_fd or nothing) */
	int cached_fd;                  /* an fd on the image this process holds already, or -1 */
	const char *const *args;        /* NULL-terminated key, value, ... for sm_set_nf, or NULL */
};

/* One NF loaded into this process by a starter. */
struct st_loaded {
	const struct sp_nf *nf;
	void *dl;                      /* dlopen handle, or NULL */
	const struct ldr_image *img;   /* mapped image, or NULL */
	const char *loader;            /* which loader ran: "dlopen", "image" or "snapshot-file" (reported by
					* serpensd and serpens-startbench per instance: tests compare them) */
	uint64_t map_ns;               /* CLOCK_MONOTONIC ns the loader took to bring it in (dlopen; the
					* image's open and mapping; the snapshot's) ... */
	uint64_t init_ns;              /* ... and its init took (serpensd's start steps) */
};

/* How the orchestrator execs its runtime as a DPDK secondary of itself. */
struct st_spawn {
	const char *exe;
	const char *file_prefix;
	const char *cpus;      /* "N" or "(a,b)": where started processes may run */
	const char *log_level; /* EAL --log-level */
	int deathsig;          /* sent to the child when the orchestrator dies */
};

/* One start (or prepare) request as the orchestrator hands it to a starter. */
struct st_start {
	const struct st_spawn *spawn;
	unsigned int lcore_id;    /* DPDK lcore id of a spawned process: distinct per process */
	char *const *tail;        /* the runtime's own arguments after "--" (NULL-terminated) */
	uint32_t *doorbell;       /* futex word of the resident to wake */
};

struct sp_starter {
	const char *name;
	const char *paper;             /* the system the method stands for (Fig. 3(a), Fig. 11) */
	enum st_method method;
	enum st_resident resident;
	bool image;                    /* the NF Manager builds the shared-memory image at deployment */
	bool snapshot;                 /* ... and saves it to a file */
	/* orchestrator: launch a resident (NULL: nothing resident), start an instance; pid or -1 / 0 */
	pid_t (*prepare)(const struct st_start *s);
	pid_t (*start)(const struct st_start *s);
	/* instance: load one NF and run its init; 0, or -1 with err */
	int (*load)(const struct st_nf *nf, struct st_loaded *out, char *err, size_t errlen);
	void (*unload)(struct st_loaded *l);
	/* resident: run body(arg) as a new instance under DPDK lcore id lcore_id (zygote: in a child,
	 * whose pid is returned; host: in a thread, 0); NULL for the other methods. -1 with errno. */
	pid_t (*branch)(unsigned int lcore_id, void (*body)(void *), void *arg);
};

extern const struct sp_starter sp_starter_exec, sp_starter_fork, sp_starter_load, sp_starter_thread,
	sp_starter_snapshot, sp_starter_serpens;

/* By method, and by name (NULL if unknown). */
const struct sp_starter *st_by_method(enum st_method m);
const struct sp_starter *st_by_name(const char *name);
/* "exec, fork, load, thread, snapshot, serpens": for error messages. */
const char *st_names(void);
/* The loader a starter's load runs ("dlopen", "image", "snapshot-file"). */
const char *st_loader_name(const struct sp_starter *s);
/* One line per method (name, resident, image, loader): what serpensd and serpens-startbench print with
 * --starters, so a test can see that both run this table. */
void st_describe(FILE *out);

/* starter.c: the mechanisms the methods share */
pid_t st_spawn_secondary(const struct st_start *s);
void st_ring(uint32_t *doorbell);
int st_load_dlopen(const struct st_nf *nf, struct st_loaded *out, char *err, size_t errlen);
int st_load_image(const struct st_nf *nf, struct st_loaded *out, char *err, size_t errlen);
int st_load_snapshot(const struct st_nf *nf, struct st_loaded *out, char *err, size_t errlen);
void st_unload(struct st_loaded *l);
/* A symbol of a loaded NF (selectors), from its dlopen handle or its image. */
void *st_sym(const struct st_loaded *l, const char *name);
/* Make the calling thread DPDK lcore `lcore_id` (a branched instance must never share the per-lcore
 * state of its resident or of a sibling: mempool caches are indexed by it). */
void st_set_lcore(unsigned int lcore_id);

#endif
