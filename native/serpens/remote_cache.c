/*
 * remote_cache.c: the instance-local batch cache of the remote backend — every key an NF's share of a
 * batch reads or writes, with Redis's value at the batch start (what the write-back compares against)
 * and the value now (what get_state hands out; the NF may write through the pointer). Entries live in a
 * bump arena and an epoch-tagged open-addressing index, both emptied in O(1) at each batch; the lookup
 * itself is static inline in remote_internal.h (get_state runs it on every call).
 */
#include "remote_internal.h"

#include <errno.h>
#include <stdlib.h>

struct rs_index rs_index = {.epoch = 1};

static uint8_t *arena;
static size_t arena_cap, arena_used;
static struct rs_entry *all_head, **all_tail = &all_head;

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

void rs_cache_reset(void)
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
	rs_index.epoch++;
	rs_index.count = 0;
	all_head = NULL;
	all_tail = &all_head;
}

/* The index grows (doubling, rehashing the live slots) before it is half full. */
static int index_put(struct rs_entry *e)
{
	size_t mask, i;

	if (2 * (rs_index.count + 1) > rs_index.cap) {
		size_t cap = rs_index.cap ? 2 * rs_index.cap : 1024, k;
		struct rs_index_slot *old = rs_index.slot, *n = calloc(cap, sizeof(*n));

		if (!n)
			return -ENOMEM;
		rs_index.slot = n;
		mask = cap - 1;
		for (k = 0; k < rs_index.cap; k++)
			if (old[k].epoch == rs_index.epoch) {
				for (i = old[k].e->h & mask; n[i].epoch == rs_index.epoch; i = (i + 1) & mask)
					;
				n[i] = old[k];
			}
		free(old);
		rs_index.cap = cap;
	}
	mask = rs_index.cap - 1;
	for (i = e->h & mask; rs_index.slot[i].epoch == rs_index.epoch; i = (i + 1) & mask)
		;
	rs_index.slot[i].e = e;
	rs_index.slot[i].epoch = rs_index.epoch;
	rs_index.count++;
	return 0;
}

struct rs_entry *rs_cache_add(struct rs_table *t, const void *key, uint64_t h)
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

struct rs_entry *rs_cache_entries(void) { return all_head; }

void rs_fill_entry(struct rs_entry *e, const redisReply *r)
{
	int p = rs_parse_read(e->t, r, e->val);

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

struct rs_entry *rs_fetch_sync(struct rs_table *t, const void *key, uint64_t h, struct rs_entry *e)
{
	char rk[RS_KEY_MAX];
	size_t n = rs_my_rkey(t, key, rk);
	redisReply *r;

	if (!e && !(e = rs_cache_add(t, key, h)))
		return NULL;
	if (rs_add_read(t, rk, n) != 0)
		return NULL;
	r = rs_pipe_reply();
	rs_pipe_done();
	if (!r)
		return NULL;
	rs_fill_entry(e, r);
	freeReplyObject(r);
	return e;
}
