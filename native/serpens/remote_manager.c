/*
 * remote_manager.c: movements of global|write state kept in Redis, and the State Manager's side of the
 * remote backend (serpensd's control thread). A release table keeps a base value and one sub-state per
 * instance slot; the State Manager's hooks (sm_apply_hook: nf.h's defaults or the NF's own) move items
 * between them under the same server-wide pause as for shared memory — when an NF asks (trigger/update,
 * remote_table.c), when serpensd claims an instance slot (split) or releases one (merge back, then
 * redistribute). Inspection (read_state, dump_table, stats' counts) reads remote tables from Redis.
 */
#include "remote_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* One key of t: base and holders fetched in one round trip, hooked, written back in another. */
int rs_remote_hook(struct rs_table *t, const void *key, enum sm_hook_kind kind, int merging, int kind2)
{
	struct sm_region *r = sm_get_region();
	uint8_t *buf = malloc((size_t)t->vs * (1 + SM_MAX_INSTANCES));
	void *vals[SM_MAX_INSTANCES], *vals2[SM_MAX_INSTANCES];
	int holders[1 + SM_MAX_INSTANCES], nh = 0, i, k, rc = 0;
	char rk[RS_KEY_MAX];
	struct rs_cmd c;

	if (!buf)
		return -ENOMEM;
	holders[nh++] = -1;
	for (i = 0; i < SM_MAX_INSTANCES; i++)
		if (sm_instance_active(r, i) || i == merging)
			holders[nh++] = i;
	for (k = 0; k < nh; k++) {
		c.argv[0] = "GET", c.len[0] = 3;
		c.argv[1] = rk, c.len[1] = rs_rkey(t, holders[k], key, rk);
		c.argc = 2;
		if (rs_pipe_add(&c) != 0) {
			free(buf);
			return -EIO;
		}
	}
	for (k = 0; k < nh; k++) {
		redisReply *rep = rs_pipe_reply();
		uint8_t *v = buf + (size_t)k * t->vs;

		if (!rep) {
			free(buf);
			return -EIO;
		}
		memset(v, 0, t->vs);
		if (rep->type == REDIS_REPLY_STRING && rep->len == t->vs)
			memcpy(v, rep->str, t->vs);
		else if (k == 0)
			rc = -ENOENT; /* no base: the key does not exist */
		freeReplyObject(rep);
	}
	rs_pipe_done();
	if (rc != 0) {
		free(buf);
		return rc;
	}
	memset(vals, 0, sizeof(vals));
	memset(vals2, 0, sizeof(vals2));
	for (k = 1; k < nh; k++) {
		if (kind == SM_HOOK_MERGE && merging >= 0) {
			if (holders[k] == merging)
				vals[holders[k]] = buf + (size_t)k * t->vs;
		} else {
			vals[holders[k]] = buf + (size_t)k * t->vs;
		}
		if (holders[k] != merging)
			vals2[holders[k]] = buf + (size_t)k * t->vs;
	}
	sm_apply_hook(&t->hooks, t->flags, t->vs, kind, buf, vals, merging);
	if (kind2 >= 0)
		sm_apply_hook(&t->hooks, t->flags, t->vs, (enum sm_hook_kind)kind2, buf, vals2, -1);
	for (k = 0; k < nh; k++) {
		c.argv[1] = rk, c.len[1] = rs_rkey(t, holders[k], key, rk);
		if (holders[k] >= 0 && holders[k] == merging && !sm_instance_active(r, merging)) {
			c.argv[0] = "DEL", c.len[0] = 3, c.argc = 2; /* the slot is gone */
		} else {
			c.argv[0] = "SET", c.len[0] = 3, c.argc = 3;
			c.argv[2] = (const char *)(buf + (size_t)k * t->vs), c.len[2] = t->vs;
		}
		if (rs_pipe_add(&c) != 0) {
			free(buf);
			return -EIO;
		}
	}
	rs_drain((unsigned int)nh);
	rs_pipe_done();
	free(buf);
	return rs_ctx ? 0 : -EIO;
}

static size_t glob_escape(const char *s, char *out, size_t cap)
{
	size_t n = 0;

	for (; *s && n + 3 < cap; s++) {
		if (strchr("*?[]\\", *s))
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n] = '\0';
	return n;
}

/* Every key of a table (as stored under prefix "<store>:" or "<store>@b:"): calls fn(key). */
static int scan_keys(const char *full, const char *suffix, uint32_t ks, void (*fn)(const uint8_t *key, void *c),
		     void *c)
{
	char pat[2 * RS_STORE_LEN + 16], cursor[32] = "0", store[RS_STORE_LEN];
	size_t plen = rs_store_name(full, store) + strlen(suffix), n;
	struct rs_cmd cmd;

	n = glob_escape(store, pat, sizeof(pat) - 8);
	snprintf(pat + n, sizeof(pat) - n, "%s*", suffix);
	do {
		redisReply *r;
		size_t i;

		cmd.argv[0] = "SCAN", cmd.len[0] = 4;
		cmd.argv[1] = cursor, cmd.len[1] = strlen(cursor);
		cmd.argv[2] = "MATCH", cmd.len[2] = 5;
		cmd.argv[3] = pat, cmd.len[3] = strlen(pat);
		cmd.argv[4] = "COUNT", cmd.len[4] = 5;
		cmd.argv[5] = "1000", cmd.len[5] = 4;
		cmd.argc = 6;
		if (rs_pipe_add(&cmd) != 0 || !(r = rs_pipe_reply()))
			return -EIO;
		rs_pipe_done();
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			freeReplyObject(r);
			return rs_fail("SCAN: unexpected reply");
		}
		snprintf(cursor, sizeof(cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
		for (i = 0; i < r->element[1]->elements; i++) {
			const redisReply *k = r->element[1]->element[i];

			if (k->len == plen + ks)
				fn((const uint8_t *)k->str + plen, c);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	return 0;
}

struct key_list {
	uint8_t *keys;
	size_t n, cap;
	uint32_t ks;
};

static void collect(const uint8_t *key, void *c)
{
	struct key_list *l = c;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		uint8_t *k = realloc(l->keys, cap * l->ks);

		if (!k)
			return;
		l->keys = k;
		l->cap = cap;
	}
	memcpy(l->keys + l->n++ * l->ks, key, l->ks);
}

/* The keys of release table t that have a base, from its "#bases" set (remote_keys.c): one round trip,
 * however many flows' keys Redis holds. */
static int base_keys(const struct rs_table *t, struct key_list *l)
{
	char sk[RS_STORE_LEN + 8];
	struct rs_cmd c;
	redisReply *r;
	size_t i;

	c.argv[0] = "SMEMBERS", c.len[0] = 8;
	c.argv[1] = sk, c.len[1] = rs_bases_key(t, sk);
	c.argc = 2;
	if (rs_pipe_add(&c) != 0 || !(r = rs_pipe_reply()))
		return -EIO;
	rs_pipe_done();
	if (r->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		return rs_fail("SMEMBERS %s: unexpected reply", sk);
	}
	for (i = 0; i < r->elements; i++)
		if (r->element[i]->type == REDIS_REPLY_STRING && r->element[i]->len == t->ks)
			collect((const uint8_t *)r->element[i]->str, l);
	freeReplyObject(r);
	return 0;
}

/* Split (claim) or merge back (release) every base of every release table of region r's tenant (slot is
 * an instance slot of that tenant's: another tenant's pools must not be dealt to it), inside the State
 * Manager's pause (state.c): only the bases' round trips, never a walk of the keyspace. */
static void each_holder_table(const struct sm_region *r, int slot, bool release)
{
	unsigned int i;
	size_t k;

	for (i = 0; i < rs_ntables; i++) {
		struct rs_table *t = &rs_tables[i];
		struct key_list l = {.ks = t->ks};

		if (!t->hdr.ops || t->kind != RS_HOLDER || (t->region && t->region != r))
			continue;
		if (base_keys(t, &l) != 0)
			continue;
		for (k = 0; k < l.n; k++) {
			if (release)
				rs_remote_hook(t, l.keys + k * t->ks, SM_HOOK_MERGE, slot, SM_HOOK_UPDATE);
			else
				rs_remote_hook(t, l.keys + k * t->ks, SM_HOOK_SPLIT, -1, -1);
		}
		free(l.keys);
	}
}

static void mgr_claim(struct sm_region *r, int slot) { each_holder_table(r, slot, false); }

static void mgr_release(struct sm_region *r, int slot) { each_holder_table(r, slot, true); }

static struct rs_table *table_named(const char *full, uint32_t flags, uint32_t ks, uint32_t vs,
				    struct rs_table *tmp)
{
	struct sp_table_opts o = {.key_size = ks, .value_size = vs, .capacity = 1};
	unsigned int i;

	for (i = 0; i < rs_ntables; i++)
		if (rs_tables[i].hdr.ops && strcmp(rs_tables[i].full, full) == 0)
			return &rs_tables[i];
	memset(tmp, 0, sizeof(*tmp)); /* not created in this process: assume the default hooks */
	rs_table_named(tmp, full);
	tmp->flags = flags, tmp->ks = ks, tmp->vs = vs, tmp->nwords = vs / 8;
	tmp->kind = rs_kind_of(flags, vs, &o);
	return tmp;
}

/* The merged value, as sm_table_lookup gives it for shared-memory tables. */
static int mgr_lookup(const char *full, uint32_t flags, const void *key, uint32_t ks, void *out, uint32_t vs)
{
	struct sm_region *r = sm_get_region();
	struct rs_table tmp, *t = table_named(full, flags, ks, vs, &tmp);
	char rk[RS_KEY_MAX];
	uint8_t *v;
	redisReply *rep;
	struct rs_cmd c;
	int i, present;

	if (!rs_conn())
		return -EIO;
	if (t->kind != RS_HOLDER) {
		c.argc = 0;
		if (rs_add_read(t, rk, rs_rkey(t, -2, key, rk)) != 0 || !(rep = rs_pipe_reply()))
			return -EIO;
		rs_pipe_done();
		present = rs_parse_read(t, rep, out);
		freeReplyObject(rep);
		return present == 1 ? 0 : present == 0 ? -ENOENT : -EINVAL;
	}
	v = malloc(vs);
	if (!v)
		return -ENOMEM;
	c.argv[0] = "GET", c.len[0] = 3, c.argc = 2;
	c.argv[1] = rk, c.len[1] = rs_rkey(t, -1, key, rk);
	if (rs_pipe_add(&c) != 0 || !(rep = rs_pipe_reply())) {
		free(v);
		return -EIO;
	}
	rs_pipe_done();
	present = rep->type == REDIS_REPLY_STRING && rep->len == vs;
	if (present)
		memcpy(out, rep->str, vs);
	freeReplyObject(rep);
	for (i = 0; present && i < SM_MAX_INSTANCES; i++) {
		if (!sm_instance_active(r, i))
			continue;
		c.argv[1] = rk, c.len[1] = rs_rkey(t, i, key, rk);
		if (rs_pipe_add(&c) != 0 || !(rep = rs_pipe_reply())) {
			free(v);
			return -EIO;
		}
		rs_pipe_done();
		if (rep->type == REDIS_REPLY_STRING && rep->len == vs) {
			memcpy(v, rep->str, vs);
			if (flags & SP_EVENTUAL) {
				uint64_t *o = out, *x = (uint64_t *)v;
				uint32_t k;

				for (k = 0; k < vs / 8; k++)
					o[k] += x[k];
			} else if (vs >= sizeof(struct sp_pool)) {
				((struct sp_pool *)out)->nfree += ((struct sp_pool *)v)->nfree;
			}
		}
		freeReplyObject(rep);
	}
	free(v);
	return present ? 0 : -ENOENT;
}

struct foreach_ctx {
	const char *full;
	uint32_t flags, ks, vs;
	uint8_t *buf;
	void (*fn)(const void *key, const void *value, void *ctx);
	void *ctx;
};

static void foreach_one(const uint8_t *key, void *c)
{
	struct foreach_ctx *f = c;

	if (mgr_lookup(f->full, f->flags, key, f->ks, f->buf, f->vs) == 0)
		f->fn(key, f->buf, f->ctx);
}

static int mgr_foreach(const char *full, uint32_t flags, uint32_t ks, uint32_t vs,
		       void (*fn)(const void *key, const void *value, void *ctx), void *ctx)
{
	struct rs_table tmp, *t = table_named(full, flags, ks, vs, &tmp);
	struct foreach_ctx f = {.full = full, .flags = flags, .ks = ks, .vs = vs, .fn = fn, .ctx = ctx};
	struct key_list l = {.ks = ks};
	size_t k;
	int rc;

	if (!rs_conn())
		return -EIO;
	f.buf = malloc(vs);
	if (!f.buf)
		return -ENOMEM;
	/* collect first: lookups inside a SCAN would interleave replies */
	rc = scan_keys(full, t->kind == RS_HOLDER ? "@b:" : ":", ks, collect, &l);
	for (k = 0; rc == 0 && k < l.n; k++)
		foreach_one(l.keys + k * ks, &f);
	free(l.keys);
	free(f.buf);
	return rc;
}

static void count_one(const uint8_t *key, void *c)
{
	(void)key;
	(*(int64_t *)c)++;
}

static int64_t mgr_count(const char *full, uint32_t flags, uint32_t ks)
{
	struct rs_table tmp, *t = table_named(full, flags, ks, 8, &tmp);
	int64_t n = 0;

	if (!rs_conn())
		return -1;
	return scan_keys(full, t->kind == RS_HOLDER ? "@b:" : ":", ks, count_one, &n) == 0 ? n : -1;
}

const struct sm_remote_hooks rs_mgr_hooks = {
	.claim = mgr_claim,
	.release = mgr_release,
	.lookup = mgr_lookup,
	.foreach = mgr_foreach,
	.count = mgr_count,
};

