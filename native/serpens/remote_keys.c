/*
 * remote_keys.c: where a remote table lives in Redis and how its values are encoded (the layout is in
 * remote_state.h and docs/state-backends.md): the table's kind, the Redis key of one of its keys (plain,
 * a release table's base or an instance slot's sub-state), the read of a value and its parsing (bytes,
 * or a counters hash of decimal u64 words), the table's "#meta" record and its "#bases" set.
 */
#include "remote_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

const char *rs_word_field[RS_MAX_WORDS];
size_t rs_word_len[RS_MAX_WORDS];

void rs_init_words(void)
{
	static char names[RS_MAX_WORDS][4];
	int i;

	for (i = 0; i < RS_MAX_WORDS; i++) {
		rs_word_len[i] = (size_t)snprintf(names[i], sizeof(names[i]), "%d", i);
		rs_word_field[i] = names[i];
	}
}

size_t rs_tenant_prefix(const char *tenant, char *out, size_t cap)
{
	return (size_t)snprintf(out, cap, "%s:", tenant);
}

/* The State Manager names the default tenant's tables "<nf>/<table>" and any other's
 * "<tenant>:<nf>/<table>" (state.h); in Redis every table carries its tenant, so that one key pattern
 * per tenant names exactly its keys (an NF of the default tenant named "alice:x" stays "default:alice:x"). */
size_t rs_store_name(const char *full, char *out)
{
	const char *colon = strchr(full, ':'), *slash = strchr(full, '/');
	size_t n = 0;

	if (!colon || (slash && slash < colon))
		n = rs_tenant_prefix(SM_DEFAULT_TENANT, out, RS_STORE_LEN);
	return n + (size_t)snprintf(out + n, RS_STORE_LEN - n, "%s", full);
}

void rs_table_named(struct rs_table *t, const char *full)
{
	snprintf(t->full, sizeof(t->full), "%s", full);
	rs_store_name(full, t->store);
}

/* Eventual tables with the default hooks whose values are whole u64 words (that fit one HSET) are
 * counters; other global|write tables keep a base and one sub-state per instance slot. */
enum rs_kind rs_kind_of(uint32_t flags, uint32_t vs, const struct sp_table_opts *o)
{
	if ((flags & (SP_GLOBAL | SP_WRITE)) != (SP_GLOBAL | SP_WRITE))
		return RS_PLAIN;
	if ((flags & SP_EVENTUAL) && !o->split && !o->merge && !o->update && vs % 8 == 0 &&
	    vs / 8 <= RS_MAX_WORDS && vs / 8 <= (RS_PIPE_MAX_ARGS + RS_MAX_WORDS - 2) / 2)
		return RS_COUNTERS;
	return RS_HOLDER;
}

size_t rs_rkey(const struct rs_table *t, int holder, const void *key, char *out)
{
	int n;

	if (holder == -2)
		n = snprintf(out, RS_KEY_MAX, "%s:", t->store);
	else if (holder == -1)
		n = snprintf(out, RS_KEY_MAX, "%s@b:", t->store);
	else
		n = snprintf(out, RS_KEY_MAX, "%s@%d:", t->store, holder);
	memcpy(out + n, key, t->ks);
	return (size_t)n + t->ks;
}

static int my_slot(void) { return sm_get_instance(); }

size_t rs_my_rkey(const struct rs_table *t, const void *key, char *out)
{
	if (t->kind != RS_HOLDER)
		return rs_rkey(t, -2, key, out);
	return rs_rkey(t, sm_phase_deploy() || my_slot() < 0 ? -1 : my_slot(), key, out);
}

/* A release table's keys that have a base value are also members of the Redis set "<full>#bases": an
 * instance slot claimed or released moves exactly those (remote_manager.c), and SMEMBERS finds them in
 * one round trip inside the pause, where a SCAN would walk the whole keyspace (every flow's keys of every
 * table) while every instance waits. Bases are written only outside instances (deployment, serpensd's
 * control thread) and never deleted (global state cannot be), so the set only grows. */
bool rs_writes_base(const struct rs_table *t)
{
	return t->kind == RS_HOLDER && (sm_phase_deploy() || my_slot() < 0);
}

size_t rs_bases_key(const struct rs_table *t, char *out)
{
	return (size_t)snprintf(out, RS_STORE_LEN + 8, "%s#bases", t->store);
}

int rs_index_base(const struct rs_table *t, const void *key)
{
	char sk[RS_STORE_LEN + 8];
	struct rs_cmd c;

	c.argv[0] = "SADD", c.len[0] = 4;
	c.argv[1] = sk, c.len[1] = rs_bases_key(t, sk);
	c.argv[2] = key, c.len[2] = t->ks;
	c.argc = 3;
	return rs_pipe_add(&c);
}

int rs_add_read(struct rs_table *t, const char *rk, size_t rklen)
{
	struct rs_cmd c;
	uint32_t w;

	if (t->kind == RS_COUNTERS) {
		c.argv[0] = "HMGET", c.len[0] = 5;
		c.argv[1] = rk, c.len[1] = rklen;
		for (w = 0; w < t->nwords; w++)
			c.argv[2 + w] = rs_word_field[w], c.len[2 + w] = rs_word_len[w];
		c.argc = 2 + (int)t->nwords;
	} else {
		c.argv[0] = "GET", c.len[0] = 3;
		c.argv[1] = rk, c.len[1] = rklen;
		c.argc = 2;
	}
	return rs_pipe_add(&c);
}

int rs_parse_read(const struct rs_table *t, const redisReply *r, uint8_t *val)
{
	uint32_t w;
	int any = 0;

	if (t->kind == RS_COUNTERS) {
		if (r->type != REDIS_REPLY_ARRAY || r->elements != t->nwords)
			return -1;
		memset(val, 0, t->vs);
		for (w = 0; w < t->nwords; w++) {
			const redisReply *e = r->element[w];
			uint64_t v;

			if (e->type == REDIS_REPLY_NIL)
				continue;
			if (e->type != REDIS_REPLY_STRING)
				return -1;
			v = (uint64_t)strtoll(e->str, NULL, 10);
			memcpy(val + 8 * w, &v, 8);
			any = 1;
		}
		return any;
	}
	if (r->type == REDIS_REPLY_NIL)
		return 0;
	if (r->type != REDIS_REPLY_STRING || r->len != t->vs)
		return -1;
	memcpy(val, r->str, t->vs);
	return 1;
}

int rs_meta_sync(const char *full, uint32_t flags, const struct sp_table_opts *o, uint32_t kind)
{
	char mk[RS_STORE_LEN + 8], want[96];
	struct rs_cmd c;
	redisReply *r;
	int n, rc = 0;

	n = (int)rs_store_name(full, mk);
	snprintf(mk + n, sizeof(mk) - (size_t)n, "#meta");
	n = snprintf(want, sizeof(want), "%u %u %u %u", flags, o->key_size, o->value_size, kind);
	c.argv[0] = "GET", c.len[0] = 3, c.argv[1] = mk, c.len[1] = strlen(mk), c.argc = 2;
	if (rs_pipe_add(&c) != 0 || !(r = rs_pipe_reply()))
		return -EIO;
	rs_pipe_done();
	if (r->type == REDIS_REPLY_STRING) {
		if ((size_t)n != r->len || memcmp(r->str, want, (size_t)n) != 0) {
			sm_error("nf %s: create_table: %s exists in Redis with other flags or sizes ('%.*s', not "
				 "'%s')", sm_nf_name(), full, (int)r->len, r->str, want);
			rc = -EEXIST;
		}
		freeReplyObject(r);
		return rc;
	}
	freeReplyObject(r);
	if (!sm_phase_deploy()) {
		sm_error("nf %s: create_table(\"%s\"): not in Redis: the table was not created when the NF was "
			 "deployed (or Redis lost it)", sm_nf_name(), full);
		return -ENOENT;
	}
	c.argv[0] = "SET", c.len[0] = 3, c.argv[2] = want, c.len[2] = (size_t)n, c.argc = 3;
	if (rs_pipe_add(&c) != 0)
		return -EIO;
	rs_drain(1);
	rs_pipe_done();
	return rs_ctx ? 0 : -EIO;
}
