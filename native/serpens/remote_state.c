/*
 * remote_state.c: NF state in Redis (hiredis, loopback TCP) behind nf.h — see remote_state.h and
 * docs/state-backends.md.
 *
 * One connection per process, used by one thread: a runtime's data path, or serpensd's control thread
 * (deployment, scale-out/in, inspection; serpensd's data plane never touches a remote table).
 */
#include "remote_state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "serpens/state_ops.h"

#define RS_MAX_CONST 4     /* constant keys learned per table */
#define RS_CONST_KEY_MAX 64
#define RS_IDLE_MAX 8      /* a derivation whose prefetches went unused this many batches is dropped */
#define RS_MAX_WORDS 64    /* eventual counters kept as a hash of at most this many u64 words */
#define RS_KEY_MAX (SM_NAME_LEN + 8 + 256)

enum rs_kind { RS_PLAIN, RS_HOLDER, RS_COUNTERS };
enum { D_FLOW, D_FLOW_REV, D_SRC_IP, D_DST_IP, D_SRC_DST, RS_NDERIV };
#define D_CONST 0x80 /* | constant index */
#define D_NONE 0xff

struct rs_table {
	struct sp_table hdr;
	char full[SM_NAME_LEN];
	char owner[SM_NAME_LEN]; /* the NF deployment whose init created it */
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

struct rs_index_slot {
	struct rs_entry *e;
	uint64_t epoch;
};

static struct rs_config cfg;
static struct rs_stats own_stats, *st = &own_stats;
static redisContext *ctx;
static struct rs_table tables[SM_MAX_TABLES];
static unsigned int ntables;

/* batch cache: a bump arena, an epoch-tagged open-addressing index, and a list of every entry */
static uint8_t *arena;
static size_t arena_cap, arena_used;
static struct rs_index_slot *idx;
static size_t idx_cap, idx_count;
static uint64_t epoch = 1;
static struct rs_entry *all_head, **all_tail = &all_head;
static bool in_batch;
static const char *batch_nf;
static const struct sp_pkt *cur_pkt;
static uint64_t batch_ns;
static bool batch_touched;

static const struct sp_state_ops rs_ops;
static char last_msg[600];

/* ---------------------------------------------------------------------------------------------- */
/* helpers                                                                                        */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull ^ seed;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h ^ (h >> 29);
}

/* Report a store failure. Inside a batch of a runtime this does not return (cfg.fatal). */
static int rs_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int rs_fail(const char *fmt, ...)
{
	char what[400], msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "remote state (%s, Redis at %s:%d): %s", rs_backend_name(cfg.backend),
		 cfg.host ? cfg.host : "?", cfg.port, what);
	if (ctx && ctx->err) { /* the connection is unusable after an I/O error: reconnect next time */
		redisFree(ctx);
		ctx = NULL;
	}
	snprintf(last_msg, sizeof(last_msg), "%s", msg);
	if (in_batch && cfg.fatal)
		cfg.fatal(msg);
	sm_error("%s", msg);
	return -EIO;
}

static redisContext *conn(void)
{
	struct timeval tv = {.tv_sec = cfg.timeout_ms / 1000, .tv_usec = (cfg.timeout_ms % 1000) * 1000};

	if (ctx)
		return ctx;
	ctx = redisConnectWithTimeout(cfg.host, cfg.port, tv);
	if (!ctx || ctx->err) {
		char why[200];

		snprintf(why, sizeof(why), "%s", ctx ? ctx->errstr : "out of memory");
		if (ctx)
			redisFree(ctx);
		ctx = NULL;
		rs_fail("cannot connect: %s (is redis-server running?)", why);
		return NULL;
	}
	redisSetTimeout(ctx, tv);
	return ctx;
}

/* ---- pipelines ---- */

#define RS_PIPE_MAX_ARGS 8
struct rs_cmd {
	int argc;
	const char *argv[RS_PIPE_MAX_ARGS + RS_MAX_WORDS];
	size_t len[RS_PIPE_MAX_ARGS + RS_MAX_WORDS];
};

static unsigned int pipe_n;
static uint64_t pipe_t0;

static int pipe_add(struct rs_cmd *c)
{
	if (!conn())
		return -EIO;
	if (pipe_n == 0)
		pipe_t0 = now_ns();
	if (redisAppendCommandArgv(ctx, c->argc, c->argv, c->len) != REDIS_OK)
		return rs_fail("cannot queue a command: %s", ctx->errstr);
	pipe_n++;
	return 0;
}

/* The next reply of the pipeline (NULL after reporting a failure). Replies of type error are failures. */
static redisReply *pipe_reply(void)
{
	void *r = NULL;

	if (!ctx || redisGetReply(ctx, &r) != REDIS_OK || !r) {
		rs_fail("no reply: %s", ctx ? ctx->errstr : "not connected");
		return NULL;
	}
	if (((redisReply *)r)->type == REDIS_REPLY_ERROR) {
		rs_fail("command refused: %.*s", (int)((redisReply *)r)->len, ((redisReply *)r)->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* Account one round trip of n commands that started at pipe_t0. */
static void pipe_done(void)
{
	uint64_t ns = now_ns() - pipe_t0;

	st->round_trips++;
	st->ops += pipe_n;
	st->ns += ns;
	if (in_batch) {
		batch_ns += ns;
		batch_touched = true;
	}
	pipe_n = 0;
}

static void drain(unsigned int n)
{
	while (n--) {
		redisReply *r = pipe_reply();

		if (!r)
			break;
		freeReplyObject(r);
	}
}

/* ---- Redis keys ---- */

/* holder: -2 plain/counters, -1 base, >= 0 instance slot */
static size_t rkey(const struct rs_table *t, int holder, const void *key, char *out)
{
	int n;

	if (holder == -2)
		n = snprintf(out, RS_KEY_MAX, "%s:", t->full);
	else if (holder == -1)
		n = snprintf(out, RS_KEY_MAX, "%s@b:", t->full);
	else
		n = snprintf(out, RS_KEY_MAX, "%s@%d:", t->full, holder);
	memcpy(out + n, key, t->ks);
	return (size_t)n + t->ks;
}

static int my_slot(void) { return sm_get_instance(); }

/* The key this process reads and writes for `key`: its own sub-state in a release table. */
static size_t my_rkey(const struct rs_table *t, const void *key, char *out)
{
	if (t->kind != RS_HOLDER)
		return rkey(t, -2, key, out);
	return rkey(t, sm_phase_deploy() || my_slot() < 0 ? -1 : my_slot(), key, out);
}

static const char *word_field[RS_MAX_WORDS];
static size_t word_len[RS_MAX_WORDS];

static void init_words(void)
{
	static char names[RS_MAX_WORDS][4];
	int i;

	for (i = 0; i < RS_MAX_WORDS; i++) {
		word_len[i] = (size_t)snprintf(names[i], sizeof(names[i]), "%d", i);
		word_field[i] = names[i];
	}
}

/* Append the read of `key` of t (as this process sees it). */
static int add_read(struct rs_table *t, const char *rk, size_t rklen)
{
	struct rs_cmd c;
	uint32_t w;

	if (t->kind == RS_COUNTERS) {
		c.argv[0] = "HMGET", c.len[0] = 5;
		c.argv[1] = rk, c.len[1] = rklen;
		for (w = 0; w < t->nwords; w++)
			c.argv[2 + w] = word_field[w], c.len[2 + w] = word_len[w];
		c.argc = 2 + (int)t->nwords;
	} else {
		c.argv[0] = "GET", c.len[0] = 3;
		c.argv[1] = rk, c.len[1] = rklen;
		c.argc = 2;
	}
	return pipe_add(&c);
}

/* Parse a read's reply into val (vs bytes); returns 1 present, 0 absent, -1 malformed. */
static int parse_read(const struct rs_table *t, const redisReply *r, uint8_t *val)
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

/* ---------------------------------------------------------------------------------------------- */
/* the batch cache                                                                                */

static void *arena_alloc(size_t n)
{
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (arena_used + n > arena_cap) {
		/* Only when the arena is empty may it move (pointers handed out must stay valid): otherwise
		 * allocate separately and leak until the reset frees... keep it simple: grow at reset. */
		if (arena_used == 0 || !arena) {
			size_t cap = arena_cap ? arena_cap : (1u << 20);

			while (cap < n)
				cap *= 2;
			free(arena);
			arena = malloc(cap);
			arena_cap = arena ? cap : 0;
			arena_used = 0;
			if (!arena)
				return NULL;
		} else {
			return NULL;
		}
	}
	p = arena + arena_used;
	arena_used += n;
	return p;
}

/* Overflow allocations (the arena is full mid-batch) are kept on a list and freed at the reset. */
struct rs_overflow {
	struct rs_overflow *next;
	size_t need; /* what the arena would have needed: it grows to that at the reset */
	uint8_t mem[];
};
static struct rs_overflow *overflow;
static size_t overflow_bytes;

static void *cache_alloc(size_t n)
{
	void *p = arena_alloc(n);
	struct rs_overflow *o;

	if (p)
		return p;
	o = malloc(sizeof(*o) + n);
	if (!o)
		return NULL;
	o->next = overflow;
	overflow = o;
	overflow_bytes += n + 64;
	return o->mem;
}

static void cache_reset(void)
{
	struct rs_overflow *o;

	while ((o = overflow)) {
		overflow = o->next;
		free(o);
	}
	if (overflow_bytes) { /* grow the arena so the next batch fits in it */
		size_t cap = arena_cap + overflow_bytes;

		free(arena);
		arena = NULL;
		arena_cap = 0;
		arena_used = 0;
		(void)arena_alloc(cap);
		arena_used = 0;
		overflow_bytes = 0;
	}
	arena_used = 0;
	epoch++;
	idx_count = 0;
	all_head = NULL;
	all_tail = &all_head;
}

static uint64_t entry_hash(const struct rs_table *t, const void *key)
{
	return hash_bytes(key, t->ks, (uint64_t)(uintptr_t)t);
}

static struct rs_entry *cache_find(const struct rs_table *t, const void *key, uint64_t h)
{
	size_t mask = idx_cap - 1, i;

	if (!idx_cap)
		return NULL;
	for (i = h & mask;; i = (i + 1) & mask) {
		struct rs_index_slot *s = &idx[i];

		if (s->epoch != epoch)
			return NULL;
		if (s->e->h == h && s->e->t == t && memcmp(s->e->key, key, t->ks) == 0)
			return s->e;
	}
}

static int index_put(struct rs_entry *e)
{
	size_t mask, i;

	if (2 * (idx_count + 1) > idx_cap) {
		size_t cap = idx_cap ? 2 * idx_cap : 1024, k;
		struct rs_index_slot *old = idx, *n = calloc(cap, sizeof(*n));

		if (!n)
			return -ENOMEM;
		idx = n;
		mask = cap - 1;
		for (k = 0; k < idx_cap; k++)
			if (old[k].epoch == epoch) {
				for (i = old[k].e->h & mask; idx[i].epoch == epoch; i = (i + 1) & mask)
					;
				idx[i] = old[k];
			}
		free(old);
		idx_cap = cap;
	}
	mask = idx_cap - 1;
	for (i = e->h & mask; idx[i].epoch == epoch; i = (i + 1) & mask)
		;
	idx[i].e = e;
	idx[i].epoch = epoch;
	idx_count++;
	return 0;
}

static struct rs_entry *cache_add(struct rs_table *t, const void *key, uint64_t h)
{
	struct rs_entry *e = cache_alloc(sizeof(*e));
	uint8_t *mem = e ? cache_alloc((size_t)t->ks + 2 * (size_t)t->vs) : NULL;

	if (!e || !mem) {
		rs_fail("out of memory for the batch cache");
		return NULL;
	}
	memset(e, 0, sizeof(*e));
	e->t = t;
	e->h = h;
	e->key = mem;
	e->val = mem + t->ks;
	e->orig = mem + t->ks + t->vs;
	e->deriv = D_NONE;
	memcpy(e->key, key, t->ks);
	memset(e->val, 0, t->vs);
	memset(e->orig, 0, t->vs);
	if (index_put(e) != 0) {
		rs_fail("out of memory for the batch cache");
		return NULL;
	}
	*all_tail = e;
	all_tail = &e->next_all;
	return e;
}

static void fill_entry(struct rs_entry *e, const redisReply *r)
{
	int p = parse_read(e->t, r, e->val);

	if (p < 0) {
		rs_fail("table %s: a value in Redis has the wrong size or type (written by someone else?)",
			e->t->full);
		p = 0;
		memset(e->val, 0, e->t->vs);
	}
	e->known = 1;
	e->was_present = e->present = (uint8_t)p;
	memcpy(e->orig, e->val, e->t->vs);
}

/* A synchronous read of one key into the cache (a miss inside a batch, or init). */
static struct rs_entry *fetch_sync(struct rs_table *t, const void *key, uint64_t h, struct rs_entry *e)
{
	char rk[RS_KEY_MAX];
	size_t n = my_rkey(t, key, rk);
	redisReply *r;

	if (!e && !(e = cache_add(t, key, h)))
		return NULL;
	if (add_read(t, rk, n) != 0)
		return NULL;
	r = pipe_reply();
	pipe_done();
	if (!r)
		return NULL;
	fill_entry(e, r);
	freeReplyObject(r);
	return e;
}

/* ---------------------------------------------------------------------------------------------- */
/* learned key derivations                                                                        */

static int derive(int d, const struct sp_flow *f, uint32_t ks, uint8_t *out)
{
	struct sp_flow r;

	switch (d) {
	case D_FLOW:
		if (ks != sizeof(*f))
			return -1;
		memcpy(out, f, sizeof(*f));
		return 0;
	case D_FLOW_REV:
		if (ks != sizeof(*f))
			return -1;
		sp_flow_reverse(f, &r);
		memcpy(out, &r, sizeof(r));
		return 0;
	case D_SRC_IP:
		if (ks != 4)
			return -1;
		memcpy(out, &f->src_ip, 4);
		return 0;
	case D_DST_IP:
		if (ks != 4)
			return -1;
		memcpy(out, &f->dst_ip, 4);
		return 0;
	case D_SRC_DST:
		if (ks != 8)
			return -1;
		memcpy(out, &f->src_ip, 4);
		memcpy(out + 4, &f->dst_ip, 4);
		return 0;
	}
	return -1;
}

/* A get_state the prefetch did not foresee: which derivation of the current packet gives this key? If
 * none does, remember the key as a constant (e.g. NAT's pool, IDS's totals). */
static void learn(struct rs_table *t, const void *key)
{
	uint8_t k[256];
	struct sp_flow f;
	unsigned int i, worst = 0;
	int d;

	if (cur_pkt && sp_flow_of(cur_pkt, &f) == 0)
		for (d = 0; d < RS_NDERIV; d++)
			if (derive(d, &f, t->ks, k) == 0 && memcmp(k, key, t->ks) == 0) {
				t->derivs |= 1u << d;
				t->idle[d] = 0;
				return;
			}
	if (t->ks > RS_CONST_KEY_MAX)
		return;
	for (i = 0; i < t->nconst; i++)
		if (memcmp(t->konst[i], key, t->ks) == 0) {
			t->kidle[i] = 0;
			return;
		}
	if (t->nconst < RS_MAX_CONST) {
		i = t->nconst++;
	} else {
		for (i = 1; i < RS_MAX_CONST; i++)
			if (t->kidle[i] > t->kidle[worst])
				worst = i;
		i = worst;
	}
	memcpy(t->konst[i], key, t->ks);
	t->kidle[i] = 0;
}

/* Queue the read of one predicted key (once per batch). */
static int predict(struct rs_table *t, const uint8_t *key, uint8_t deriv, struct rs_entry ***pend,
		   unsigned int *npend, unsigned int *cap)
{
	uint64_t h = entry_hash(t, key);
	char rk[RS_KEY_MAX];
	struct rs_entry *e;
	size_t n;

	if (cache_find(t, key, h))
		return 0;
	e = cache_add(t, key, h);
	if (!e)
		return -1;
	e->deriv = deriv;
	if (*npend == *cap) {
		struct rs_entry **p = realloc(*pend, 2 * *cap * sizeof(*p));

		if (!p)
			return rs_fail("out of memory");
		*pend = p;
		*cap *= 2;
	}
	(*pend)[(*npend)++] = e;
	n = my_rkey(t, key, rk);
	return add_read(t, rk, n);
}

static bool owned(const struct rs_table *t, const char *nf)
{
	return nf && strcmp(t->owner, nf) == 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* the Chainer's batch hooks                                                                      */

static void rs_begin(const char *nf, const struct sp_pkt *pkts, unsigned int n)
{
	static struct rs_entry **pend;
	static unsigned int cap;
	struct sp_flow *flows = NULL;
	uint8_t *ok = NULL, key[256];
	unsigned int i, j, npend = 0;
	int d;

	cache_reset();
	in_batch = true;
	batch_nf = nf;
	batch_ns = 0;
	batch_touched = false;
	cur_pkt = NULL;
	if (!pend) {
		cap = 256;
		pend = malloc(cap * sizeof(*pend));
		if (!pend) {
			rs_fail("out of memory");
			return;
		}
	}
	for (j = 0; j < ntables; j++) {
		struct rs_table *t = &tables[j];

		if (!t->hdr.ops || !owned(t, nf))
			continue;
		memset(t->dused, 0, sizeof(t->dused));
		memset(t->kused, 0, sizeof(t->kused));
		if (t->derivs && !flows) {
			flows = malloc(n * sizeof(*flows) + n);
			if (!flows) {
				rs_fail("out of memory");
				return;
			}
			ok = (uint8_t *)(flows + n);
			for (i = 0; i < n; i++)
				ok[i] = sp_flow_of(&pkts[i], &flows[i]) == 0;
		}
		for (d = 0; d < RS_NDERIV; d++) {
			if (!(t->derivs & (1u << d)))
				continue;
			for (i = 0; i < n; i++)
				if (ok[i] && derive(d, &flows[i], t->ks, key) == 0 &&
				    predict(t, key, (uint8_t)d, &pend, &npend, &cap) != 0)
					goto out;
		}
		for (i = 0; i < t->nconst; i++)
			if (predict(t, t->konst[i], (uint8_t)(D_CONST | i), &pend, &npend, &cap) != 0)
				goto out;
	}
	if (npend) {
		for (i = 0; i < npend; i++) {
			redisReply *r = pipe_reply();

			if (!r)
				goto out;
			fill_entry(pend[i], r);
			freeReplyObject(r);
		}
		pipe_done();
		st->prefetched += npend;
	}
out:
	free(flows);
}

static void rs_packet(const struct sp_pkt *pkt) { cur_pkt = pkt; }

/* Queue the writes that make Redis hold what the cache holds; returns how many commands were queued,
 * or -1. `commit`: afterwards the cache's baseline is its current content (a flush mid-batch). */
static int queue_writes(bool commit)
{
	struct rs_entry *e;
	char rk[RS_KEY_MAX], num[32];
	int queued = 0;

	for (e = all_head; e; e = e->next_all) {
		struct rs_table *t = e->t;
		struct rs_cmd c;
		size_t n;

		if ((t->flags & SP_READ) || (!e->present && !e->deleted))
			continue;
		n = my_rkey(t, e->key, rk);
		c.argv[1] = rk, c.len[1] = n;
		if (t->kind == RS_COUNTERS && e->present) {
			uint32_t w;

			for (w = 0; w < t->nwords; w++) {
				uint64_t now, before = 0;

				memcpy(&now, e->val + 8 * w, 8);
				if (e->was_present)
					memcpy(&before, e->orig + 8 * w, 8);
				if (now == before && e->was_present)
					continue;
				c.argv[0] = "HINCRBY", c.len[0] = 7;
				c.argv[2] = word_field[w], c.len[2] = word_len[w];
				c.len[3] = (size_t)snprintf(num, sizeof(num), "%lld",
							    (long long)(int64_t)(now - before));
				c.argv[3] = num;
				c.argc = 4;
				if (pipe_add(&c) != 0)
					return -1;
				queued++;
			}
		} else if (e->present) {
			if (e->known && e->was_present && memcmp(e->val, e->orig, t->vs) == 0)
				continue;
			c.argv[0] = "SET", c.len[0] = 3;
			c.argv[2] = (const char *)e->val, c.len[2] = t->vs;
			c.argc = 3;
			if (pipe_add(&c) != 0)
				return -1;
			queued++;
		} else { /* deleted */
			if (e->known && !e->was_present)
				continue;
			c.argv[0] = "DEL", c.len[0] = 3;
			c.argc = 2;
			if (pipe_add(&c) != 0)
				return -1;
			queued++;
		}
		if (commit) {
			e->known = 1;
			e->was_present = e->present;
			e->deleted = 0;
			memcpy(e->orig, e->val, t->vs);
		}
	}
	return queued;
}

static int flush_writes(bool commit)
{
	int n = queue_writes(commit);

	if (n < 0)
		return -EIO;
	if (n == 0)
		return 0;
	drain((unsigned int)n);
	pipe_done();
	st->writes += (uint64_t)n;
	return ctx ? 0 : -EIO;
}

static void rs_end(void)
{
	unsigned int j, i;
	int d;

	flush_writes(false);
	/* which learned derivations earned their prefetch this batch */
	for (j = 0; j < ntables; j++) {
		struct rs_table *t = &tables[j];

		if (!t->hdr.ops || !owned(t, batch_nf))
			continue;
		for (d = 0; d < RS_NDERIV; d++)
			if (t->derivs & (1u << d)) {
				t->idle[d] = t->dused[d] ? 0 : t->idle[d] + 1;
				if (t->idle[d] > RS_IDLE_MAX)
					t->derivs &= ~(1u << d);
			}
		for (i = 0; i < t->nconst;) {
			t->kidle[i] = t->kused[i] ? 0 : t->kidle[i] + 1;
			if (t->kidle[i] > RS_IDLE_MAX) { /* forget it: a later miss learns it again */
				t->nconst--;
				memmove(t->konst[i], t->konst[t->nconst], RS_CONST_KEY_MAX);
				t->kidle[i] = t->kidle[t->nconst];
				t->kused[i] = t->kused[t->nconst];
				continue;
			}
			i++;
		}
	}
	if (batch_touched) {
		st->batches++;
		st->last_batch_ns = batch_ns;
		if (batch_ns > st->max_batch_ns)
			st->max_batch_ns = batch_ns;
	}
	in_batch = false;
	cur_pkt = NULL;
	batch_nf = NULL;
}

static const struct sp_batch_hooks rs_hooks = {.begin = rs_begin, .packet = rs_packet, .end = rs_end};

/* ---------------------------------------------------------------------------------------------- */
/* the NF API on remote tables                                                                    */

static inline struct rs_table *as_rs(sp_table *t) { return (struct rs_table *)t; }

static void mark_used(struct rs_entry *e)
{
	if (e->deriv == D_NONE)
		return;
	if (e->deriv & D_CONST)
		e->t->kused[e->deriv & 0x7f] = true;
	else
		e->t->dused[e->deriv] = true;
}

static void *rs_get_state(sp_table *ht, const void *key)
{
	struct rs_table *t = as_rs(ht);
	uint64_t h = entry_hash(t, key);
	struct rs_entry *e = cache_find(t, key, h);

	if (e) {
		if (e->known || e->present || e->deleted) {
			st->hits += in_batch;
			mark_used(e);
			return e->present ? e->val : NULL;
		}
	}
	if (in_batch) {
		st->misses++;
		learn(t, key);
	}
	e = fetch_sync(t, key, h, e);
	return e && e->present ? e->val : NULL;
}

/* Write one value now (deployment, init, or outside a batch). */
static int write_sync(struct rs_table *t, const void *key, const void *value, bool base)
{
	char rk[RS_KEY_MAX], num[RS_MAX_WORDS][32];
	struct rs_cmd c;
	size_t n = base && t->kind == RS_HOLDER ? rkey(t, -1, key, rk) : my_rkey(t, key, rk);
	unsigned int queued = 0;
	uint32_t w;

	if (t->kind == RS_COUNTERS) { /* the value as a whole: replace the hash */
		c.argv[0] = "DEL", c.len[0] = 3, c.argv[1] = rk, c.len[1] = n, c.argc = 2;
		if (pipe_add(&c) != 0)
			return -EIO;
		queued++;
		c.argv[0] = "HSET", c.len[0] = 4;
		for (w = 0; w < t->nwords; w++) {
			uint64_t v;

			memcpy(&v, (const uint8_t *)value + 8 * w, 8);
			c.argv[2 + 2 * w] = word_field[w], c.len[2 + 2 * w] = word_len[w];
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
	if (pipe_add(&c) != 0)
		return -EIO;
	queued++;
	drain(queued);
	pipe_done();
	return ctx ? 0 : -EIO;
}

static int rs_put_state(sp_table *ht, const void *key, const void *value)
{
	struct rs_table *t = as_rs(ht);
	uint64_t h = entry_hash(t, key);
	struct rs_entry *e;
	int rc;

	if (sm_phase_attach())
		return 0; /* init re-run in a runtime: deployment already wrote this state */
	if ((t->flags & SP_READ) && !sm_phase_deploy()) {
		sm_error("nf %s: put_state on read-only table '%s' outside init", sm_nf_name(), t->full);
		return -EPERM;
	}
	e = cache_find(t, key, h);
	if (!in_batch) {
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
			st->misses++;
			e = fetch_sync(t, key, h, e);
		} else {
			e = cache_add(t, key, h); /* known = 0: written back unconditionally */
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
	uint64_t h = entry_hash(t, key);
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
	e = cache_find(t, key, h);
	if (e && in_batch) {
		existed = e->present;
		e->present = 0;
		e->deleted = 1;
		if (e->known)
			return existed ? 0 : -ENOENT;
		return 0;
	}
	c.argv[0] = "DEL", c.len[0] = 3;
	c.argv[1] = rk, c.len[1] = my_rkey(t, key, rk);
	c.argc = 2;
	if (pipe_add(&c) != 0 || !(r = pipe_reply()))
		return -EIO;
	pipe_done();
	existed = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
	freeReplyObject(r);
	if (e)
		e->present = 0, e->was_present = 0, e->known = 1;
	return existed ? 0 : -ENOENT;
}

/* ---- global|write state movements (release tables, and eventual tables with custom hooks) ---- */

/* Fetch base and holders (active slots, plus `merging`), apply the hook(s), write them all back. The
 * caller holds the State Manager's pause. kind2 >= 0: a second hook over the remaining active slots
 * (release of a slot: merge, then redistribute). */
static int remote_hook(struct rs_table *t, const void *key, enum sm_hook_kind kind, int merging, int kind2)
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
		c.argv[1] = rk, c.len[1] = rkey(t, holders[k], key, rk);
		c.argc = 2;
		if (pipe_add(&c) != 0) {
			free(buf);
			return -EIO;
		}
	}
	for (k = 0; k < nh; k++) {
		redisReply *rep = pipe_reply();
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
	pipe_done();
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
		c.argv[1] = rk, c.len[1] = rkey(t, holders[k], key, rk);
		if (holders[k] >= 0 && holders[k] == merging && !sm_instance_active(r, merging)) {
			c.argv[0] = "DEL", c.len[0] = 3, c.argc = 2; /* the slot is gone */
		} else {
			c.argv[0] = "SET", c.len[0] = 3, c.argc = 3;
			c.argv[2] = (const char *)(buf + (size_t)k * t->vs), c.len[2] = t->vs;
		}
		if (pipe_add(&c) != 0) {
			free(buf);
			return -EIO;
		}
	}
	drain((unsigned int)nh);
	pipe_done();
	free(buf);
	return ctx ? 0 : -EIO;
}

/* split/merge/update/trigger from an NF: flush this batch's writes, pause the other instances, run the
 * hook in Redis, resume, and refresh this instance's cached value of the key in place (the NF may hold
 * the pointer; Fig. 9 reads it again). */
static int rs_hook_on_key(sp_table *ht, const void *key, enum sm_hook_kind kind)
{
	struct rs_table *t = as_rs(ht);
	struct sm_region *r = sm_get_region();
	int slot = my_slot(), rc;
	struct rs_entry *e;
	uint64_t h;

	if ((t->flags & (SP_GLOBAL | SP_WRITE)) != (SP_GLOBAL | SP_WRITE)) {
		sm_error("nf %s: split/merge/update/trigger on '%s', which is not global|write", sm_nf_name(),
			 t->full);
		return -EPERM;
	}
	if (t->kind == RS_COUNTERS)
		return 0; /* every instance adds into one value: nothing to move */
	if (in_batch && flush_writes(true) != 0)
		return -EIO;
	if (slot >= 0)
		sm_batch_end(r, slot);
	sm_pause(r, slot);
	rc = remote_hook(t, key, kind, -1, -1);
	sm_resume_as(r, kind);
	if (slot >= 0)
		sm_batch_begin(r, slot);
	h = entry_hash(t, key);
	e = cache_find(t, key, h);
	if (e && rc == 0)
		fetch_sync(t, key, h, e);
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

/* ---- create_table ---- */

static enum rs_kind kind_of(uint32_t flags, uint32_t vs, const struct sp_table_opts *o)
{
	if ((flags & (SP_GLOBAL | SP_WRITE)) != (SP_GLOBAL | SP_WRITE))
		return RS_PLAIN;
	if ((flags & SP_EVENTUAL) && !o->split && !o->merge && !o->update && vs % 8 == 0 &&
	    vs / 8 <= RS_MAX_WORDS && vs / 8 <= (RS_PIPE_MAX_ARGS + RS_MAX_WORDS - 2) / 2)
		return RS_COUNTERS;
	return RS_HOLDER;
}

/* Record (deploy) or check (attach) the table's metadata in Redis. */
static int meta_sync(const char *full, uint32_t flags, const struct sp_table_opts *o, uint32_t kind)
{
	char mk[SM_NAME_LEN + 8], want[96];
	struct rs_cmd c;
	redisReply *r;
	int n, rc = 0;

	snprintf(mk, sizeof(mk), "%s#meta", full);
	n = snprintf(want, sizeof(want), "%u %u %u %u", flags, o->key_size, o->value_size, kind);
	c.argv[0] = "GET", c.len[0] = 3, c.argv[1] = mk, c.len[1] = strlen(mk), c.argc = 2;
	if (pipe_add(&c) != 0 || !(r = pipe_reply()))
		return -EIO;
	pipe_done();
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
	if (pipe_add(&c) != 0)
		return -EIO;
	drain(1);
	pipe_done();
	return ctx ? 0 : -EIO;
}

static sp_table *rs_create_table(const char *name, uint32_t flags, const struct sp_table_opts *o)
{
	char full[SM_NAME_LEN];
	struct rs_table *t = NULL;
	unsigned int i;
	uint32_t kind;
	int rc;

	if (cfg.backend == RS_SNF && (flags & SP_PER_FLOW) && !(flags & SP_GLOBAL))
		return sm_create_table(name, flags, o); /* SNF: per-flow state is local */
	rc = sm_check_table_args(name, flags, o, full, sizeof(full));
	if (rc != 0) {
		errno = -rc;
		return NULL;
	}
	kind = kind_of(flags, o->value_size, o);
	rc = conn() ? meta_sync(full, flags, o, kind) : -EIO;
	if (rc == 0) {
		rc = sm_register_remote(name, flags, o); /* the directory: names for stats and inspection */
		rc = rc < 0 ? rc : 0;
	}
	if (rc != 0) {
		errno = -rc;
		return NULL;
	}
	for (i = 0; i < ntables; i++)
		if (strcmp(tables[i].full, full) == 0)
			t = &tables[i];
	if (!t) {
		if (ntables == SM_MAX_TABLES) {
			sm_error("nf %s: create_table(\"%s\"): too many remote tables", sm_nf_name(), name);
			errno = ENOSPC;
			return NULL;
		}
		t = &tables[ntables++];
		memset(t, 0, sizeof(*t));
	}
	t->hdr.ops = &rs_ops;
	snprintf(t->full, sizeof(t->full), "%s", full);
	snprintf(t->owner, sizeof(t->owner), "%s", sm_nf_name());
	t->flags = flags;
	t->ks = o->key_size;
	t->vs = o->value_size;
	t->kind = kind;
	t->nwords = o->value_size / 8;
	t->hooks = (struct sm_hook_set){.split = o->split, .merge = o->merge, .update = o->update};
	return &t->hdr;
}

/* ---------------------------------------------------------------------------------------------- */
/* the State Manager's side (serpensd's control thread)                                           */

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

/* Every key of a table (as stored under prefix "<full>:" or "<full>@b:"): calls fn(key). */
static int scan_keys(const char *full, const char *suffix, uint32_t ks, void (*fn)(const uint8_t *key, void *c),
		     void *c)
{
	char pat[2 * SM_NAME_LEN + 16], cursor[32] = "0";
	size_t plen = strlen(full) + strlen(suffix), n;
	struct rs_cmd cmd;

	n = glob_escape(full, pat, sizeof(pat) - 8);
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
		if (pipe_add(&cmd) != 0 || !(r = pipe_reply()))
			return -EIO;
		pipe_done();
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

static void each_holder_table(int slot, bool release)
{
	unsigned int i;
	size_t k;

	for (i = 0; i < ntables; i++) {
		struct rs_table *t = &tables[i];
		struct key_list l = {.ks = t->ks};

		if (!t->hdr.ops || t->kind != RS_HOLDER)
			continue;
		if (scan_keys(t->full, "@b:", t->ks, collect, &l) != 0)
			continue;
		for (k = 0; k < l.n; k++) {
			if (release)
				remote_hook(t, l.keys + k * t->ks, SM_HOOK_MERGE, slot, SM_HOOK_UPDATE);
			else
				remote_hook(t, l.keys + k * t->ks, SM_HOOK_SPLIT, -1, -1);
		}
		free(l.keys);
	}
}

static void mgr_claim(struct sm_region *r, int slot)
{
	(void)r;
	each_holder_table(slot, false);
}

static void mgr_release(struct sm_region *r, int slot)
{
	(void)r;
	each_holder_table(slot, true);
}

static struct rs_table *table_named(const char *full, uint32_t flags, uint32_t ks, uint32_t vs,
				    struct rs_table *tmp)
{
	struct sp_table_opts o = {.key_size = ks, .value_size = vs, .capacity = 1};
	unsigned int i;

	for (i = 0; i < ntables; i++)
		if (tables[i].hdr.ops && strcmp(tables[i].full, full) == 0)
			return &tables[i];
	memset(tmp, 0, sizeof(*tmp)); /* not created in this process: assume the default hooks */
	snprintf(tmp->full, sizeof(tmp->full), "%s", full);
	tmp->flags = flags, tmp->ks = ks, tmp->vs = vs, tmp->nwords = vs / 8;
	tmp->kind = kind_of(flags, vs, &o);
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

	if (!conn())
		return -EIO;
	if (t->kind != RS_HOLDER) {
		c.argc = 0;
		if (add_read(t, rk, rkey(t, -2, key, rk)) != 0 || !(rep = pipe_reply()))
			return -EIO;
		pipe_done();
		present = parse_read(t, rep, out);
		freeReplyObject(rep);
		return present == 1 ? 0 : present == 0 ? -ENOENT : -EINVAL;
	}
	v = malloc(vs);
	if (!v)
		return -ENOMEM;
	c.argv[0] = "GET", c.len[0] = 3, c.argc = 2;
	c.argv[1] = rk, c.len[1] = rkey(t, -1, key, rk);
	if (pipe_add(&c) != 0 || !(rep = pipe_reply())) {
		free(v);
		return -EIO;
	}
	pipe_done();
	present = rep->type == REDIS_REPLY_STRING && rep->len == vs;
	if (present)
		memcpy(out, rep->str, vs);
	freeReplyObject(rep);
	for (i = 0; present && i < SM_MAX_INSTANCES; i++) {
		if (!sm_instance_active(r, i))
			continue;
		c.argv[1] = rk, c.len[1] = rkey(t, i, key, rk);
		if (pipe_add(&c) != 0 || !(rep = pipe_reply())) {
			free(v);
			return -EIO;
		}
		pipe_done();
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

	if (!conn())
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

	if (!conn())
		return -1;
	return scan_keys(full, t->kind == RS_HOLDER ? "@b:" : ":", ks, count_one, &n) == 0 ? n : -1;
}

static const struct sm_remote_hooks mgr_hooks = {
	.claim = mgr_claim,
	.release = mgr_release,
	.lookup = mgr_lookup,
	.foreach = mgr_foreach,
	.count = mgr_count,
};

/* ---------------------------------------------------------------------------------------------- */
/* set-up                                                                                         */

const char *rs_backend_name(enum rs_backend b)
{
	return b == RS_FISSION ? "fission" : b == RS_SNF ? "snf" : "serpens";
}

int rs_backend_parse(const char *s)
{
	if (!strcmp(s, "serpens"))
		return RS_SERPENS;
	if (!strcmp(s, "fission"))
		return RS_FISSION;
	if (!strcmp(s, "snf"))
		return RS_SNF;
	return -1;
}

int rs_setup(const struct rs_config *c)
{
	if (c->backend != RS_SERPENS && c->backend != RS_FISSION && c->backend != RS_SNF)
		return -EINVAL;
	cfg = *c;
	if (!cfg.host)
		cfg.host = "127.0.0.1";
	if (!cfg.timeout_ms)
		cfg.timeout_ms = 1000;
	st = c->stats ? c->stats : &own_stats;
	if (c->backend == RS_SERPENS)
		return 0; /* the State Manager alone: nothing to install, Redis is never touched */
	init_words();
	sp_state_set_creator(rs_create_table);
	sp_batch_hooks = &rs_hooks;
	if (c->manager)
		sm_set_remote_hooks(&mgr_hooks);
	return 0;
}

int rs_ping(char *err, size_t errlen)
{
	redisReply *r;
	struct rs_cmd c = {.argc = 1, .argv = {"PING"}, .len = {4}};

	if (!conn() || pipe_add(&c) != 0 || !(r = pipe_reply())) {
		snprintf(err, errlen, "%s", last_msg[0] ? last_msg : "cannot reach Redis");
		return -1;
	}
	pipe_done();
	freeReplyObject(r);
	return 0;
}

void rs_forget(void)
{
	memset(tables, 0, sizeof(tables));
	ntables = 0;
	cache_reset();
	in_batch = false;
	if (ctx) {
		redisFree(ctx);
		ctx = NULL;
	}
}
