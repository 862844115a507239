/*
 * startbench.h: what serpens-startbench's orchestrator (a DPDK primary) shares with the processes it
 * starts (DPDK secondaries of it) through one memzone: the deployed NFs and one slot per instance.
 *
 * The startup methods compared (paper Fig. 3(a), Fig. 11, Table IV; docs/startup.md) are serpensd's own
 * starters (native/serpens/startup/starter.h), with the same NF Manager steps (nfm.h):
 *   exec      fork + exec a fresh runtime: EAL init, dlopen the NF, init          (cold start)
 *   fork      fork a per-NF zygote that has the EAL and the NF loaded             (SAND)
 *   load      wake a pre-initialised pool process, it dlopens the NF              (SOCK)
 *   thread    create a thread in a per-NF process that has the NF loaded          (Photons, scaling up)
 *   snapshot  fork + exec a fresh runtime that restores the NF's memory image
 *             from a snapshot file instead of loading and relocating it           (Catalyzer-style)
 *   serpens   wake a pre-initialised pool process, it maps the NF's image from
 *             shared memory (native/serpens/loader)                               (Serpens)
 * Every method runs the same NF objects on the same runtime code (this file's worker, with the State
 * Manager attached), and is timed from the start request to the instance being ready, and to its first
 * packet processed.
 */
#ifndef SERPENS_STARTBENCH_H
#define SERPENS_STARTBENCH_H

#include <stdint.h>

#include "loader.h"
#include "starter.h" /* enum st_method: ST_EXEC .. ST_SERPENS, ST_COUNT */

#define SB_CTL_MZ "sb_ctl"
#define SB_STATE_MZ "sb_state"
#define SB_MAGIC 0x5342454e43483031ull /* "SBENCH01" */
#define SB_MAX_NFS 1024
#define SB_MAX_SLOTS 640
#define SB_IMAGE_BASE 0x5c0000000000ull /* one SB_IMAGE_SPAN per deployed NF */
#define SB_IMAGE_SPAN (16ull << 20)

/* Slot states (futex word `state`). A slot is either a resident process (pool worker, zygote, thread
 * host) or an instance started in it. */
enum sb_state {
	SB_EMPTY = 0,
	SB_WAITING, /* a resident process waits for a request */
	SB_STARTING,
	SB_READY,   /* the instance is ready: NF loaded and initialised */
	SB_DONE,    /* ... and has processed its first packet */
	SB_FAILED,
};

enum sb_cmd { SB_CMD_NONE = 0, SB_CMD_START, SB_CMD_STOP, SB_CMD_EXIT };

struct sb_nf {
	char name[64];  /* deployment name: State Manager tables are name/table */
	char path[256]; /* this deployment's own copy of the object (dlopen: no shared globals) */
	char snapshot[256]; /* the image as a file, for the snapshot method */
	int32_t image_fd; /* memfd in the orchestrator holding the built image (serpens) */
	int32_t owner_pid;
	uint64_t image_bytes; /* bytes of the image actually written (the deployment's memory) */
	struct ldr_image image;
};

struct sb_slot {
	uint32_t state;
	uint32_t doorbell; /* futex: bumped with every command */
	uint32_t cmd;
	uint32_t method;
	uint32_t nf;
	int32_t target; /* fork/thread: the slot the new instance runs in */
	int32_t pid;
	int32_t cpu_woke;  /* CPU the instance ran on when it started */
	uint64_t t_woke;   /* CLOCK_MONOTONIC ns: the resident process (or new instance) first ran */
	uint64_t t_ready;  /* ... NF loaded and initialised */
	uint64_t t_first;  /* ... first packet processed */
	char rx[32], tx[32];
	char loader[16]; /* the starter's loader that brought the NF in (st_loaded.loader) */
	char error[256];
};

struct sb_ctl {
	uint64_t magic;
	uint32_t nnf;
	uint32_t pad;
	struct sb_nf nf[SB_MAX_NFS];
	struct sb_slot slot[SB_MAX_SLOTS];
};

static inline uint64_t sb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
