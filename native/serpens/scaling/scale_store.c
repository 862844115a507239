/*
 * scale_store.c: the private per-flow tables (scale_store.h). Open addressing with linear probing and
 * tombstones, in memory of the instance's own heap; the NF gets a pointer to the value and updates it in
 * place, as with the State Manager.
 */
#include "scale_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_hash_crc.h>

#include "serpens/nf.h"
#include "scale_shared.h"
#include "state.h"

enum { SLOT_EMPTY = 0, SLOT_USED = 1, SLOT_TOMB = 2 };

struct slot_head {
	uint32_t state;
	uint32_t flow;
};

struct ptable {
	struct sp_table head; /* first: nf.h's calls dispatch on head.ops */
	uint32_t key_size, value_size, key_room, slot_size;
	uint32_t mask; /* slots - 1 */
	uint32_t used, capacity;
	uint8_t *slots;
};

static struct ptable *tables[SC_MAX_TABLES];
static unsigned int ntables;
static uint32_t cur_flow;
static sp_create_fn next_creator;
static uint64_t entries;
static void (*on_new)(uint32_t flow);

static inline struct slot_head *slot_at(const struct ptable *t, uint32_t i)
{
	return (struct slot_head *)(t->slots + (size_t)i * t->slot_size);
}
static inline void *slot_key(struct slot_head *s) { return (uint8_t *)s + sizeof(*s); }
static inline void *slot_value(const struct ptable *t, struct slot_head *s)
{
	return (uint8_t *)s + sizeof(*s) + t->key_room;
}

/* The slot holding key, or (insert) the first free one on its probe path; NULL if neither. */
static struct slot_head *find(struct ptable *t, const void *key, bool insert)
{
	uint32_t i = rte_hash_crc(key, t->key_size, 0x5ca1) & t->mask, n;
	struct slot_head *tomb = NULL, *s;

	for (n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {
		s = slot_at(t, i);
		if (s->state == SLOT_EMPTY)
			return insert ? (tomb ? tomb : s) : NULL;
		if (s->state == SLOT_TOMB) {
			if (!tomb)
				tomb = s;
			continue;
		}
		if (!memcmp(slot_key(s), key, t->key_size))
			return s;
	}
	return insert ? tomb : NULL;
}

static void *p_get(sp_table *h, const void *key)
{
	struct ptable *t = (struct ptable *)h;
	struct slot_head *s = find(t, key, false);

	return s ? slot_value(t, s) : NULL;
}

static int put_flow(struct ptable *t, const void *key, const void *value, uint32_t flow)
{
	struct slot_head *s = find(t, key, true);

	if (!s)
		return -ENOSPC;
	if (s->state != SLOT_USED) {
		if (t->used >= t->capacity)
			return -ENOSPC;
		t->used++;
		entries++;
		memcpy(slot_key(s), key, t->key_size);
		s->state = SLOT_USED;
		s->flow = flow;
		if (on_new)
			on_new(flow);
	}
	memcpy(slot_value(t, s), value, t->value_size);
	return 0;
}

static int p_put(sp_table *h, const void *key, const void *value)
{
	return put_flow((struct ptable *)h, key, value, cur_flow);
}

static void drop_slot(struct ptable *t, struct slot_head *s)
{
	s->state = SLOT_TOMB;
	t->used--;
	entries--;
}

static int p_delete(sp_table *h, const void *key)
{
	struct ptable *t = (struct ptable *)h;
	struct slot_head *s = find(t, key, false);

	if (!s)
		return -ENOENT;
	drop_slot(t, s);
	return 0;
}

/* Per-flow tables have no sub-states and no timers (nf.h: those are for global|write state). */
static int p_unsupported(sp_table *h, const void *key)
{
	(void)h;
	(void)key;
	return -ENOTSUP;
}

static int p_timer(sp_table *h, const void *key, uint64_t us)
{
	(void)us;
	return p_unsupported(h, key);
}

static const struct sp_state_ops private_ops = {
	.name = "private",
	.get_state = p_get,
	.put_state = p_put,
	.delete_state = p_delete,
	.split = p_unsupported,
	.merge = p_unsupported,
	.update = p_unsupported,
	.trigger = p_unsupported,
	.timer = p_timer,
};

static sp_table *create(const char *name, uint32_t flags, const struct sp_table_opts *o)
{
	struct ptable *t;
	uint32_t slots = 16;

	if (!(flags & SP_PER_FLOW) || !(flags & SP_WRITE) || (flags & SP_GLOBAL))
		return next_creator ? next_creator(name, flags, o) : sm_create_table(name, flags, o);
	if (!o || !o->key_size || !o->value_size || !o->capacity || ntables >= SC_MAX_TABLES ||
	    o->key_size > 1024 || o->capacity > (1u << 24)) {
		errno = EINVAL;
		return NULL;
	}
	while (slots < 2 * o->capacity) /* at most half full: short probes */
		slots <<= 1;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->head.ops = &private_ops;
	t->key_size = o->key_size;
	t->value_size = o->value_size;
	t->key_room = (o->key_size + 7) & ~7u; /* values 8-aligned, as NFs expect */
	t->slot_size = (uint32_t)sizeof(struct slot_head) + t->key_room + ((o->value_size + 7) & ~7u);
	t->mask = slots - 1;
	t->capacity = o->capacity;
	t->slots = calloc(slots, t->slot_size); /* zero pages: only touched slots cost memory */
	if (!t->slots) {
		free(t);
		return NULL;
	}
	tables[ntables++] = t;
	return &t->head;
}

void sc_store_install(sp_create_fn next)
{
	next_creator = next;
	sp_state_set_creator(create);
}

void sc_store_forget(void)
{
	unsigned int i;

	for (i = 0; i < ntables; i++) {
		free(tables[i]->slots);
		free(tables[i]);
		tables[i] = NULL;
	}
	ntables = 0;
	entries = 0;
}

void sc_store_set_flow(uint32_t flow) { cur_flow = flow; }
void sc_store_on_new(void (*fn)(uint32_t flow)) { on_new = fn; }
uint64_t sc_store_entries(void) { return entries; }

static int by_flow(const void *a, const void *b)
{
	const struct sc_ref *x = a, *y = b;

	return x->flow < y->flow ? -1 : x->flow > y->flow ? 1 : x->table - y->table;
}

unsigned int sc_store_collect(const uint64_t *mask, uint32_t flow, struct sc_ref *refs, unsigned int max)
{
	unsigned int k, n = 0;
	uint32_t i;

	for (k = 0; k < ntables; k++) {
		struct ptable *t = tables[k];

		for (i = 0; i <= t->mask && n < max; i++) {
			struct slot_head *s = slot_at(t, i);

			if (s->state != SLOT_USED)
				continue;
			if (mask ? !sc_bucket_in(mask, s->flow) : s->flow != flow)
				continue;
			refs[n++] = (struct sc_ref){.flow = s->flow, .table = (uint16_t)k, .idx = i};
		}
	}
	qsort(refs, n, sizeof(*refs), by_flow);
	return n;
}

void sc_store_get_ref(const struct sc_ref *r, const void **key, uint32_t *key_size, const void **value,
		      uint32_t *value_size)
{
	struct ptable *t = tables[r->table];
	struct slot_head *s = slot_at(t, r->idx);

	*key = slot_key(s);
	*key_size = t->key_size;
	*value = slot_value(t, s);
	*value_size = t->value_size;
}

void sc_store_drop_ref(const struct sc_ref *r)
{
	struct ptable *t = tables[r->table];
	struct slot_head *s = slot_at(t, r->idx);

	if (s->state == SLOT_USED)
		drop_slot(t, s);
}

int sc_store_import(uint16_t table, const void *key, uint32_t key_size, const void *value,
		    uint32_t value_size, uint32_t flow)
{
	struct ptable *t = table < ntables ? tables[table] : NULL;

	if (!t || key_size != t->key_size || value_size != t->value_size)
		return -EINVAL; /* not the same NFs: never guess */
	return put_flow(t, key, value, flow);
}
