/*
 * remote_table.c: tables that live in Redis — their create_table (metadata in Redis, a name in the State
 * Manager's directory, a handle in this process) and the NF API on them (struct sp_state_ops). Inside a
 * batch, get/put/delete work on the batch cache (remote_cache.c) and cost no round trip when the key was
 * prefetched; outside one (deployment, init) they go to Redis at once. docs/state-backends.md.
 */
#include "remote_internal.h"

#include <errno.h>
#include <stdio.h>

struct rs_table rs_tables[SM_MAX_TABLES];
unsigned int rs_ntables;

static inline struct rs_table *as_rs(sp_table *t) { return (struct rs_table *)t; }

static void *rs_get_state(sp_table *ht, const void *key)
{
	struct rs_table *t = as_rs(ht);
	uint64_t h = rs_entry_hash(t, key);
	struct rs_entry *e = rs_cache_find(t, key, h);

	if (e) {
		if (e->known || e->present || e->deleted) {
			rs_st->hits += rs_batch.active;
			rs_mark_used(e);
			return e->present ? e->val : NULL;
		}
	}
	if (rs_batch.active) {
		rs_st->misses++;
		rs_learn(t, key);
	}
	e = rs_fetch_sync(t, key, h, e);
	return e && e->present ? e->val : NULL;
}

/* Write one value now (deployment, init, or outside a batch). */
static int write_sync(struct rs_table *t, const void *key, const void *value, bool base)
{
	char rk[RS_KEY_MAX], num[RS_MAX_WORDS][32];
	struct rs_cmd c;
	size_t n = base && t->kind == RS_HOLDER ? rs_rkey(t, -1, key, rk) : rs_my_rkey(t, key, rk);
	unsigned int queued = 0;
	uint32_t w;

	if (t->kind == RS_COUNTERS) { /* the value as a whole: replace the hash */
		c.argv[0] = "DEL", c.len[0] = 3, c.argv[1] = rk, c.len[1] = n, c.argc = 2;
		if (rs_pipe_add(&c) != 0)
			return -EIO;
		queued++;
		c.argv[0] = "HSET", c.len[0] = 4;
		for (w = 0; w < t->nwords; w++) {
			uint64_t v;

			memcpy(&v, (const uint8_t *)value + 8 * w, 8);
			c.argv[2 + 2 * w] = rs_word_field[w], c.len[2 + 2 * w] = rs_word_len[w];
			c.len[3 + 2 * w] = (size_t)snprintf(num[w], sizeof(num[w]), "%lld", (long long)v);
			c.argv[3 + 2 * w] = num[w];
		}
		c.argc = 2 + 2 * (int)t->nwords;
		if (c.argc > (int)(sizeof(c.argv) / sizeof(c.argv[0])))
			c.argc = (int)(sizeof(c.argv) / sizeof(c.argv[0])) & ~1;
	} else {
		c.argv[0] = "SET", c.len[0] = 3, c.argv[1] = rk, c.len[1] = n;
		c.argv[2] = value, c.len[2] = t->vs, c.argc = 3;
	}
	if (rs_pipe_add(&c) != 0)
		return -EIO;
	queued++;
	if (rs_writes_base(t)) { /* scale-out/in find the bases through this set (remote_keys.c) */
		if (rs_index_base(t, key) != 0)
			return -EIO;
		queued++;
	}
	rs_drain(queued);
	rs_pipe_done();
	return rs_ctx ? 0 : -EIO;
}

static int rs_put_state(sp_table *ht, const void *key, const void *value)
{
	struct rs_table *t = as_rs(ht);
	uint64_t h = rs_entry_hash(t, key);
	struct rs_entry *e;
	int rc;

	if (sm_phase_attach())
		return 0; /* init re-run in a runtime: deployment already wrote this state */
	if ((t->flags & SP_READ) && !sm_phase_deploy()) {
		sm_error("nf %s: put_state on read-only table '%s' outside init", sm_nf_name(), t->full);
		return -EPERM;
	}
	e = rs_cache_find(t, key, h);
	if (!rs_batch.active) {
		rc = write_sync(t, key, value, sm_phase_deploy());
		if (rc == 0 && e && e->val != value) {
			memcpy(e->val, value, t->vs);
			memcpy(e->orig, value, t->vs);
			e->known = e->was_present = e->present = 1;
		}
		return rc;
	}
	if (!e || (!e->known && t->kind == RS_COUNTERS)) {
		/* eventual counters are written as increments: the baseline must be known */
		if (t->kind == RS_COUNTERS) {
			rs_st->misses++;
			e = rs_fetch_sync(t, key, h, e);
		} else {
			e = rs_cache_add(t, key, h); /* known = 0: written back unconditionally */
		}
		if (!e)
			return -EIO;
	}
	if (e->val != value)
		memcpy(e->val, value, t->vs);
	e->present = 1;
	e->deleted = 0;
	return 0;
}

static int rs_delete_state(sp_table *ht, const void *key)
{
	struct rs_table *t = as_rs(ht);
	uint64_t h = rs_entry_hash(t, key);
	struct rs_entry *e;
	char rk[RS_KEY_MAX];
	struct rs_cmd c;
	redisReply *r;
	int existed;

	if (t->flags & SP_GLOBAL) {
		sm_error("nf %s: delete_state on global table '%s' is not allowed (global state cannot be deleted "
			 "while the NF runs)", sm_nf_name(), t->full);
		return -EPERM;
	}
	e = rs_cache_find(t, key, h);
	if (e && rs_batch.active) {
		existed = e->present;
		e->present = 0;
		e->deleted = 1;
		if (e->known)
			return existed ? 0 : -ENOENT;
		return 0;
	}
	c.argv[0] = "DEL", c.len[0] = 3;
	c.argv[1] = rk, c.len[1] = rs_my_rkey(t, key, rk);
	c.argc = 2;
	if (rs_pipe_add(&c) != 0 || !(r = rs_pipe_reply()))
		return -EIO;
	rs_pipe_done();
	existed = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
	freeReplyObject(r);
	if (e)
		e->present = 0, e->was_present = 0, e->known = 1;
	return existed ? 0 : -ENOENT;
}

/* split/merge/update/trigger from an NF: flush this batch's writes, pause the other instances, run the
 * hook in Redis, resume, and refresh this instance's cached value of the key in place (the NF may hold
 * the pointer; Fig. 9 reads it again). */
static int rs_hook_on_key(sp_table *ht, const void *key, enum sm_hook_kind kind)
{
	struct rs_table *t = as_rs(ht);
	struct sm_region *r = sm_get_region();
	int slot = sm_get_instance(), rc;
	struct rs_entry *e;
	uint64_t h;

	if ((t->flags & (SP_GLOBAL | SP_WRITE)) != (SP_GLOBAL | SP_WRITE)) {
		sm_error("nf %s: split/merge/update/trigger on '%s', which is not global|write", sm_nf_name(),
			 t->full);
		return -EPERM;
	}
	if (t->kind == RS_COUNTERS)
		return 0; /* every instance adds into one value: nothing to move */
	if (rs_batch.active && rs_flush_writes(true) != 0)
		return -EIO;
	if (slot >= 0)
		sm_batch_end(r, slot);
	sm_pause(r, slot);
	rc = rs_remote_hook(t, key, kind, -1, -1);
	sm_resume_as(r, kind);
	if (slot >= 0)
		sm_batch_begin(r, slot);
	h = rs_entry_hash(t, key);
	e = rs_cache_find(t, key, h);
	if (e && rc == 0)
		rs_fetch_sync(t, key, h, e);
	return rc;
}

static int rs_split(sp_table *t, const void *key) { return rs_hook_on_key(t, key, SM_HOOK_SPLIT); }
static int rs_merge(sp_table *t, const void *key) { return rs_hook_on_key(t, key, SM_HOOK_MERGE); }
static int rs_update(sp_table *t, const void *key) { return rs_hook_on_key(t, key, SM_HOOK_UPDATE); }

static int rs_timer(sp_table *ht, const void *key, uint64_t timeout_us)
{
	struct rs_table *t = as_rs(ht);

	(void)key;
	if ((t->flags & (SP_GLOBAL | SP_WRITE)) != (SP_GLOBAL | SP_WRITE)) {
		sm_error("nf %s: timer on '%s', which is not global|write", sm_nf_name(), t->full);
		return -EPERM;
	}
	if (timeout_us == 0)
		return -EINVAL;
	/* Counters need no periodic fold (one value, every instance adds into it); release sub-states are
	 * rebalanced by trigger and on scale-out/in. docs/state-backends.md. */
	return 0;
}

static const struct sp_state_ops rs_ops = {
	.name = "redis",
	.get_state = rs_get_state,
	.put_state = rs_put_state,
	.delete_state = rs_delete_state,
	.split = rs_split,
	.merge = rs_merge,
	.update = rs_update,
	.trigger = rs_update,
	.timer = rs_timer,
};

sp_table *rs_table_create(const char *name, uint32_t flags, const struct sp_table_opts *o)
{
	char full[SM_NAME_LEN];
	struct rs_table *t = NULL;
	unsigned int i;
	uint32_t kind;
	int rc;

	rc = sm_check_table_args(name, flags, o, full, sizeof(full));
	if (rc != 0) {
		errno = -rc;
		return NULL;
	}
	kind = rs_kind_of(flags, o->value_size, o);
	rc = rs_conn() ? rs_meta_sync(full, flags, o, kind) : -EIO;
	if (rc == 0) {
		rc = sm_register_remote(name, flags, o); /* the directory: names for stats and inspection */
		rc = rc < 0 ? rc : 0;
	}
	if (rc != 0) {
		errno = -rc;
		return NULL;
	}
	for (i = 0; i < rs_ntables; i++)
		if (strcmp(rs_tables[i].full, full) == 0)
			t = &rs_tables[i];
	if (!t) {
		if (rs_ntables == SM_MAX_TABLES) {
			sm_error("nf %s: create_table(\"%s\"): too many remote tables", sm_nf_name(), name);
			errno = ENOSPC;
			return NULL;
		}
		t = &rs_tables[rs_ntables++];
		memset(t, 0, sizeof(*t));
	}
	t->hdr.ops = &rs_ops;
	rs_table_named(t, full);
	snprintf(t->owner, sizeof(t->owner), "%s", sm_nf_name());
	t->flags = flags;
	t->ks = o->key_size;
	t->vs = o->value_size;
	t->kind = kind;
	t->nwords = o->value_size / 8;
	t->hooks = (struct sm_hook_set){.split = o->split, .merge = o->merge, .update = o->update};
	return &t->hdr;
}

int rs_table_adopt(const char *full, const char *owner, const struct sm_region *region, uint32_t flags, uint32_t ks,
		   uint32_t vs)
{
	struct sp_table_opts o = {.key_size = ks, .value_size = vs, .capacity = 1};
	struct rs_table *t = NULL;
	unsigned int i;

	for (i = 0; i < rs_ntables; i++)
		if (strcmp(rs_tables[i].full, full) == 0)
			t = &rs_tables[i];
	if (!t) {
		if (rs_ntables == SM_MAX_TABLES)
			return -ENOSPC;
		t = &rs_tables[rs_ntables++];
	}
	memset(t, 0, sizeof(*t));
	t->hdr.ops = &rs_ops;
	rs_table_named(t, full);
	snprintf(t->owner, sizeof(t->owner), "%s", owner);
	t->region = region;
	t->flags = flags;
	t->ks = ks;
	t->vs = vs;
	t->kind = rs_kind_of(flags, vs, &o); /* the default hooks: deployment refuses an NF with its own */
	t->nwords = vs / 8;
	return 0;
}
