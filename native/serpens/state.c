/*
 * state.c: the Serpens State Manager's tables in one shared region, and the NF state API on top of them
 * (see state.h for the model; docs/serpens.md for the design).
 *
 * Layout: struct sm_region (header, table directory, instance flags) followed by a bump-allocated heap
 * holding every table's slots. Nothing is ever freed: tables live as long as the region, like the NFs
 * deployed on the server. All pointers stored in the region point into the region, which every process
 * maps at the same address. The layout is in state_layout.h.
 */
#include "state.h"
#include "state_layout.h"
#include "serpens/state_ops.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

/* The process-local handle an NF holds: the shared table plus this process's hooks. */
struct sm_local {
	struct sp_table hdr; /* ops = &shm_ops */
	struct sm_table_shm *shm;
	sp_hook_fn split;
	sp_hook_fn merge;
	sp_hook_fn update;
	/* the Chainer's hints (sm_hint_batch): lookups whose key was the packet's flow / source address since
	 * the last batch of this table's NF, and whether its slots are prefetched by them (SM_HINT_*) */
	uint32_t by_flow, by_src;
	uint8_t prefetch;
};

static const struct sp_state_ops shm_ops;
static void hint_forget(void);
static sp_create_fn g_creator;
static const struct sm_remote_hooks *g_remote;
const struct sp_batch_hooks *sp_batch_hooks;

enum sm_phase { PHASE_RUN, PHASE_DEPLOY, PHASE_ATTACH };

static struct sm_region *g_region;
static int g_slot = -1;
static bool g_deploying;
static enum sm_phase g_phase = PHASE_RUN;
static const char *g_nf = "?";
static const char *const *g_args;
static char g_tenant[SM_TENANT_LEN] = SM_DEFAULT_TENANT;
/* A process's table handles, per region: a table's handle is indexed by its index in its region's
 * directory, and serpensd holds one region per tenant (docs/security.md), whose indexes meet. The first
 * region a process uses gets the static array (a runtime uses one region at a time, tests one); more are
 * allocated when first selected. g_local is the current region's. */
static struct sm_local g_local0[SM_MAX_TABLES];
static struct {
	const struct sm_region *r;
	struct sm_local *local;
} g_locals[SM_MAX_REGIONS];
static struct sm_local *g_local = g_local0;

/* ---------------------------------------------------------------------------------------------- */
/* small helpers                                                                                  */

static inline uint32_t ld_acq(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void st_rel(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline bool cas32(uint32_t *p, uint32_t old, uint32_t nv)
{
	return __atomic_compare_exchange_n(p, &old, nv, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
static inline void cpu_relax(void) { __builtin_ia32_pause(); }

static void spin_lock(uint32_t *l)
{
	while (!cas32(l, 0, 1))
		while (ld_acq(l))
			cpu_relax();
}
static void spin_unlock(uint32_t *l) { st_rel(l, 0); }

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t round8(uint32_t v) { return (v + 7u) & ~7u; }

/* The distance between one key's values (the base and each instance's share). A split or merge copies
 * between them under the State Manager's pause, so a large value (NAT's pool: 252 KiB) is given a stride
 * of whole pages: at a stride of round8(size) the destination sat 8 bytes past the source modulo 4 KiB,
 * and every load of memcpy waited on the store just before it (4K aliasing): NAT's pool took 74 µs to
 * copy where 27 µs is the machine's cold copy (docs/scaling.md). A page per value more is < 2 % of such a
 * value; small values keep round8 (a hash table of them would grow by pages). */
static uint32_t val_stride_for(uint32_t value_size, uint32_t nvals)
{
	const uint32_t page = 4096;

	if (nvals > 1 && value_size >= page)
		return (value_size + page - 1) / page * page;
	return round8(value_size);
}

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 2;

	while (p < v)
		p <<= 1;
	return p;
}

/* 64-bit hash of a byte key: 8-byte words mixed murmur-style, then a final avalanche. */
static inline uint64_t hash_word(uint64_t h, uint64_t w)
{
	w *= 0x87c37b91114253d5ull;
	w = (w << 31) | (w >> 33);
	h ^= w * 0x4cf5ad432745937full;
	return ((h << 27) | (h >> 37)) * 5 + 0x52dce729;
}

static inline uint64_t hash_final(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 33);
}

/* key_hash of the 16 bytes w0, w1 (little-endian) */
static inline uint64_t flow_words_hash(uint64_t w0, uint64_t w1)
{
	return hash_final(hash_word(hash_word(0x9e3779b97f4a7c15ull ^ 16, w0), w1));
}

/* Exactly this width: the compiler would merge neighbouring narrow loads into one wide load, which is
 * what must not happen to a key that was just written field by field (flow_hash). */
#define LOAD_AS_IS(p) __atomic_load_n(p, __ATOMIC_RELAXED)

/* key_hash of a 16-byte key (a flow), its two words put together from its fields' own loads. An NF
 * builds its flow keys field by field (sp_flow_of: 4-, 2- and 1-byte stores) just before the lookup;
 * an 8-byte load of one cannot be forwarded from those stores and waits until they reach the cache
 * (perf: a third of sp_get_state's own time before). */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "flow_hash assembles key_hash's words little-endian"
#endif
static inline uint64_t flow_hash(const void *key)
{
	const struct sp_flow *f = key; /* an NF's key of this size is its struct sp_flow (aligned) */
	uint64_t w0 = (uint64_t)LOAD_AS_IS(&f->dst_ip) << 32 | LOAD_AS_IS(&f->src_ip);
	uint64_t w1 = (uint64_t)LOAD_AS_IS(&f->src_port) | (uint64_t)LOAD_AS_IS(&f->dst_port) << 16 |
		      (uint64_t)LOAD_AS_IS(&f->proto) << 32 | (uint64_t)LOAD_AS_IS(&f->pad[0]) << 40 |
		      (uint64_t)LOAD_AS_IS(&f->pad[1]) << 48 | (uint64_t)LOAD_AS_IS(&f->pad[2]) << 56;

	return flow_words_hash(w0, w1);
}

static uint64_t key_hash(const void *key, uint32_t len)
{
	const uint8_t *p = key;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len, w;
	uint32_t i;

	if (len == 16)
		return flow_hash(key);

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h = hash_word(h, w);
	}
	if (i < len) {
		w = 0;
		memcpy(&w, p + i, len - i);
		h ^= w * 0x87c37b91114253d5ull;
	}
	return hash_final(h);
}

void sm_error(const char *fmt, ...)
{
	va_list ap;
	char buf[sizeof(g_region->last_error)];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (g_region) {
		__atomic_fetch_add(&g_region->errors, 1, __ATOMIC_RELAXED);
		memcpy(g_region->last_error, buf, sizeof(buf));
		__atomic_store_n(&g_region->last_error_ns, now_ns(), __ATOMIC_RELEASE);
	}
	fprintf(stderr, "serpens state: %s\n", buf);
}

/* ---------------------------------------------------------------------------------------------- */
/* region and process context                                                                     */

static unsigned int g_region_slots = SM_DEFAULT_INSTANCES;

int sm_set_region_slots(unsigned int n)
{
	if (n < 1 || n > SM_MAX_INSTANCES)
		return -EINVAL;
	g_region_slots = n;
	return 0;
}

/* The region's slot count, never above the arrays it indexes: the region is written by its tenant's
 * runtimes too, so serpensd bounds what it reads from it. */
static inline unsigned int region_slots(const struct sm_region *r)
{
	uint32_t n = __atomic_load_n(&r->ninst, __ATOMIC_RELAXED);

	return n < SM_MAX_INSTANCES ? n : SM_MAX_INSTANCES;
}

unsigned int sm_region_slots(const struct sm_region *r) { return region_slots(r); }

/* Each region's size as this process made or mapped it. The region's own `size` field is in memory its
 * tenant's runtimes can write; what bounds serpensd's accesses must not be (table_view). */
static struct {
	const struct sm_region *r;
	size_t size;
} g_sizes[SM_MAX_REGIONS];

static void note_size(const struct sm_region *r, size_t size)
{
	unsigned int i, free_at = SM_MAX_REGIONS;

	for (i = 0; i < SM_MAX_REGIONS; i++) {
		if (g_sizes[i].r == r) {
			g_sizes[i].size = size;
			return;
		}
		if (!g_sizes[i].r && free_at == SM_MAX_REGIONS)
			free_at = i;
	}
	if (free_at < SM_MAX_REGIONS)
		g_sizes[free_at].r = r, g_sizes[free_at].size = size;
}

/* One past the region's last byte, from this process's own record (the header's only if it has none). */
static const uint8_t *region_end(const struct sm_region *r)
{
	unsigned int i;

	for (i = 0; i < SM_MAX_REGIONS; i++)
		if (g_sizes[i].r == r)
			return (const uint8_t *)r + g_sizes[i].size;
	return (const uint8_t *)r + __atomic_load_n(&r->size, __ATOMIC_RELAXED);
}

struct sm_region *sm_region_create(void *mem, size_t size)
{
	struct sm_region *r = mem;

	if (size < sizeof(*r) + 4096) {
		errno = EINVAL;
		return NULL;
	}
	note_size(r, size);
	memset(r, 0, sizeof(*r));
	r->size = size;
	r->ninst = g_region_slots;
	r->used = sizeof(*r);
	__atomic_store_n(&r->magic, SM_MAGIC, __ATOMIC_RELEASE);
	return r;
}

struct sm_region *sm_region_attach(void *mem)
{
	struct sm_region *r = mem;

	if (__atomic_load_n(&r->magic, __ATOMIC_ACQUIRE) != SM_MAGIC) {
		errno = EINVAL;
		return NULL;
	}
	return r;
}

size_t sm_region_used(const struct sm_region *r) { return r->used; }
/* The handles of region r in this process, or NULL if it has none yet. Lock-free for serpensd's data plane
 * (timers) while the control thread adds a region: an entry's array is in place before its region is
 * published. */
static struct sm_local *local_find(const struct sm_region *r)
{
	unsigned int i;

	for (i = 0; i < SM_MAX_REGIONS; i++)
		if (__atomic_load_n(&g_locals[i].r, __ATOMIC_ACQUIRE) == r)
			return g_locals[i].local;
	return NULL;
}

/* ... or a new (zeroed) array for it; NULL: no room for another region, or no memory. */
static struct sm_local *local_of(const struct sm_region *r)
{
	struct sm_local *l = local_find(r);
	unsigned int i;

	if (l)
		return l;
	for (i = 0; i < SM_MAX_REGIONS; i++) {
		if (g_locals[i].r)
			continue;
		if (!g_locals[i].local)
			g_locals[i].local = i == 0 ? g_local0 : calloc(SM_MAX_TABLES, sizeof(struct sm_local));
		if (!g_locals[i].local)
			return NULL;
		__atomic_store_n(&g_locals[i].r, r, __ATOMIC_RELEASE);
		return g_locals[i].local;
	}
	return NULL;
}

int sm_set_region(struct sm_region *r)
{
	struct sm_local *l = r ? local_of(r) : g_local;

	if (!l)
		return -ENOMEM;
	if (r != g_region)
		hint_forget(); /* the hints index the current region's handles */
	g_region = r;
	g_local = l;
	return 0;
}

void sm_forget_region(const struct sm_region *r)
{
	unsigned int i;

	for (i = 0; i < SM_MAX_REGIONS; i++)
		if (g_locals[i].r == r) { /* the array is kept for the next region */
			memset(g_locals[i].local, 0, SM_MAX_TABLES * sizeof(struct sm_local));
			__atomic_store_n(&g_locals[i].r, NULL, __ATOMIC_RELEASE);
		}
	if (g_region == r) {
		g_region = NULL;
		g_local = g_local0; /* zeroed or another region's: nothing reads it without a region */
		hint_forget();
	}
}

struct sm_region *sm_get_region(void) { return g_region; }
void sm_set_instance(int slot) { g_slot = slot; }
int sm_get_instance(void) { return g_slot; }
void sm_set_phase_deploy(bool deploying) { g_deploying = deploying; }

void sm_set_nf(const char *nf_name, const char *const *args)
{
	g_nf = nf_name ? nf_name : "?";
	g_args = args;
}

bool sm_tenant_valid(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	if (n == 0 || n >= SM_TENANT_LEN)
		return false;
	for (; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') || (*t >= '0' && *t <= '9') || *t == '_' ||
		      *t == '-'))
			return false;
	return true;
}

int sm_set_tenant(const char *t)
{
	if (!sm_tenant_valid(t))
		return -EINVAL;
	snprintf(g_tenant, sizeof(g_tenant), "%s", t);
	return 0;
}

const char *sm_tenant(void) { return g_tenant; }

int sm_nf_init(const struct sp_nf *nf)
{
	int rc;

	g_phase = g_deploying ? PHASE_DEPLOY : PHASE_ATTACH;
	rc = nf->init ? nf->init() : 0;
	g_phase = PHASE_RUN;
	return rc;
}

int sp_deploying(void) { return g_phase == PHASE_DEPLOY; }

const char *sp_arg(const char *key)
{
	const char *const *a;

	for (a = g_args; a && a[0] && a[1]; a += 2)
		if (strcmp(a[0], key) == 0)
			return a[1];
	return NULL;
}

void sp_log(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "nf %s: ", g_nf);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---------------------------------------------------------------------------------------------- */
/* table storage                                                                                  */

static inline uint8_t *slot_at(const struct sm_table_shm *t, uint64_t i)
{
	return t->slots + i * t->slot_size;
}
static inline uint32_t *slot_state(uint8_t *s) { return (uint32_t *)s; }
static inline uint32_t *slot_hash(uint8_t *s) { return (uint32_t *)(s + 4); }
static inline uint8_t *slot_key(uint8_t *s) { return s + 8; }
static inline uint8_t *slot_val(const struct sm_table_shm *t, uint8_t *s, unsigned int v)
{
	return s + 8 + t->key_stride + (size_t)v * t->val_stride;
}

/* A key of flow size against a flow, field by field, each field of key loaded as it was stored (see
 * flow_hash: the NF has just built it). The pad is compared too: keys are bytes. */
static inline bool flow_eq(const struct sp_flow *h, const void *key)
{
	const struct sp_flow *k = key;

	return h->src_ip == LOAD_AS_IS(&k->src_ip) && h->dst_ip == LOAD_AS_IS(&k->dst_ip) &&
	       h->src_port == LOAD_AS_IS(&k->src_port) && h->dst_port == LOAD_AS_IS(&k->dst_port) &&
	       h->proto == LOAD_AS_IS(&k->proto) && h->pad[0] == LOAD_AS_IS(&k->pad[0]) &&
	       h->pad[1] == LOAD_AS_IS(&k->pad[1]) && h->pad[2] == LOAD_AS_IS(&k->pad[2]);
}

/* Keys compared as bytes; the NFs' keys are a 5-tuple (16 bytes) or an address (4): those compare inline
 * instead of in a call to memcmp, once per lookup. A slot's key is 8-aligned, so a struct sp_flow there is
 * aligned; an NF's key of that size is its struct sp_flow. */
static inline bool key_eq(const uint8_t *a, const void *key, uint32_t len)
{
	uint32_t u, v;

	if (len == sizeof(struct sp_flow))
		return flow_eq((const struct sp_flow *)(const void *)a, key);
	if (len == 4) {
		memcpy(&u, a, 4);
		memcpy(&v, key, 4);
		return u == v;
	}
	return memcmp(a, key, len) == 0;
}

static uint8_t *slot_find(struct sm_table_shm *t, const void *key, uint64_t h)
{
	uint64_t mask = t->nslots - 1, i, n;
	uint32_t h32 = (uint32_t)(h >> 32), st;
	uint8_t *s;

	for (n = 0, i = h & mask; n < t->nslots; n++, i = (i + 1) & mask) {
		s = slot_at(t, i);
		while ((st = ld_acq(slot_state(s))) == SLOT_BUSY)
			cpu_relax();
		if (st == SLOT_EMPTY)
			return NULL;
		if (st == SLOT_FULL && *slot_hash(s) == h32 && key_eq(slot_key(s), key, t->key_size))
			return s;
	}
	return NULL;
}

static void init_values(struct sm_table_shm *t, uint8_t *s);

/* Find key or claim a slot for it. Single writer per key (the router's invariant), so after a miss no
 * other process can insert the same key; others may race for the same empty slot, hence the CAS. */
static uint8_t *slot_insert(struct sm_table_shm *t, const void *key, uint64_t h)
{
	uint64_t mask = t->nslots - 1, i, n;
	uint32_t h32 = (uint32_t)(h >> 32), st;
	uint8_t *s = slot_find(t, key, h);

	if (s)
		return s;
	for (n = 0, i = h & mask; n < t->nslots; n++, i = (i + 1) & mask) {
		s = slot_at(t, i);
		st = ld_acq(slot_state(s));
		if ((st == SLOT_EMPTY || st == SLOT_TOMB) && cas32(slot_state(s), st, SLOT_BUSY)) {
			*slot_hash(s) = h32;
			memcpy(slot_key(s), key, t->key_size);
			init_values(t, s);
			__atomic_fetch_add(&t->count, 1, __ATOMIC_RELAXED);
			if (st == SLOT_EMPTY) /* a tombstone's slot is listed already */
				t->live[__atomic_fetch_add(&t->nlive, 1, __ATOMIC_RELAXED)] = (uint32_t)i;
			st_rel(slot_state(s), SLOT_FULL);
			return s;
		}
	}
	return NULL;
}

/* Entries of t->live that are filled in (an inserter takes its index before writing it). */
static uint64_t live_count(const struct sm_table_shm *t)
{
	return __atomic_load_n(&t->nlive, __ATOMIC_ACQUIRE);
}

static bool is_global_write(const struct sm_table_shm *t)
{
	return (t->flags & (SP_GLOBAL | SP_WRITE)) == (SP_GLOBAL | SP_WRITE);
}

/* A table's geometry checked against the region it is in: slots and live list inside it, values inside a
 * slot. The directory entry is in the region, which every runtime of the tenant maps writable; serpensd
 * (splits, merges, timers, dumps) works on a private copy that passed this check, so whatever a runtime
 * writes there, the addresses serpensd computes stay inside that tenant's own region — never another
 * tenant's, never serpensd's own memory. The copy's live count is bounded by its slots, and every live
 * index read from the region is checked against them where it is used. NULL: the entry does not fit. */
static bool geometry_fits(const struct sm_region *r, const struct sm_table_shm *t)
{
	const uint8_t *lo = r->heap, *hi = region_end(r), *s = t->slots, *l = (const uint8_t *)t->live;

	if (t->remote)
		return true; /* no slots here: its entries are in the remote store */
	return t->nslots && t->slot_size && hi > lo && t->nslots <= (uint64_t)(hi - lo) / t->slot_size &&
	       s >= lo && s <= hi - t->nslots * t->slot_size && l >= lo && l <= hi - t->nslots * sizeof(uint32_t) &&
	       (t->nvals == 1 || t->nvals == 1 + region_slots(r)) && t->key_size <= t->key_stride &&
	       t->value_size <= t->val_stride &&
	       (uint64_t)t->key_stride + (uint64_t)t->val_stride * t->nvals + 8 <= t->slot_size;
}

static struct sm_table_shm *table_view(struct sm_region *r, const struct sm_table_shm *t, struct sm_table_shm *v)
{
	memcpy(v, t, sizeof(*v)); /* one read of the entry: what is checked is what is used */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (!geometry_fits(r, v)) {
		sm_error("table %.*s: its directory entry no longer fits its region: left alone", SM_NAME_LEN - 1,
			 v->name);
		return NULL;
	}
	if (v->nlive > v->nslots)
		v->nlive = v->nslots;
	return v;
}

/* ---------------------------------------------------------------------------------------------- */
/* default hooks (Fig. 8's defaults)                                                               */

/* Release: every holder (base and each active instance) is an sp_pool; the free items are dealt out
 * equally to the active instances (or all to the base when none is active). In place: each holder short of
 * its share takes what it lacks from the tail of holders above theirs, so a split copies only the items
 * that change hands (half the pool when a second instance starts), with no temporary buffer. This runs
 * under the State Manager's pause: every byte copied here is a pause every instance waits out (the issue
 * that measured it: a gather-and-redeal through a malloc'd buffer paused 50-100 µs for NAT's 64 512
 * ports; docs/scaling.md). */
static void pool_deal(void *base, void **vals, unsigned int n, uint32_t vsize, struct sp_pool *leaving)
{
	struct sp_pool *b = base, *hold[SM_MAX_INSTANCES + 2];
	uint32_t cap = b->cap, want[SM_MAX_INSTANCES + 2], share, extra;
	uint64_t total = b->nfree;
	unsigned int i, h = 0, active = 0, r, d = 0;

	if (cap == 0 || SP_POOL_SIZE(cap) > vsize || n > SM_MAX_INSTANCES)
		return;
	if (leaving) /* a departing holder: it only gives, everything it holds */
		total += leaving->nfree;
	for (i = 0; i < n; i++)
		if (vals[i]) {
			total += ((struct sp_pool *)vals[i])->nfree;
			active++;
		}
	/* every holder's items are the one pool's: more than its capacity in all is a value its tenant's runtime
	 * overwrote, and copying by those counts would reach past the values (in serpensd); left as it is */
	if (total > cap) {
		sm_error("a release pool's holders claim %llu items, more than its %u: left alone",
			 (unsigned long long)total, cap);
		return;
	}
	if (leaving) {
		if (leaving->cap == 0)
			leaving->cap = cap;
		hold[h] = leaving;
		want[h++] = 0;
	}
	for (i = 0; i < n; i++)
		if (vals[i] && ((struct sp_pool *)vals[i])->cap == 0)
			((struct sp_pool *)vals[i])->cap = cap;
	share = active ? (uint32_t)(total / active) : 0;
	extra = active ? (uint32_t)(total % active) : 0;
	hold[h] = b; /* the base keeps everything only when no instance is active */
	want[h++] = active ? 0 : (uint32_t)total;
	for (i = 0, r = 0; i < n; i++)
		if (vals[i]) {
			hold[h] = vals[i];
			want[h++] = share + (r++ < extra ? 1 : 0);
		}
	for (r = 0; r < h; r++) { /* fill each receiver from the donors, in holder order */
		struct sp_pool *to = hold[r];

		while (to->nfree < want[r]) {
			struct sp_pool *from;
			uint32_t take;

			while (d < h && hold[d]->nfree <= want[d])
				d++;
			if (d == h)
				break; /* cannot happen: the shares add up to the total */
			from = hold[d];
			take = from->nfree - want[d];
			if (take > want[r] - to->nfree)
				take = want[r] - to->nfree;
			memcpy(to->item + to->nfree, from->item + from->nfree - take, (size_t)take * sizeof(uint32_t));
			from->nfree -= take;
			to->nfree += take;
		}
	}
}

static void pool_redistribute(void *base, void **vals, unsigned int n, uint32_t vsize)
{
	pool_deal(base, vals, n, vsize, NULL);
}

/* Eventual: counters. update folds every replica into the base and zeroes it. */
static void counters_fold(void *base, void **vals, unsigned int n, uint32_t vsize)
{
	uint64_t *b = base, *v;
	uint32_t k, nc = vsize / 8;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (vals[i]) {
			v = vals[i];
			for (k = 0; k < nc; k++) {
				b[k] += v[k];
				v[k] = 0;
			}
		}
}

static void default_noop(void *base, void **vals, unsigned int n, uint32_t vsize)
{
	(void)base, (void)vals, (void)n, (void)vsize;
}

static void init_values(struct sm_table_shm *t, uint8_t *s)
{
	memset(slot_val(t, s, 0), 0, (size_t)t->val_stride * t->nvals);
}

/* Which instance slots a hook sees: every active one, or only `only` if >= 0. Read once per hook run,
 * not per key: the set cannot change while the State Manager has processing paused. */
/* Returns 1 + the highest slot in `in` (0: none): a hook is run over vals[0..that), since every key is
 * visited under the pause and a gather and a fold loop of all SM_MAX_INSTANCES slots per key would make
 * each pause grow with the compiled maximum, not with the instances running. */
static unsigned int hook_slots(struct sm_region *r, int only, bool *in)
{
	unsigned int i, hi = 0;

	for (i = 0; i < SM_MAX_INSTANCES; i++) { /* beyond r->ninst: never claimed, never `only` */
		in[i] = i < region_slots(r) && ((only < 0 && ld_acq(&r->active[i])) || (int)i == only);
		if (in[i])
			hi = i + 1;
	}
	return hi;
}

/* vals[i] for every slot of `in` below n (NULL elsewhere). */
static void gather(struct sm_table_shm *t, uint8_t *s, void **vals, const bool *in, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		vals[i] = in[i] && 1 + i < t->nvals ? slot_val(t, s, 1 + i) : NULL;
}

/* The hook of `kind` for a table with these flags and custom hooks (NULL: the defaults). */
static sp_hook_fn pick_hook(const struct sm_hook_set *h, uint32_t flags, enum sm_hook_kind k)
{
	sp_hook_fn custom = k == SM_HOOK_SPLIT ? h->split : k == SM_HOOK_MERGE ? h->merge : h->update;

	if (custom)
		return custom;
	if (flags & SP_RELEASE)
		return pool_redistribute; /* split and update deal out; merge: see sm_apply_hook */
	return k == SM_HOOK_SPLIT ? default_noop : counters_fold;
}

/* sm_apply_hook over vals[0..n): the slots beyond n are not the hook's (none of them active) */
static void apply_hook(const struct sm_hook_set *h, uint32_t flags, uint32_t value_size, enum sm_hook_kind k,
		       void *base, void **vals, unsigned int n, int merging)
{
	struct sp_pool *b = base, *p;

	if (k == SM_HOOK_MERGE && !h->merge && (flags & SP_RELEASE) && merging >= 0) {
		/* default release merge: the departing sub-state's free resources go back to the base */
		if (merging >= (int)n || !vals[merging])
			return;
		p = vals[merging];
		if (b->cap && p->nfree && b->nfree + p->nfree <= b->cap &&
		    SP_POOL_SIZE(b->nfree + p->nfree) <= value_size) {
			memcpy(b->item + b->nfree, p->item, (size_t)p->nfree * sizeof(uint32_t));
			b->nfree += p->nfree;
		}
		p->nfree = 0;
		return;
	}
	pick_hook(h, flags, k)(base, vals, n, value_size);
}

void sm_apply_hook(const struct sm_hook_set *h, uint32_t flags, uint32_t value_size, enum sm_hook_kind k,
		   void *base, void **vals, int merging)
{
	apply_hook(h, flags, value_size, k, base, vals, SM_MAX_INSTANCES, merging);
}

/* The default merge of eventual state when slot `only` leaves: its replica of every key folded into the
 * base. Every key is visited under the pause (MON: one per host), so this is the merge's whole cost: one
 * replica per key, not a gather of every slot's, and the next keys' lines fetched while this one folds.
 * t: a table_view. */
static void fold_departed(const struct sm_table_shm *t, unsigned int only)
{
	uint64_t i, n = live_count(t);

	for (i = 0; i < n; i++) {
		uint32_t li = __atomic_load_n(&t->live[i], __ATOMIC_RELAXED), ahead_i;
		uint8_t *x;
		void *v;

		if (i + 4 < n && (ahead_i = __atomic_load_n(&t->live[i + 4], __ATOMIC_RELAXED)) < t->nslots) {
			uint8_t *ahead = slot_at(t, ahead_i);

			__builtin_prefetch(ahead);
			__builtin_prefetch(slot_val(t, ahead, 1 + only), 1);
		}
		if (li >= t->nslots || 1 + only >= t->nvals)
			continue; /* not a slot of this table, or no value of that instance (table_view) */
		x = slot_at(t, li);
		v = slot_val(t, x, 1 + only);
		if (ld_acq(slot_state(x)) == SLOT_FULL)
			counters_fold(slot_val(t, x, 0), &v, 1, t->value_size);
	}
}

static struct sm_hook_set hooks_of(const struct sm_local *lt)
{
	return (struct sm_hook_set){.split = lt->split, .merge = lt->merge, .update = lt->update};
}

/* A departing instance's release state goes in one pass: straight from its sub-state to the instances
 * that stay (or to the base when none stays), instead of merged into the base and dealt out from there
 * again, which copied everything it held twice under the pause. Only with the default hooks: an NF's own
 * merge or update runs as before. */
static bool leaves_in_one_pass(const struct sm_local *lt)
{
	return (lt->shm->flags & SP_RELEASE) && !lt->merge && !lt->update;
}

/* Run a hook over one key (s) or every key (s == NULL). Caller holds the pause. leaving >= 0 (an update
 * after that slot's release, one-pass tables only): deal its sub-state out too. */
static void run_hook(struct sm_region *r, const struct sm_local *lt, enum sm_hook_kind k, uint8_t *s, int only,
		     int leaving)
{
	struct sm_table_shm view, *t = table_view(r, lt->shm, &view);
	struct sm_hook_set h = hooks_of(lt);
	void *vals[SM_MAX_INSTANCES];
	bool in[SM_MAX_INSTANCES];
	unsigned int n;
	uint64_t i;

	if (!t || !is_global_write(t))
		return;
	/* a hook that does nothing is not run key by key: every key visited here is paused time (eventual
	 * state's default split: a new replica starts at zero, which it already is) */
	if (pick_hook(&h, t->flags, k) == default_noop && !(k == SM_HOOK_MERGE && (t->flags & SP_RELEASE)))
		return;
	n = hook_slots(r, only, in);
	if (s) { /* found by the caller through this view's geometry (hook_on_key, sm_run_timers) */
		gather(t, s, vals, in, n);
		apply_hook(&h, t->flags, t->value_size, k, slot_val(t, s, 0), vals, n, only);
		return;
	}
	if (k == SM_HOOK_MERGE && only >= 0 && pick_hook(&h, t->flags, k) == counters_fold) {
		fold_departed(t, (unsigned int)only);
		return;
	}
	for (i = 0; i < live_count(t); i++) {
		uint32_t li = __atomic_load_n(&t->live[i], __ATOMIC_RELAXED);
		uint8_t *x;

		if (li >= t->nslots)
			continue; /* not a slot of this table (table_view) */
		x = slot_at(t, li);
		if (ld_acq(slot_state(x)) != SLOT_FULL)
			continue;
		gather(t, x, vals, in, n);
		if (leaving >= 0)
			pool_deal(slot_val(t, x, 0), vals, n, t->value_size,
				  (struct sp_pool *)slot_val(t, x, 1 + (unsigned int)leaving));
		else
			apply_hook(&h, t->flags, t->value_size, k, slot_val(t, x, 0), vals, n, only);
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* pause protocol: instances bracket batches; the pauser waits until no other instance is inside one */

void sm_batch_begin(struct sm_region *r, int slot)
{
	for (;;) {
		unsigned int spins = 0;

		__atomic_store_n(&r->busy[slot], 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&r->pause, __ATOMIC_SEQ_CST) == 0)
			return;
		__atomic_store_n(&r->busy[slot], 0, __ATOMIC_SEQ_CST);
		while (ld_acq(&r->pause)) {
			/* the pauser may share this core (--colocate): spinning here would keep it from ending
			 * the pause until the scheduler stepped in */
			if (++spins > 100)
				sched_yield();
			cpu_relax();
		}
	}
}

void sm_batch_end(struct sm_region *r, int slot) { __atomic_store_n(&r->busy[slot], 0, __ATOMIC_RELEASE); }

uint64_t sm_pause(struct sm_region *r, int self_slot)
{
	uint64_t t0, waited;
	unsigned int i;

	while (!cas32(&r->pause, 0, 1))
		cpu_relax();
	t0 = now_ns();
	r->pause_t0 = t0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (i = 0; i < region_slots(r); i++) {
		unsigned int spins = 0;

		if ((int)i == self_slot)
			continue;
		while (__atomic_load_n(&r->busy[i], __ATOMIC_SEQ_CST)) {
			if (now_ns() - t0 > SM_PAUSE_TIMEOUT_NS) {
				sm_error("pause: instance slot %u stayed inside a batch for 1 s (hung or dead?)", i);
				break;
			}
			if (++spins > 1000)
				sched_yield(); /* the instance may share this core: let it finish its batch */
			cpu_relax();
		}
	}
	waited = now_ns() - t0;
	r->pause_wait = waited;
	return waited;
}

void sm_resume(struct sm_region *r) { st_rel(&r->pause, 0); }

/* Resume and record how long packet processing was paused, from sm_pause to now, under `kind`. */
void sm_resume_as(struct sm_region *r, enum sm_hook_kind kind)
{
	struct sm_pause_stats *p = &r->pauses[kind];
	uint64_t ns = now_ns() - r->pause_t0;

	p->count++;
	p->last_ns = ns;
	p->last_at_ns = r->pause_t0 + ns;
	p->total_ns += ns;
	p->wait_total_ns += r->pause_wait;
	if (r->pause_wait > p->wait_max_ns)
		p->wait_max_ns = r->pause_wait;
	if (ns > p->max_ns)
		p->max_ns = ns;
	sm_resume(r);
}

void sm_pause_stats(const struct sm_region *r, enum sm_hook_kind kind, struct sm_pause_stats *out)
{
	*out = r->pauses[kind];
}

/* ---------------------------------------------------------------------------------------------- */
/* instance slots                                                                                 */

static void for_each_gw_table(struct sm_region *r, void (*fn)(struct sm_region *, struct sm_local *, int), int slot)
{
	struct sm_local *local = local_find(r);
	unsigned int i;

	for (i = 0; local && i < r->ntables; i++)
		if (local[i].shm && !local[i].shm->remote && is_global_write(local[i].shm))
			fn(r, &local[i], slot);
}

static void split_for(struct sm_region *r, struct sm_local *lt, int slot)
{
	(void)slot;
	run_hook(r, lt, SM_HOOK_SPLIT, NULL, -1, -1);
}

static void merge_for(struct sm_region *r, struct sm_local *lt, int slot)
{
	if (!leaves_in_one_pass(lt)) /* else update_release_for deals the slot's share out */
		run_hook(r, lt, SM_HOOK_MERGE, NULL, slot, -1);
}

/* After slot `leaving` was released (its sub-states merged, unless they go in one pass here). */
static void update_release_for(struct sm_region *r, struct sm_local *lt, int leaving)
{
	if (leaves_in_one_pass(lt))
		run_hook(r, lt, SM_HOOK_UPDATE, NULL, -1, leaving);
	else if (lt->shm->flags & SP_RELEASE)
		run_hook(r, lt, SM_HOOK_UPDATE, NULL, -1, -1);
}

static void split_all_for(struct sm_region *r, int slot)
{
	sm_pause(r, -1);
	for_each_gw_table(r, split_for, slot);
	if (g_remote && g_remote->claim)
		g_remote->claim(r, slot);
	sm_resume_as(r, SM_HOOK_SPLIT);
}

int sm_instance_claim(struct sm_region *r)
{
	unsigned int i;

	for (i = 0; i < region_slots(r); i++)
		if (cas32(&r->active[i], 0, 1))
			break;
	if (i == region_slots(r))
		return -ENOSPC;
	split_all_for(r, (int)i);
	return (int)i;
}

int sm_instance_claim_at(struct sm_region *r, int slot)
{
	if (slot < 0 || (unsigned int)slot >= region_slots(r) || !cas32(&r->active[slot], 0, 1))
		return -EBUSY;
	split_all_for(r, slot);
	return slot;
}

void sm_forget_local(void)
{
	memset(g_local, 0, SM_MAX_TABLES * sizeof(*g_local));
	hint_forget();
}

void sm_instance_release(struct sm_region *r, int slot)
{
	if (slot < 0 || (unsigned int)slot >= region_slots(r))
		return;
	sm_pause(r, -1);
	__atomic_store_n(&r->busy[slot], 0, __ATOMIC_SEQ_CST);
	for_each_gw_table(r, merge_for, slot);
	st_rel(&r->active[slot], 0);
	/* release state the departing instance gave back is dealt out to the others now; eventual replicas are
	 * folded by their own timer, not inside this pause (the departing one was folded above) */
	for_each_gw_table(r, update_release_for, slot);
	if (g_remote && g_remote->release)
		g_remote->release(r, slot); /* merges slot's remote sub-states back, redistributes */
	sm_resume_as(r, SM_HOOK_MERGE);
}

bool sm_instance_active(const struct sm_region *r, int slot)
{
	return slot >= 0 && (unsigned int)slot < region_slots(r) && ld_acq(&r->active[slot]);
}

/* ---------------------------------------------------------------------------------------------- */
/* the NF API (Fig. 8)                                                                            */

static int check_flags(uint32_t f)
{
	bool pf = f & SP_PER_FLOW, gl = f & SP_GLOBAL, rd = f & SP_READ, wr = f & SP_WRITE;
	bool rel = f & SP_RELEASE, ev = f & SP_EVENTUAL;

	if (f & ~(SP_PER_FLOW | SP_GLOBAL | SP_READ | SP_WRITE | SP_RELEASE | SP_EVENTUAL))
		return -1;
	if (pf == gl || rd == wr)
		return -1;
	if (gl && wr)
		return rel != ev ? 0 : -1;
	return (rel || ev) ? -1 : 0;
}

static const char *flags_str(uint32_t f, char *buf, size_t n)
{
	snprintf(buf, n, "%s%s%s%s%s%s", f & SP_PER_FLOW ? "per-flow|" : "", f & SP_GLOBAL ? "global|" : "",
		 f & SP_READ ? "read|" : "", f & SP_WRITE ? "write|" : "", f & SP_RELEASE ? "release|" : "",
		 f & SP_EVENTUAL ? "eventual|" : "");
	if (buf[0])
		buf[strlen(buf) - 1] = '\0';
	return buf;
}

static struct sm_table_shm *find_table(struct sm_region *r, const char *full, unsigned int *idx)
{
	unsigned int i, n = ld_acq(&r->ntables);

	if (n > SM_MAX_TABLES)
		n = SM_MAX_TABLES; /* the directory is in the region: its count is its tenant's to write */
	for (i = 0; i < n; i++)
		if (strcmp(r->tables[i].name, full) == 0) {
			if (idx)
				*idx = i;
			return &r->tables[i];
		}
	return NULL;
}

static void *heap_alloc(struct sm_region *r, uint64_t bytes)
{
	uint64_t off = (r->used + 63) & ~63ull;

	if (off + bytes > r->size)
		return NULL;
	r->used = off + bytes;
	return (uint8_t *)r + off;
}

int sm_check_table_args(const char *name, uint32_t flags, const struct sp_table_opts *o, char *full,
			size_t fulllen)
{
	char fb[96];
	int n;

	if (!name || !o || check_flags(flags) != 0) {
		sm_error("nf %s: create_table(\"%s\"): flags %s are not a combination the paper allows "
			 "(one of per-flow|global, one of read|write, and release or eventual only with "
			 "global|write)", g_nf, name ? name : "(null)", flags_str(flags, fb, sizeof(fb)));
		return -EINVAL;
	}
	if (o->key_size == 0 || o->key_size > 256 || o->value_size == 0 || o->value_size > (1u << 20) ||
	    o->capacity == 0) {
		sm_error("nf %s: create_table(\"%s\"): key_size 1..256, value_size 1..1 MiB and capacity > 0 "
			 "required (got %u, %u, %u)", g_nf, name, o->key_size, o->value_size, o->capacity);
		return -EINVAL;
	}
	/* the tenant in the name keeps two tenants' tables apart even where their deployment names meet;
	 * the default tenant's names stay as they were ("<nf>/<table>") */
	if (strcmp(g_tenant, SM_DEFAULT_TENANT) != 0)
		n = snprintf(full, fulllen, "%s:%s/%s", g_tenant, g_nf, name);
	else
		n = snprintf(full, fulllen, "%s/%s", g_nf, name);
	if (n < 0 || (size_t)n >= fulllen || fulllen > SM_NAME_LEN) {
		sm_error("nf %s: create_table(\"%s\"): name too long", g_nf, name);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Find or make the directory entry `full`; `remote` entries get no slots. Returns it, or NULL with errno. */
static struct sm_table_shm *dir_entry(struct sm_region *r, const char *full, const char *name, uint32_t flags,
				      const struct sp_table_opts *o, bool remote, unsigned int *idx_out)
{
	struct sm_table_shm *t;
	unsigned int idx;
	uint64_t bytes;

	spin_lock(&r->dir_lock);
	t = find_table(r, full, &idx);
	if (!t && g_phase != PHASE_DEPLOY && !g_deploying) {
		spin_unlock(&r->dir_lock);
		sm_error("nf %s: create_table(\"%s\") outside deployment: the table was not created when the "
			 "NF was deployed", g_nf, name);
		errno = ENOENT;
		return NULL;
	}
	if (t && strcmp(t->tenant, g_tenant) != 0) {
		spin_unlock(&r->dir_lock);
		sm_error("nf %s: create_table(\"%s\"): table %s belongs to tenant %s, not to tenant %s: refused",
			 g_nf, name, full, t->tenant, g_tenant);
		errno = EACCES;
		return NULL;
	}
	if (t && (t->flags != flags || t->key_size != o->key_size || t->value_size != o->value_size ||
		  (bool)t->remote != remote)) {
		spin_unlock(&r->dir_lock);
		sm_error("nf %s: create_table(\"%s\"): exists with other flags or sizes%s", g_nf, name,
			 (bool)t->remote != remote ? " (or in another state backend)" : "");
		errno = EEXIST;
		return NULL;
	}
	if (!t) {
		if (r->ntables == SM_MAX_TABLES) {
			spin_unlock(&r->dir_lock);
			sm_error("nf %s: create_table(\"%s\"): region holds %d tables already", g_nf, name,
				 SM_MAX_TABLES);
			errno = ENOSPC;
			return NULL;
		}
		idx = r->ntables;
		t = &r->tables[idx];
		memset(t, 0, sizeof(*t));
		snprintf(t->name, sizeof(t->name), "%s", full);
		snprintf(t->tenant, sizeof(t->tenant), "%s", g_tenant);
		t->flags = flags;
		t->key_size = o->key_size;
		t->value_size = o->value_size;
		t->remote = remote;
		if (!remote) {
			t->key_stride = round8(o->key_size);
			t->nvals = ((flags & (SP_GLOBAL | SP_WRITE)) == (SP_GLOBAL | SP_WRITE)) ? 1 + region_slots(r) : 1;
			t->val_stride = val_stride_for(o->value_size, t->nvals);
			t->slot_size = 8 + t->key_stride + t->val_stride * t->nvals;
			t->nslots = pow2_at_least((uint64_t)o->capacity + o->capacity / 3 + 1);
			bytes = t->nslots * t->slot_size;
			t->slots = heap_alloc(r, bytes);
			t->live = t->slots ? heap_alloc(r, t->nslots * sizeof(uint32_t)) : NULL;
			if (!t->slots || !t->live) {
				spin_unlock(&r->dir_lock);
				sm_error("nf %s: create_table(\"%s\"): state region full (%llu bytes needed, %llu of "
					 "%llu used)", g_nf, name, (unsigned long long)bytes,
					 (unsigned long long)r->used, (unsigned long long)r->size);
				errno = ENOMEM;
				return NULL;
			}
			memset(t->slots, 0, bytes);
			memset(t->live, 0, t->nslots * sizeof(uint32_t));
		}
		__atomic_store_n(&r->ntables, idx + 1, __ATOMIC_RELEASE);
	}
	spin_unlock(&r->dir_lock);
	*idx_out = idx;
	return t;
}

sp_table *sm_create_table(const char *name, uint32_t flags, const struct sp_table_opts *o)
{
	struct sm_region *r = g_region;
	struct sm_table_shm *t;
	char full[SM_NAME_LEN];
	unsigned int idx;
	int rc;

	if (!r) {
		errno = ENODEV;
		return NULL;
	}
	rc = sm_check_table_args(name, flags, o, full, sizeof(full));
	if (rc != 0) {
		errno = -rc;
		return NULL;
	}
	t = dir_entry(r, full, name, flags, o, false, &idx);
	if (!t)
		return NULL;
	g_local[idx].hdr.ops = &shm_ops;
	g_local[idx].shm = t;
	g_local[idx].split = o->split;
	g_local[idx].merge = o->merge;
	g_local[idx].update = o->update;
	return &g_local[idx].hdr;
}

int sm_register_remote(const char *name, uint32_t flags, const struct sp_table_opts *o)
{
	struct sm_region *r = g_region;
	char full[SM_NAME_LEN];
	unsigned int idx;
	int rc;

	if (!r)
		return -ENODEV;
	rc = sm_check_table_args(name, flags, o, full, sizeof(full));
	if (rc != 0)
		return rc;
	return dir_entry(r, full, name, flags, o, true, &idx) ? (int)idx : -errno;
}

static inline struct sm_local *as_local(sp_table *t) { return (struct sm_local *)t; }

static inline uint8_t *value_for_me(struct sm_table_shm *t, uint8_t *s)
{
	if (t->nvals == 1 || g_slot < 0)
		return slot_val(t, s, 0);
	return slot_val(t, s, 1 + (unsigned int)g_slot);
}

/* The hash of key: the Chainer's hint of the packet being handled when key is its flow or its source
 * address (compared in full, so a key that only looks alike is hashed), else computed. */
static inline uint64_t hinted_hash(struct sm_local *l, const void *key, uint32_t len)
{
	const struct sm_hint *h = sm_hint_cur;

	if (h && h->ok) {
		if (len == 16 && h->has_flow && flow_eq(&h->flow, key)) {
			l->by_flow++;
			return h->h_flow;
		}
		if (len == 4 && h->has_src && key_eq((const uint8_t *)&h->flow.src_ip, key, 4)) {
			l->by_src++;
			return h->h_src;
		}
	}
	return key_hash(key, len);
}

static inline void *shm_get_state(sp_table *lt, const void *key)
{
	struct sm_table_shm *t = as_local(lt)->shm;
	uint8_t *s = slot_find(t, key, hinted_hash(as_local(lt), key, t->key_size));

	return s ? value_for_me(t, s) : NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* the Chainer's hints: hash each packet's flow once per NF, prefetch the slots it will look up     */

/* A lookup is a cache miss on its slot's first line (perf: nearly all of slot_find's time is the load of
 * the slot's state word), and an NF looks up one slot per table per packet. Before an NF's share of a
 * batch the Chainer hands every packet's flow here: each is hashed once, and the slots of the NF's
 * tables that its lookups will name are prefetched, so the misses of a batch overlap instead of coming
 * one after another inside the handlers. Which tables are looked up by what is learnt, per table, from
 * the lookups themselves (hinted_hash counts those whose key was the packet's flow or source address):
 * every table whose key has the size of a flow (or of an address) is prefetched in an NF's first batch
 * (and again every SM_HINT_RELEARN batches), and in between those whose lookups named the packet's flow
 * (address) for at least a quarter of the packets of the NF's last batch; e.g. NAT's reverse table is not
 * prefetched while only outbound packets pass. A hint is only a
 * hint: the lookup compares the whole key, a prefetch that was not needed costs a line of cache. */
#define SM_HINT_FLOW 1u
#define SM_HINT_SRC 2u
#define SM_HINT_MIN_BYTES (64u << 10) /* smaller tables stay in cache: no prefetch */
#define SM_HINT_NFS 32                /* NF deployments per process with hints (an SFC's positions) */
#define SM_HINT_TABLES 8              /* tables per NF considered */
#define SM_HINT_RELEARN 64            /* batches between two rounds of trying every candidate table */

const struct sm_hint *sm_hint_cur;

struct hint_nf {
	const char *nf;   /* the deployment's name (the Chainer's pointer) */
	unsigned int n;
	uint16_t idx[SM_HINT_TABLES]; /* g_local indexes of its shared-memory tables */
	uint32_t hinted;  /* packets of its last batch */
	uint32_t batches;
};
static struct hint_nf g_hint_nf[SM_HINT_NFS];
static unsigned int g_hint_nnf;

static void hint_forget(void)
{
	memset(g_hint_nf, 0, sizeof(g_hint_nf));
	g_hint_nnf = 0;
}

/* The tables of deployment nf in this process (its init created or attached them as "<nf>/<table>"). */
static struct hint_nf *hint_tables(const char *nf)
{
	unsigned int i, n = (unsigned int)strlen(nf), k = 0;
	struct hint_nf *h;

	for (i = 0; i < g_hint_nnf; i++)
		if (g_hint_nf[i].nf == nf)
			return &g_hint_nf[i];
	if (g_hint_nnf == SM_HINT_NFS || !g_region)
		return NULL;
	h = &g_hint_nf[g_hint_nnf++];
	h->nf = nf;
	for (i = 0; i < SM_MAX_TABLES && k < SM_HINT_TABLES; i++) {
		struct sm_local *l = &g_local[i];

		if (!l->shm || l->shm->remote || !l->shm->slots || strncmp(l->shm->name, nf, n) != 0 ||
		    l->shm->name[n] != '/')
			continue;
		h->idx[k++] = (uint16_t)i;
	}
	h->n = k;
	return h;
}

/* What a table's key could be: a flow (16 bytes) or an address (4). */
static uint8_t candidates(const struct sm_table_shm *t)
{
	return t->key_size == sizeof(struct sp_flow) ? SM_HINT_FLOW : t->key_size == 4 ? SM_HINT_SRC : 0;
}

static inline void prefetch_slot(const struct sm_table_shm *t, uint64_t h)
{
	uint8_t *s = slot_at(t, h & (t->nslots - 1));

	__builtin_prefetch(s);
	if (t->nvals > 1) /* global|write: this instance's value may be lines away */
		__builtin_prefetch(value_for_me((struct sm_table_shm *)t, s));
}

/* sp_flow_of(p) as the two words of its struct sp_flow, read from the frame in two loads (the frame was
 * written long ago: no store to wait for). 0, or -1 where sp_flow_of fails. */
static inline int packet_flow(const struct sp_pkt *p, uint64_t w[2])
{
	int l3 = sp_l3_offset(p), l4;
	const uint8_t *ip;
	uint32_t ports = 0;

	if (l3 < 0)
		return -1;
	ip = p->data + l3;
	memcpy(&w[0], ip + 12, 8); /* source and destination address, as in struct sp_flow */
	if (ip[9] == SP_PROTO_TCP || ip[9] == SP_PROTO_UDP) {
		l4 = sp_l4_offset(p);
		if (l4 < 0)
			return -1;
		memcpy(&ports, p->data + l4, 4); /* source and destination port */
	}
	w[1] = (uint64_t)ports | (uint64_t)ip[9] << 32; /* the pad is 0 */
	return 0;
}

void sm_hint_batch(const char *nf, const struct sp_pkt *pkts, struct sm_hint *hints, unsigned int n)
{
	struct hint_nf *h = hint_tables(nf);
	unsigned int i, k, want = 0;
	struct sm_local *pf[SM_HINT_TABLES];
	unsigned int npf = 0;

	for (i = 0; i < n; i++)
		hints[i].ok = 0;
	if (!h || h->n == 0)
		return;
	for (k = 0; k < h->n; k++) { /* learn from the last batch, then pick this batch's prefetches */
		struct sm_local *l = &g_local[h->idx[k]];

		if (h->batches % SM_HINT_RELEARN == 0) /* every so often all candidates again: traffic changes */
			l->prefetch = candidates(l->shm);
		else if (h->hinted)
			l->prefetch = (l->by_flow * 4 >= h->hinted ? SM_HINT_FLOW : 0) |
				      (l->by_src * 4 >= h->hinted ? SM_HINT_SRC : 0);
		l->by_flow = l->by_src = 0;
		want |= l->prefetch;
		if (l->prefetch && (uint64_t)l->shm->nslots * l->shm->slot_size >= SM_HINT_MIN_BYTES)
			pf[npf++] = l;
	}
	h->batches++;
	h->hinted = n;
	if (!want)
		return; /* no lookup of this NF is by the packet's flow or address: hashing them would be waste */
	for (i = 0; i < n; i++) {
		struct sm_hint *x = &hints[i];
		uint64_t w[2];

		if (packet_flow(&pkts[i], w) != 0)
			continue;
		memcpy(&x->flow, w, sizeof(w));
		x->ok = 1;
		x->has_flow = (want & SM_HINT_FLOW) != 0;
		x->has_src = (want & SM_HINT_SRC) != 0;
		if (x->has_flow)
			x->h_flow = flow_words_hash(w[0], w[1]);
		if (x->has_src)
			x->h_src = key_hash(&x->flow.src_ip, 4);
		for (k = 0; k < npf; k++) {
			if (pf[k]->prefetch & SM_HINT_FLOW)
				prefetch_slot(pf[k]->shm, x->h_flow);
			if (pf[k]->prefetch & SM_HINT_SRC)
				prefetch_slot(pf[k]->shm, x->h_src);
		}
	}
}

static int shm_put_state(sp_table *lt, const void *key, const void *value)
{
	struct sm_table_shm *t = as_local(lt)->shm;
	uint8_t *s, *dst;

	if (g_phase == PHASE_ATTACH)
		return 0; /* init re-run in a runtime process: deployment already wrote this state */
	if ((t->flags & SP_READ) && g_phase != PHASE_DEPLOY) {
		sm_error("nf %s: put_state on read-only table '%s' outside init", g_nf, t->name);
		return -EPERM;
	}
	s = slot_insert(t, key, key_hash(key, t->key_size));
	if (!s) {
		sm_error("nf %s: put_state: table '%s' is full (%llu slots)", g_nf, t->name,
			 (unsigned long long)t->nslots);
		return -ENOSPC;
	}
	dst = g_phase == PHASE_DEPLOY ? slot_val(t, s, 0) : value_for_me(t, s);
	if (dst != value) /* Fig. 9 line 22 puts back the value get_state handed out: nothing to copy */
		memcpy(dst, value, t->value_size);
	return 0;
}

static int shm_delete_state(sp_table *lt, const void *key)
{
	struct sm_table_shm *t = as_local(lt)->shm;
	uint8_t *s;

	if (t->flags & SP_GLOBAL) {
		sm_error("nf %s: delete_state on global table '%s' is not allowed (global state cannot be deleted "
			 "while the NF runs)", g_nf, t->name);
		return -EPERM;
	}
	s = slot_find(t, key, key_hash(key, t->key_size));
	if (!s)
		return -ENOENT;
	st_rel(slot_state(s), SLOT_TOMB);
	__atomic_fetch_sub(&t->count, 1, __ATOMIC_RELAXED);
	return 0;
}

/* split/merge/update/trigger on one key, from an NF: pause the other instances around the hook. */
static int hook_on_key(sp_table *ht, const void *key, enum sm_hook_kind k)
{
	struct sm_local *lt = as_local(ht);
	struct sm_region *r = g_region;
	struct sm_table_shm *t = lt->shm;
	uint8_t *s;

	if (!is_global_write(t)) {
		sm_error("nf %s: split/merge/update/trigger on '%s', which is not global|write", g_nf, t->name);
		return -EPERM;
	}
	s = slot_find(t, key, key_hash(key, t->key_size));
	if (!s)
		return -ENOENT;
	if (g_slot >= 0)
		sm_batch_end(r, g_slot); /* the caller re-reads its state after the hook */
	spin_lock(&t->lock);
	sm_pause(r, g_slot);
	run_hook(r, lt, k, s, -1, -1);
	sm_resume_as(r, k);
	spin_unlock(&t->lock);
	if (g_slot >= 0)
		sm_batch_begin(r, g_slot);
	return 0;
}

static int shm_split(sp_table *lt, const void *key) { return hook_on_key(lt, key, SM_HOOK_SPLIT); }
static int shm_merge(sp_table *lt, const void *key) { return hook_on_key(lt, key, SM_HOOK_MERGE); }
static int shm_update(sp_table *lt, const void *key) { return hook_on_key(lt, key, SM_HOOK_UPDATE); }

static int shm_timer(sp_table *ht, const void *key, uint64_t timeout_us)
{
	struct sm_table_shm *t = as_local(ht)->shm;

	if (!is_global_write(t)) {
		sm_error("nf %s: timer on '%s', which is not global|write", g_nf, t->name);
		return -EPERM;
	}
	if (g_phase == PHASE_ATTACH)
		return 0;
	if (timeout_us == 0 || (key && t->key_size > SM_TIMER_KEY_MAX))
		return -EINVAL;
	t->timer_has_key = key != NULL;
	if (key)
		memcpy(t->timer_key, key, t->key_size);
	t->timer_next_us = 0;
	__atomic_store_n(&t->timer_us, timeout_us, __ATOMIC_RELEASE);
	return 0;
}

static const struct sp_state_ops shm_ops = {
	.name = "shm",
	.get_state = shm_get_state,
	.put_state = shm_put_state,
	.delete_state = shm_delete_state,
	.split = shm_split,
	.merge = shm_merge,
	.update = shm_update,
	.trigger = shm_update, /* trigger = update on demand (Fig. 9) */
	.timer = shm_timer,
};

/* ---------------------------------------------------------------------------------------------- */
/* nf.h's entry points: dispatch on the table's backend. The State Manager is tested first and called
 * directly (inlined for get_state), so the serpens backend pays one compare, no indirect call.     */

void sp_state_set_creator(sp_create_fn fn) { g_creator = fn; }
void sm_set_remote_hooks(const struct sm_remote_hooks *h) { g_remote = h; }

sp_table *sp_create_table(const char *name, uint32_t flags, const struct sp_table_opts *o)
{
	return g_creator ? g_creator(name, flags, o) : sm_create_table(name, flags, o);
}

void *sp_get_state(sp_table *t, const void *key)
{
	if (__builtin_expect(t->ops == &shm_ops, 1))
		return shm_get_state(t, key);
	return t->ops->get_state(t, key);
}

int sp_put_state(sp_table *t, const void *key, const void *value)
{
	if (__builtin_expect(t->ops == &shm_ops, 1))
		return shm_put_state(t, key, value);
	return t->ops->put_state(t, key, value);
}

int sp_delete_state(sp_table *t, const void *key) { return t->ops->delete_state(t, key); }
int sp_split(sp_table *t, const void *key) { return t->ops->split(t, key); }
int sp_merge(sp_table *t, const void *key) { return t->ops->merge(t, key); }
int sp_update(sp_table *t, const void *key) { return t->ops->update(t, key); }
int sp_trigger(sp_table *t, const void *key) { return t->ops->trigger(t, key); }
int sp_timer(sp_table *t, const void *key, uint64_t timeout_us) { return t->ops->timer(t, key, timeout_us); }

bool sm_phase_deploy(void) { return g_phase == PHASE_DEPLOY; }
bool sm_phase_attach(void) { return g_phase == PHASE_ATTACH; }
const char *sm_nf_name(void) { return g_nf; }

/* ---------------------------------------------------------------------------------------------- */
/* periodic work                                                                                  */

void sm_run_timers(struct sm_region *r, uint64_t now_us)
{
	/* r's own handles, not the current region's: serpensd's data plane runs the timers of every tenant's
	 * region while its control thread may have selected another for a deployment */
	struct sm_local *local = local_find(r);
	unsigned int i, n = ld_acq(&r->ntables);

	for (i = 0; local && i < n; i++) {
		struct sm_local *lt = &local[i];
		struct sm_table_shm *t = &r->tables[i];
		uint8_t *s = NULL;

		if (!t->timer_us || !lt->shm || t->remote || now_us < t->timer_next_us)
			continue;
		t->timer_next_us = now_us + t->timer_us;
		if (t->timer_has_key) {
			struct sm_table_shm view, *v = table_view(r, t, &view);

			s = v && v->key_size <= SM_TIMER_KEY_MAX ? slot_find(v, view.timer_key, key_hash(view.timer_key, v->key_size))
								  : NULL;
			if (!s)
				continue;
		}
		spin_lock(&t->lock);
		sm_pause(r, -1);
		run_hook(r, lt, SM_HOOK_UPDATE, s, -1, -1);
		sm_resume_as(r, SM_HOOK_UPDATE);
		spin_unlock(&t->lock);
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* inspection                                                                                     */

unsigned int sm_table_count(const struct sm_region *r) { return ld_acq(&r->ntables); }

bool sm_tables_hooked(unsigned int first, unsigned int end)
{
	unsigned int i;

	for (i = first; i < end && i < SM_MAX_TABLES; i++)
		if (g_local[i].shm && (g_local[i].split || g_local[i].merge || g_local[i].update))
			return true;
	return false;
}

int sm_adopt_tables(struct sm_region *r, unsigned int first, unsigned int end, const char *tenant, char *err,
		   size_t errlen)
{
	struct sm_local *local = local_of(r);
	unsigned int i;

	if (!local || first > end || end > SM_MAX_TABLES) {
		snprintf(err, errlen, "the state region's table directory is not what deployment left (%u..%u)",
			 first, end);
		return -1;
	}
	for (i = first; i < end; i++) {
		struct sm_table_shm *t = &r->tables[i];

		/* written by tenant code's process: checked before this process ever follows a pointer in it */
		if (!memchr(t->name, 0, sizeof(t->name)) || !memchr(t->tenant, 0, sizeof(t->tenant)) ||
		    strcmp(t->tenant, tenant) != 0) {
			snprintf(err, errlen, "table %u of tenant %s's region: bad name or tenant", i, tenant);
			return -1;
		}
		if (t->remote)
			continue; /* no slots here: the remote backend keeps its own handle (rs_table_adopt) */
		if (!geometry_fits(r, t)) { /* and again at every use: table_view */
			snprintf(err, errlen, "table %s: its slots are not inside tenant %s's region", t->name, tenant);
			return -1;
		}
		local[i] = (struct sm_local){.hdr.ops = &shm_ops, .shm = t}; /* the default hooks */
	}
	return 0;
}

const char *sm_table_name(const struct sm_region *r, unsigned int i) { return r->tables[i].name; }
const char *sm_table_tenant(const struct sm_region *r, unsigned int i) { return r->tables[i].tenant; }
uint64_t sm_errors(const struct sm_region *r) { return __atomic_load_n(&r->errors, __ATOMIC_RELAXED); }
uint64_t sm_last_error_ns(const struct sm_region *r) { return __atomic_load_n(&r->last_error_ns, __ATOMIC_ACQUIRE); }
const char *sm_last_error(const struct sm_region *r) { return r->last_error; }

int sm_table_info(struct sm_region *r, const char *table, uint32_t *flags, uint32_t *key_size,
		  uint32_t *value_size, uint64_t *count)
{
	struct sm_table_shm *t = find_table(r, table, NULL);
	int64_t n;

	if (!t)
		return -ENOENT;
	*flags = t->flags;
	*key_size = t->key_size;
	*value_size = t->value_size;
	if (t->remote) {
		n = g_remote && g_remote->count ? g_remote->count(t->name, t->flags, t->key_size) : -1;
		*count = n < 0 ? 0 : (uint64_t)n;
	} else {
		*count = __atomic_load_n(&t->count, __ATOMIC_RELAXED);
	}
	return 0;
}

bool sm_table_is_remote(struct sm_region *r, const char *table)
{
	struct sm_table_shm *t = find_table(r, table, NULL);

	return t && t->remote;
}

/* The merged view of one slot: base plus replicas (eventual), base plus sub-states' free counts folded
 * into one pool header (release: nfree = total free, items not concatenated), the value otherwise. */
static void merged_value(struct sm_region *r, struct sm_table_shm *t, uint8_t *s, void *out)
{
	unsigned int i;

	memcpy(out, slot_val(t, s, 0), t->value_size);
	if (!is_global_write(t))
		return;
	for (i = 0; i + 1 < t->nvals; i++) {
		if (!ld_acq(&r->active[i]))
			continue;
		if (t->flags & SP_EVENTUAL) {
			uint64_t *o = out, *v = (uint64_t *)slot_val(t, s, 1 + i);
			uint32_t k;

			for (k = 0; k < t->value_size / 8; k++)
				o[k] += v[k];
		} else if (t->value_size >= sizeof(struct sp_pool)) {
			((struct sp_pool *)out)->nfree += ((struct sp_pool *)slot_val(t, s, 1 + i))->nfree;
		}
	}
}

int sm_table_lookup(struct sm_region *r, const char *table, const void *key, uint32_t key_size,
		    void *value_out, uint32_t value_size)
{
	struct sm_table_shm view, *t = find_table(r, table, NULL);
	uint8_t *s;

	if (!t)
		return -ENOENT;
	if (!(t = table_view(r, t, &view)))
		return -EIO;
	if (key_size != t->key_size || value_size < t->value_size)
		return -EINVAL;
	if (t->remote)
		return g_remote && g_remote->lookup ? g_remote->lookup(t->name, t->flags, key, key_size, value_out,
									t->value_size)
						    : -ENOTSUP;
	s = slot_find(t, key, key_hash(key, t->key_size));
	if (!s)
		return -ENOENT;
	merged_value(r, t, s, value_out);
	return 0;
}

int sm_table_foreach(struct sm_region *r, const char *table,
		     void (*fn)(const void *key, const void *value, void *ctx), void *ctx)
{
	struct sm_table_shm view, *t = find_table(r, table, NULL);
	uint8_t *buf;
	uint64_t i;

	if (!t)
		return -ENOENT;
	if (!(t = table_view(r, t, &view)))
		return -EIO;
	if (t->remote)
		return g_remote && g_remote->foreach ? g_remote->foreach(t->name, t->flags, t->key_size,
									 t->value_size, fn, ctx)
						     : -ENOTSUP;
	buf = malloc(t->value_size);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < live_count(t); i++) {
		uint32_t li = __atomic_load_n(&t->live[i], __ATOMIC_RELAXED);
		uint8_t *s;

		if (li >= t->nslots)
			continue;
		s = slot_at(t, li);
		if (ld_acq(slot_state(s)) != SLOT_FULL)
			continue;
		merged_value(r, t, s, buf);
		fn(slot_key(s), buf, ctx);
	}
	free(buf);
	return 0;
}

/* The base value of a key of a global|write table, for moving a release pool's share between servers
 * (state_transfer.c): NULL if the table or key does not exist or the table is not global|write in shared
 * memory. The caller holds the pause (sm_pause) while it changes the value. */
void *sm_base_value(struct sm_region *r, const char *table, const void *key, uint32_t key_size,
		    uint32_t *flags, uint32_t *value_size)
{
	struct sm_table_shm view, *t = find_table(r, table, NULL);
	uint8_t *s;

	if (t)
		t = table_view(r, t, &view);
	if (!t || t->remote || !is_global_write(t) || key_size != t->key_size)
		return NULL;
	s = slot_find(t, key, key_hash(key, t->key_size));
	if (!s)
		return NULL;
	*flags = t->flags;
	*value_size = t->value_size;
	return slot_val(t, s, 0);
}
