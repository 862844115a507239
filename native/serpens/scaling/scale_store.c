/*
 * scale_store.c: the private per-flow tables (scale_store.h). Open addressing with linear probing and
 * tombstones, in memory of the instance's own heap; the NF gets a pointer to the value and updates it in
 * place, as with the State Manager.
 *
 * A flow index (flow hash -> its entries' table and slot) answers "this flow's entries" without a scan:
 * S6 serves each pull that way, as its owner would look an object up by key. A dense list of the live
 * entries lets an export visit only those, not every slot. Slots never move (deletion leaves a
 * tombstone), so both stay valid until their entry is deleted. The tables are mapped populated, like the
 * State Manager's hugepages: no instance pays page faults on the data path or in a move.
 */
#include "scale_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rte_hash_crc.h>

#include "serpens/nf.h"
#include "scale_shared.h"
#include "state.h"

enum { SLOT_EMPTY = 0, SLOT_USED = 1, SLOT_TOMB = 2 };

struct slot_head {
	uint32_t state;
	uint32_t flow;
	uint32_t live; /* its position in live[] */
	uint32_t pad;
};

struct ptable {
	struct sp_table head; /* first: nf.h's calls dispatch on head.ops */
	uint16_t id;          /* its index in tables[] */
	uint32_t key_size, value_size, key_room, slot_size;
	uint32_t mask; /* slots - 1 */
	uint32_t used, capacity;
	uint8_t *slots;
	size_t bytes;
};

#define FIDX_REFS 4 /* entries of one flow the index names; a flow with more is found by a scan */

struct fidx {
	uint32_t flow;
	uint8_t state; /* SLOT_EMPTY, SLOT_USED, SLOT_TOMB */
	uint8_t n;
	uint8_t overflow;
	uint16_t table[FIDX_REFS];
	uint32_t idx[FIDX_REFS];
};

static struct fidx *fidx;
static uint32_t fidx_mask;
static size_t fidx_bytes;
static struct sc_ref *live; /* every live entry (flow unused here), in no order */
static uint32_t nlive, live_cap;
static size_t live_bytes;
static struct ptable *tables[SC_MAX_TABLES];
static unsigned int ntables;
static uint32_t cur_flow;
static sp_create_fn next_creator;
static uint64_t entries;
static void (*on_new)(uint32_t flow);

static struct fidx *fidx_find(uint32_t flow, bool insert)
{
	uint32_t i = rte_hash_crc_4byte(flow, 0xf1d) & fidx_mask, n;
	struct fidx *tomb = NULL;

	if (!fidx)
		return NULL;
	for (n = 0; n <= fidx_mask; n++, i = (i + 1) & fidx_mask) {
		struct fidx *e = &fidx[i];

		if (e->state == SLOT_EMPTY) {
			if (!insert)
				return NULL;
			e = tomb ? tomb : e;
			*e = (struct fidx){.flow = flow, .state = SLOT_USED};
			return e;
		}
		if (e->state == SLOT_TOMB) {
			if (!tomb)
				tomb = e;
			continue;
		}
		if (e->flow == flow)
			return e;
	}
	if (insert && tomb) {
		*tomb = (struct fidx){.flow = flow, .state = SLOT_USED};
		return tomb;
	}
	return NULL;
}

static void fidx_add(uint32_t flow, uint16_t table, uint32_t idx)
{
	struct fidx *e = fidx_find(flow, true);

	if (!e)
		return; /* cannot happen: the index has room for every entry; a scan would still find it */
	if (e->n < FIDX_REFS) {
		e->table[e->n] = table;
		e->idx[e->n++] = idx;
	} else {
		e->overflow = 1;
	}
}

static void fidx_del(uint32_t flow, uint16_t table, uint32_t idx)
{
	struct fidx *e = fidx_find(flow, false);
	unsigned int i;

	if (!e)
		return;
	for (i = 0; i < e->n; i++)
		if (e->table[i] == table && e->idx[i] == idx) {
			e->n--;
			e->table[i] = e->table[e->n];
			e->idx[i] = e->idx[e->n];
			break;
		}
	if (!e->n && !e->overflow)
		e->state = SLOT_TOMB;
}

static void *map_populated(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

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
		s->live = nlive;
		live[nlive++] = (struct sc_ref){.table = t->id, .idx = (uint32_t)(((uint8_t *)s - t->slots) / t->slot_size)};
		fidx_add(flow, t->id, live[s->live].idx);
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
	struct sc_ref last = live[--nlive];

	fidx_del(s->flow, t->id, (uint32_t)(((uint8_t *)s - t->slots) / t->slot_size));
	live[s->live] = last; /* the last live entry takes its place in the list */
	slot_at(tables[last.table], last.idx)->live = s->live;
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
	t->bytes = (size_t)slots * t->slot_size;
	t->slots = map_populated(t->bytes);
	if (!t->slots) {
		free(t);
		return NULL;
	}
	if (slots > fidx_mask + 1 || !fidx) { /* the index: as many slots as the largest table (still empty) */
		if (fidx)
			munmap(fidx, fidx_bytes);
		fidx_bytes = (size_t)slots * sizeof(*fidx);
		fidx = map_populated(fidx_bytes);
		fidx_mask = fidx ? slots - 1 : 0;
	}
	if (nlive + o->capacity > live_cap) { /* the live list: room for every table's capacity */
		size_t bytes = (size_t)(live_cap + o->capacity) * sizeof(*live);
		struct sc_ref *l = map_populated(bytes);

		if (l && live)
			memcpy(l, live, (size_t)nlive * sizeof(*live));
		if (live)
			munmap(live, live_bytes);
		live = l;
		live_bytes = bytes;
		live_cap = l ? live_cap + o->capacity : 0;
	}
	if (!fidx || !live) {
		munmap(t->slots, t->bytes);
		free(t);
		return NULL;
	}
	t->id = (uint16_t)ntables;
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
		munmap(tables[i]->slots, tables[i]->bytes);
		free(tables[i]);
		tables[i] = NULL;
	}
	ntables = 0;
	entries = 0;
	if (fidx)
		munmap(fidx, fidx_bytes);
	if (live)
		munmap(live, live_bytes);
	fidx = NULL;
	live = NULL;
	fidx_mask = 0;
	nlive = live_cap = 0;
}

void sc_store_set_flow(uint32_t flow) { cur_flow = flow; }

bool sc_store_has_flow(uint32_t flow)
{
	const struct fidx *e = fidx_find(flow, false);

	return e && (e->n || e->overflow);
}
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
	struct fidx *e = mask ? NULL : fidx_find(flow, false);

	if (!mask && (!e || !e->overflow)) { /* one flow, from the index */
		for (i = 0; e && i < e->n && n < max; i++)
			refs[n++] = (struct sc_ref){.flow = flow, .table = e->table[i], .idx = e->idx[i]};
		return n;
	}
	for (k = 0; k < nlive && n < max; k++) { /* the live entries only */
		struct slot_head *s = slot_at(tables[live[k].table], live[k].idx);

		if (mask ? !sc_bucket_in(mask, s->flow) : s->flow != flow)
			continue;
		refs[n++] = (struct sc_ref){.flow = s->flow, .table = live[k].table, .idx = live[k].idx};
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
