/*
 * remote_state.h: NF state in Redis behind the same NF API (nf.h), for the Fission and SNF baselines
 * (paper Section V-B, DESIGN.md section 3). Design, consistency and what differs from the real systems:
 * docs/state-backends.md.
 *
 *   fission  every table in Redis;
 *   snf      per-flow tables in the State Manager (local shared memory), global tables in Redis.
 *
 * Keys in Redis: "<deployment>/<table>:" + the binary key (plain tables and eventual counters, the
 * latter as a hash of decimal u64 words "0".."n-1" updated with HINCRBY), "<deployment>/<table>@b:" +
 * key (a release table's base value) and "...@<slot>:" + key (instance slot's sub-state); table metadata
 * in the hash "<deployment>/<table>#meta".
 *
 * In a runtime, the Chainer brackets each NF's share of a batch (sp_batch_hooks): before it, the keys
 * every packet will probably use (learned per table: the packet's flow, its reverse, source or
 * destination address, constants seen before) are fetched in one pipelined round trip; get_state is
 * served from that batch cache (a key not fetched costs one synchronous round trip: a miss); after it,
 * every changed value is written back in one pipelined round trip.
 *
 * Implemented by state_backend.c (the backend enum, rs_setup, rs_forget) and the remote_*.c files, one
 * concern each (map in remote_internal.h).
 */
#ifndef SERPENS_REMOTE_STATE_H
#define SERPENS_REMOTE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "state.h"

enum rs_backend { RS_SERPENS = 0, RS_FISSION = 1, RS_SNF = 2 };

/* Counters of one process (a runtime: its instance's), cumulative. Per-batch figures are these over
 * `batches` (NF batches that touched remote state). */
struct rs_stats {
	uint64_t batches;       /* NF batches with remote state access */
	uint64_t round_trips;   /* pipelines sent and answered (prefetch, write-back, misses, hooks) */
	uint64_t ops;           /* Redis commands */
	uint64_t prefetched;    /* keys fetched ahead of a batch */
	uint64_t hits;          /* get_state served from the batch cache */
	uint64_t misses;        /* get_state not prefetched: one synchronous round trip each */
	uint64_t writes;        /* keys written back */
	uint64_t ns;            /* time spent in remote access (network + Redis) */
	uint64_t last_batch_ns; /* ... in the last batch */
	uint64_t max_batch_ns;  /* ... in the slowest batch */
};

struct rs_config {
	enum rs_backend backend;
	const char *host;
	int port;
	unsigned int timeout_ms;  /* connect and command timeout */
	struct rs_stats *stats;   /* where to count (NULL: a private struct) */
	/* A store failure inside a batch: the runtime cannot go on (the batch's state is lost), so it calls
	 * this, which must not return. NULL (serpensd): errors are reported and returned instead. */
	void (*fatal)(const char *msg);
	int manager;              /* 1 in serpensd: also install the State Manager's remote hooks */
	/* Who this process is to Redis (docs/security.md): buffers read at every connect, since a runtime
	 * learns its tenant's credential from serpensd (handover.h) after it is configured. NULL or "": no
	 * AUTH (the default user, which the harness's Redis lets do nothing but PING). */
	const char *user, *pass;
};

/* Install the backend in this process (create_table routing, the Chainer's batch hooks and, in the
 * State Manager, claim/release/inspection). RS_SERPENS installs nothing. 0 or -EINVAL. */
int rs_setup(const struct rs_config *c);
/* Connect now and PING: 0, or -1 with a message in err. */
int rs_ping(char *err, size_t errlen);
/* Forget this process's remote table handles and close the connection (a pooled runtime that returns to
 * the pool; it reconnects on its next instance). */
void rs_forget(void);
/* Close this process's connection but keep its tables (the loaded NFs hold their handles): a zygote
 * before it forks (--startup fork), so that no child ever shares its socket — two processes on one Redis
 * connection would read each other's replies. The next access (the child's) connects anew. */
void rs_disconnect(void);
/* serpensd: enter a remote table that a tenant's deployer created (deployer.h) among this process's, with
 * the default hooks, so that the State Manager moves its sub-states on scale-out/in. 0, or -ENOSPC. */
int rs_table_adopt(const char *full, const char *owner, const struct sm_region *region, uint32_t flags, uint32_t ks,
		   uint32_t vs);

/* serpensd (connected as the store's admin): make tenant's Redis ACL user, which reaches only that
 * tenant's keys, with a new random password. user[RS_USER_LEN], pass[RS_PASS_LEN]. 0, or -1 with err. */
#define RS_USER_LEN 48
#define RS_PASS_LEN 48
int rs_tenant_user(const char *tenant, char *user, char *pass, char *err, size_t errlen);
/* The Redis key prefix of tenant's state, "<tenant>:" (the default tenant's too): a tenant's ACL user
 * reaches only keys that start with it. Its length. */
size_t rs_tenant_prefix(const char *tenant, char *out, size_t cap);

const char *rs_backend_name(enum rs_backend b);
int rs_backend_parse(const char *s); /* the enum, or -1 */

#endif
