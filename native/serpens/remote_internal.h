/*
 * remote_internal.h: what the files of the remote state backend (Fission, SNF) share. Not for NFs nor
 * for the rest of the platform: their interface is remote_state.h. One concern per file:
 *
 *   state_backend.c   which backend a process runs (serpens | fission | snf), which store each of its
 *                     tables goes to, set-up and forgetting
 *   remote_conn.c     the connection to Redis: AUTH, failures, pipelines, round-trip accounting, PING
 *   remote_acl.c      serpensd: a Redis ACL user per tenant (docs/security.md)
 *   remote_keys.c     where a table's keys, values and metadata live in Redis, and how values are encoded
 *   remote_table.c    remote tables: create_table and the NF API on them (struct sp_state_ops)
 *   remote_cache.c    the instance-local batch cache (arena, index, entries, synchronous fetch)
 *   remote_predict.c  the key-derivation predictor: learn on a miss, queue a batch's prefetch, forget
 *   remote_batch.c    the Chainer's batch hooks: prefetch before an NF's share of a batch, write back after
 *   remote_manager.c  movements of global|write state, and the State Manager's side (claim/release,
 *                     inspection)
 *
 * One connection per process, used by one thread: a runtime's data path, or serpensd's control thread
 * (deployment, scale-out/in, inspection; serpensd's data plane never touches a remote table).
 *
 * The executables export their symbols to NF objects (--export-dynamic); nothing declared here is part
 * of what NFs may resolve, so it is all hidden. What get_state runs per call (hashing, the cache lookup,
 * marking a prediction used) is static inline here, as it was inlined when this was one file.
 */
#ifndef SERPENS_REMOTE_INTERNAL_H
#define SERPENS_REMOTE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "remote_state.h"
#include "serpens/state_ops.h"
#include "state.h"

#pragma GCC visibility push(hidden)

#define RS_MAX_CONST 4     /* constant keys learned per table */
#define RS_CONST_KEY_MAX 64
#define RS_IDLE_MAX 8      /* a derivation whose prefetches went unused this many batches is dropped */
#define RS_MAX_WORDS 64    /* eventual counters kept as a hash of at most this many u64 words */
#define RS_STORE_LEN (SM_NAME_LEN + SM_TENANT_LEN + 1) /* a table's name in Redis (rs_store_name) */
#define RS_KEY_MAX (RS_STORE_LEN + 16 + 256)
#define RS_PIPE_MAX_ARGS 8

/* How a table is laid out in Redis (remote_keys.c). */
enum rs_kind { RS_PLAIN, RS_HOLDER, RS_COUNTERS };
/* Key derivations the predictor knows (remote_predict.c). */
enum { D_FLOW, D_FLOW_REV, D_SRC_IP, D_DST_IP, D_SRC_DST, RS_NDERIV };
#define D_CONST 0x80 /* | constant index */
#define D_NONE 0xff

/* A remote table: the handle an NF holds, with its layout and what the predictor learned about it. */
struct rs_table {
	struct sp_table hdr;
	char full[SM_NAME_LEN];
	char store[RS_STORE_LEN]; /* its name in Redis: the prefix of every key of it (rs_store_name) */
	char owner[SM_NAME_LEN]; /* the NF deployment whose init created it */
	const struct sm_region *region; /* serpensd: its tenant's state region (rs_table_adopt), else NULL */
	uint32_t flags, ks, vs, kind, nwords;
	struct sm_hook_set hooks;
	uint32_t derivs;              /* learned derivations (bit per D_*) */
	uint32_t idle[RS_NDERIV];     /* batches since a prefetch by that derivation was used */
	unsigned int nconst;
	uint8_t konst[RS_MAX_CONST][RS_CONST_KEY_MAX];
	uint32_t kidle[RS_MAX_CONST];
	bool dused[RS_NDERIV], kused[RS_MAX_CONST]; /* in the current batch */
};

/* One key of the batch cache. */
struct rs_entry {
	struct rs_table *t;
	uint64_t h;
	uint8_t known;       /* fetched: was_present/orig are Redis's value at the batch start */
	uint8_t was_present;
	uint8_t present;     /* what get_state answers now */
	uint8_t deleted;
	uint8_t deriv;       /* D_* or D_CONST|i that prefetched it, D_NONE */
	uint8_t *key, *val, *orig;
	struct rs_entry *next_all;
};

/* One command of a pipeline: the longest is a counters table's HMGET or HSET. */
struct rs_cmd {
	int argc;
	const char *argv[RS_PIPE_MAX_ARGS + RS_MAX_WORDS];
	size_t len[RS_PIPE_MAX_ARGS + RS_MAX_WORDS];
};

/* ---- remote_conn.c: the connection to Redis --------------------------------------------------- */

extern struct rs_config rs_cfg;
extern struct rs_stats *rs_st; /* where this process counts (rs_config.stats, or a private struct) */
extern redisContext *rs_ctx;   /* NULL until connected, and again after an I/O error */

/* Take the configuration (defaults filled in) and where to count. */
void rs_conn_configure(const struct rs_config *c);
/* The connection, connecting first if needed (NULL after reporting a failure). */
redisContext *rs_conn(void);
void rs_conn_close(void);
/* Report a store failure (-EIO). Inside a batch of a runtime this does not return (rs_config.fatal). */
int rs_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Queue a command; the first one of a pipeline starts its clock. */
int rs_pipe_add(struct rs_cmd *c);
/* The next reply of the pipeline (NULL after reporting a failure). Replies of type error are failures. */
redisReply *rs_pipe_reply(void);
/* Account one round trip of the commands queued since the pipeline's clock started. */
void rs_pipe_done(void);
/* Read and drop n replies (stops at the first failure). */
void rs_drain(unsigned int n);

/* ---- remote_keys.c: layout and encoding in Redis ---------------------------------------------- */

/* The name table `full` has in Redis: its tenant's prefix "<tenant>:" (rs_tenant_prefix), then the rest
 * of the name, so that a tenant's ACL user, whose key pattern is that prefix, reaches all of its tenant's
 * tables and none of another's. out[RS_STORE_LEN]; its length. */
size_t rs_store_name(const char *full, char *out);
/* Fill t->store from t->full. */
void rs_table_named(struct rs_table *t, const char *full);
/* The field names "0".."63" of a counters hash. */
extern const char *rs_word_field[RS_MAX_WORDS];
extern size_t rs_word_len[RS_MAX_WORDS];
void rs_init_words(void);
enum rs_kind rs_kind_of(uint32_t flags, uint32_t vs, const struct sp_table_opts *o);
/* The Redis key of `key` in t; holder: -2 plain/counters, -1 base, >= 0 instance slot. Its length. */
size_t rs_rkey(const struct rs_table *t, int holder, const void *key, char *out);
/* The key this process reads and writes for `key`: its own sub-state in a release table. */
size_t rs_my_rkey(const struct rs_table *t, const void *key, char *out);
/* Does a write of t from this process go to a base value (a release table, outside any instance)? */
bool rs_writes_base(const struct rs_table *t);
/* The Redis set of t's keys that have a base ("<store>#bases", at most RS_STORE_LEN + 8 bytes); its length. */
size_t rs_bases_key(const struct rs_table *t, char *out);
/* Append SADD of key to t's "#bases" set to the pipeline (one more reply to read). */
int rs_index_base(const struct rs_table *t, const void *key);
/* Append the read of Redis key rk of t to the pipeline. */
int rs_add_read(struct rs_table *t, const char *rk, size_t rklen);
/* Parse a read's reply into val (vs bytes); returns 1 present, 0 absent, -1 malformed. */
int rs_parse_read(const struct rs_table *t, const redisReply *r, uint8_t *val);
/* Record (deploy) or check (attach) the table's metadata in Redis. */
int rs_meta_sync(const char *full, uint32_t flags, const struct sp_table_opts *o, uint32_t kind);

/* ---- remote_table.c: the remote tables of this process ---------------------------------------- */

extern struct rs_table rs_tables[SM_MAX_TABLES];
extern unsigned int rs_ntables;

/* create_table of a table that lives in Redis. */
sp_table *rs_table_create(const char *name, uint32_t flags, const struct sp_table_opts *o);

/* ---- remote_batch.c: the batch the Chainer is running ----------------------------------------- */

struct rs_batch {
	bool active;                 /* between the Chainer's begin and end */
	const char *nf;              /* whose share of the batch it is */
	const struct sp_pkt *pkt;    /* the packet being handled (what a miss learns from) */
	uint64_t ns;                 /* time in round trips so far */
	bool touched;                /* a round trip happened */
};
extern struct rs_batch rs_batch;
extern const struct sp_batch_hooks rs_batch_hooks;

/* Write back the batch's changes now (trigger/update mid-batch); `commit`: afterwards the cache's
 * baseline is its current content. 0 or -EIO. */
int rs_flush_writes(bool commit);

/* ---- remote_cache.c: the batch cache ---------------------------------------------------------- */

/* The cache's index: open addressing, a slot is live only if it carries the current epoch, so a reset
 * is one increment. */
struct rs_index_slot {
	struct rs_entry *e;
	uint64_t epoch;
};
struct rs_index {
	struct rs_index_slot *slot;
	size_t cap, count;
	uint64_t epoch;
};
extern struct rs_index rs_index;

/* Empty the cache (a new batch, or forgetting). */
void rs_cache_reset(void);
/* A new entry for key, absent and not known (NULL after reporting a failure). */
struct rs_entry *rs_cache_add(struct rs_table *t, const void *key, uint64_t h);
/* Every entry of this batch, in the order added (next_all). */
struct rs_entry *rs_cache_entries(void);
/* Set an entry from a read's reply: it is now known, with Redis's value as its baseline. */
void rs_fill_entry(struct rs_entry *e, const redisReply *r);
/* A synchronous read of one key into the cache (a miss inside a batch, or init); e may be NULL. */
struct rs_entry *rs_fetch_sync(struct rs_table *t, const void *key, uint64_t h, struct rs_entry *e);

static inline uint64_t rs_hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

static inline uint64_t rs_entry_hash(const struct rs_table *t, const void *key)
{
	return rs_hash_bytes(key, t->ks, (uint64_t)(uintptr_t)t);
}

static inline struct rs_entry *rs_cache_find(const struct rs_table *t, const void *key, uint64_t h)
{
	size_t mask = rs_index.cap - 1, i;

	if (!rs_index.cap)
		return NULL;
	for (i = h & mask;; i = (i + 1) & mask) {
		struct rs_index_slot *s = &rs_index.slot[i];

		if (s->epoch != rs_index.epoch)
			return NULL;
		if (s->e->h == h && s->e->t == t && memcmp(s->e->key, key, t->ks) == 0)
			return s->e;
	}
}

/* ---- remote_predict.c: the key-derivation predictor ------------------------------------------- */

/* A get_state the prefetch did not foresee: learn how to predict it next time. */
void rs_learn(struct rs_table *t, const void *key);
/* Queue (not send) the reads of the keys nf's tables will probably use for pkts[0..n), each once; new
 * cache entries for them in *pend, in pipeline order. How many, or -1 after reporting a failure. */
int rs_predict_queue(const char *nf, const struct sp_pkt *pkts, unsigned int n, struct rs_entry ***pend);
/* After nf's batch: drop derivations and constants whose prefetches went unused too long. */
void rs_predict_age(const char *nf);

/* A cached entry was used: credit the derivation that prefetched it. */
static inline void rs_mark_used(struct rs_entry *e)
{
	if (e->deriv == D_NONE)
		return;
	if (e->deriv & D_CONST)
		e->t->kused[e->deriv & 0x7f] = true;
	else
		e->t->dused[e->deriv] = true;
}

/* ---- remote_manager.c: state movements and the State Manager's side ---------------------------- */

/* Fetch base and holders (active slots, plus `merging`), apply the hook(s), write them all back. The
 * caller holds the State Manager's pause. kind2 >= 0: a second hook over the remaining active slots
 * (release of a slot: merge, then redistribute). */
int rs_remote_hook(struct rs_table *t, const void *key, enum sm_hook_kind kind, int merging, int kind2);
extern const struct sm_remote_hooks rs_mgr_hooks;

#pragma GCC visibility pop

#endif /* SERPENS_REMOTE_INTERNAL_H */
