/*
 * serpens/state_ops.h: how a platform plugs its state store behind the NF API of nf.h.
 *
 * Every table handle an NF gets from create_table starts with a struct sp_table whose `ops` names the
 * implementation that owns the table; the sp_* calls of nf.h dispatch through it (state.c: the shared-
 * memory State Manager is tested first and called directly, so the serpens fast path costs one compare
 * and no indirect call). Which implementation a table gets is decided when it is created: by default the
 * State Manager; a platform that keeps state elsewhere installs a creator with sp_state_set_creator()
 * (native/serpens/state_backend.c: Fission keeps every table in Redis, SNF the global ones) that may hand
 * a table back to the State Manager (sm_create_table, serpens/state.h).
 *
 * Backends that cannot answer get_state from local memory cache values for a batch; the Chainer tells
 * them where batches of one NF begin and end, and which packet is being handled, through
 * sp_batch_hooks (NULL when no such backend is active: the Chainer then does nothing extra).
 */
#ifndef SERPENS_STATE_OPS_H
#define SERPENS_STATE_OPS_H

#include <stdint.h>

#include "serpens/nf.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sp_state_ops {
	const char *name; /* "shm", "redis", ... */
	void *(*get_state)(sp_table *t, const void *key);
	int (*put_state)(sp_table *t, const void *key, const void *value);
	int (*delete_state)(sp_table *t, const void *key);
	int (*split)(sp_table *t, const void *key);
	int (*merge)(sp_table *t, const void *key);
	int (*update)(sp_table *t, const void *key);
	int (*trigger)(sp_table *t, const void *key);
	int (*timer)(sp_table *t, const void *key, uint64_t timeout_us);
};

/* The head of every backend's table handle. */
struct sp_table {
	const struct sp_state_ops *ops;
};

/* create_table of a backend: NULL (errno set, reason reported) on failure. */
typedef sp_table *(*sp_create_fn)(const char *name, uint32_t flags, const struct sp_table_opts *opts);

/* Route create_table to fn (NULL: the State Manager). Per process. */
void sp_state_set_creator(sp_create_fn fn);

/* Batch notifications for caching backends (the Chainer calls them around each NF's share of a batch). */
struct sp_batch_hooks {
	/* the NF deployment `nf` is about to handle pkts[0..n) (its packets of this batch, as they are now) */
	void (*begin)(const char *nf, const struct sp_pkt *pkts, unsigned int n);
	/* the handler is about to be called on pkt (a pointer to one of begin's pkts or a copy of it) */
	void (*packet)(const struct sp_pkt *pkt);
	/* the NF has handled them all: write back */
	void (*end)(void);
};
extern const struct sp_batch_hooks *sp_batch_hooks;

#ifdef __cplusplus
}
#endif

#endif /* SERPENS_STATE_OPS_H */
