/*
 * gp_dir.h: the global proxy's directory, a small file mapping in the run directory that serpensd and
 * serpens-gproxy share (Fission's control plane: its router learns function endpoints from it, while the
 * packets themselves only cross the memif link).
 *
 * What it holds:
 *  - routes: per (SFC, position), the instance slots that are READY. serpensd's control thread writes
 *    them under a seqlock (`seq` odd while it writes); the proxy copies the whole table when `seq` moved.
 *  - wanted: per (SFC, position), packets the proxy found no instance for (it holds them). serpensd's
 *    control thread starts an instance for a pair whose count grew, as its auto-start does for SFCs.
 *  - the wake-up words of the proxy (doorbell, sleeping, done, stop), the same Dekker-style protocol as an
 *    instance's (native/serpens/runtime.c), on shared (not process-private) futexes.
 *  - the proxy's counters, written by the proxy only, read by serpensd's stats.
 *
 * Why a file and not a memzone: the proxy is a DPDK primary of its own (another --file-prefix or
 * --in-memory), so it cannot look up serpensd's memzones; a plain MAP_SHARED file works across any two
 * processes and futexes on it are keyed by the file, not the address.
 */
#ifndef SERPENS_GP_DIR_H
#define SERPENS_GP_DIR_H

#include <stdint.h>

#define GP_DIR_MAGIC 0x3152494450475053ull /* "SPGPDIR1" */
#define GP_DIR_VERSION 2 /* 2: 100 slots */
#define GP_MAX_SFCS 32  /* = SP_MAX_SFCS (serpensd checks) */
#define GP_MAX_POS 16   /* = SP_MAX_POS */
#define GP_MAX_SLOTS 100 /* = SM_MAX_INSTANCES */

/* The ready instances of one (SFC, position). */
struct gp_route {
	uint8_t n;
	int8_t slot[GP_MAX_SLOTS];
};

/* Per (SFC, position), as the proxy saw it. */
struct gp_pair_stats {
	uint64_t routed;               /* packets sent back with an instance chosen */
	uint64_t held;                 /* packets put in the hold buffer for want of an instance */
	uint64_t delivered_after_hold; /* held packets later sent back with an instance */
	uint64_t hold_dropped;         /* packets dropped because the hold buffer was full */
	uint64_t link_full;            /* packets dropped because the output queue to serpensd was full */
};

/* The proxy's counters, cumulative since it started; written by the proxy only. */
struct gp_proxy_stats {
	uint64_t rx;            /* packets received from serpensd */
	uint64_t rx_entering;   /* of rx, packets entering their SFC (hop 0, not sent back): the stage's count */
	uint64_t tx;            /* packets sent back */
	uint64_t bad_header;    /* dropped: no wire header, wrong magic/version, or sfc/hop out of range */
	uint64_t held;          /* sums of the per-pair counters */
	uint64_t delivered_after_hold;
	uint64_t hold_dropped;
	uint64_t link_full;     /* dropped: the proxy's own output queue to serpensd was full */
	uint64_t held_now;      /* packets in hold buffers right now */
	uint64_t hold_wait_max_ns; /* longest a hold buffer's oldest packet waited before delivery */
	uint64_t busy_cycles;   /* the `proxy` stage: TSC around bursts that brought or sent packets */
	uint64_t busy_packets;  /* packets received in those bursts */
	uint64_t sleeps;        /* times it went to sleep on the doorbell */
	uint64_t wakeups;       /* times it woke from the doorbell (rung or timed out) */
	uint64_t dir_reloads;   /* route table copies taken after serpensd changed it */
	struct gp_pair_stats pair[GP_MAX_SFCS][GP_MAX_POS];
};

struct gp_dir {
	uint64_t magic;        /* written last by serpensd: the rest is initialised */
	uint32_t version;
	uint32_t size;         /* sizeof(struct gp_dir): both sides were built from one header */
	uint64_t tsc_hz;       /* serpensd's */
	/* serpensd → proxy: the control plane */
	uint32_t seq __attribute__((aligned(64))); /* seqlock over routes: odd while serpensd writes */
	struct gp_route routes[GP_MAX_SFCS][GP_MAX_POS];
	/* proxy → serpensd: packets that found no instance, per pair (monotonic) */
	uint64_t wanted[GP_MAX_SFCS][GP_MAX_POS] __attribute__((aligned(64)));
	/* the proxy's wake-up words (futexes) and its presence */
	uint32_t doorbell __attribute__((aligned(64))); /* serpensd bumps it and wakes the proxy */
	uint32_t sleeping;  /* the proxy is (about to be) asleep on doorbell */
	uint32_t done;      /* the proxy bumps it when it goes to sleep: a serpensd that handed it the core waits on it */
	uint32_t stop;      /* serpensd asks the proxy to exit */
	uint32_t backlog;   /* packets the proxy could not send back yet: serpensd wakes it again soon */
	int32_t proxy_pid;  /* 0 until a proxy attached */
	uint64_t proxy_attach_tsc;
	struct gp_proxy_stats stats __attribute__((aligned(64)));
};

/* serpensd: create (or truncate) the file at path, map it and initialise it. NULL with errno on failure. */
struct gp_dir *gp_dir_create(const char *path, uint64_t tsc_hz);
/* the proxy: map an existing directory; NULL with a reason in err (missing, too small, wrong magic). */
struct gp_dir *gp_dir_open(const char *path, char *err, unsigned int errlen);
void gp_dir_close(struct gp_dir *d);

/* serpensd: publish the ready slots of one pair (n may be 0) under the seqlock. One writer only. */
void gp_dir_set_route(struct gp_dir *d, unsigned int sfc, unsigned int pos, const int8_t *slots,
		      unsigned int n);
/* the proxy: copy the whole route table; returns the (even) seq it copied at. */
uint32_t gp_dir_snapshot(const struct gp_dir *d, struct gp_route out[GP_MAX_SFCS][GP_MAX_POS]);
static inline uint32_t gp_dir_seq(const struct gp_dir *d)
{
	return __atomic_load_n(&d->seq, __ATOMIC_ACQUIRE);
}

/* Ring the proxy's doorbell if it sleeps (call after the packets or routes it should see are published).
 * Returns 1 if it was woken. */
int gp_dir_ring(struct gp_dir *d);
/* Futexes on the directory's words (shared, not FUTEX_PRIVATE). wait returns 0, or -1 with errno. */
int gp_dir_futex_wait(uint32_t *word, uint32_t val, long timeout_ns);
int gp_dir_futex_wake(uint32_t *word, int n);

#endif
