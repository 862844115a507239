/*
 * test_state.c: the State Manager's tables on ordinary memory — flag rules, per-flow state, release
 * pools split/updated/merged across instance slots with no resource handed out twice, eventual counters
 * folded by update, init re-run in a runtime not resetting deployed state, clear errors, and lookups with
 * the Chainer's hints (sm_hint_batch) finding exactly what they find without.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"
#include "state_layout.h"

static int failures;
#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                       \
		}                                                                         \
	} while (0)

#define POOL_ITEMS 100u
static sp_table *pool_t, *cnt_t, *flow_t;
static const uint32_t cluster = 7;

static int fake_init(void)
{
	struct sp_table_opts pool_o = {.key_size = 4, .value_size = SP_POOL_SIZE(POOL_ITEMS), .capacity = 4};
	struct sp_table_opts cnt_o = {.key_size = 4, .value_size = 16, .capacity = 64};
	struct sp_table_opts flow_o = {.key_size = sizeof(struct sp_flow), .value_size = 8, .capacity = 8};
	uint8_t buf[SP_POOL_SIZE(POOL_ITEMS)];
	struct sp_pool *p = (struct sp_pool *)buf;
	uint32_t i;

	pool_t = sp_create_table("pool", SP_GLOBAL | SP_WRITE | SP_RELEASE, &pool_o);
	cnt_t = sp_create_table("hosts", SP_GLOBAL | SP_WRITE | SP_EVENTUAL, &cnt_o);
	flow_t = sp_create_table("flows", SP_PER_FLOW | SP_WRITE, &flow_o);
	if (!pool_t || !cnt_t || !flow_t)
		return -1;
	p->cap = POOL_ITEMS;
	p->nfree = POOL_ITEMS;
	for (i = 0; i < POOL_ITEMS; i++)
		p->item[i] = 1000 + i;
	return sp_put_state(pool_t, &cluster, p);
}

static const struct sp_nf fake = {.name = "fake", .init = fake_init, .handler = NULL};

static void test_flags(void)
{
	struct sp_table_opts o = {.key_size = 4, .value_size = 4, .capacity = 4};

	CHECK(sp_create_table("a", SP_PER_FLOW | SP_GLOBAL | SP_READ, &o) == NULL);
	CHECK(sp_create_table("b", SP_PER_FLOW | SP_READ | SP_WRITE, &o) == NULL);
	CHECK(sp_create_table("c", SP_PER_FLOW | SP_WRITE | SP_RELEASE, &o) == NULL);
	CHECK(sp_create_table("d", SP_GLOBAL | SP_WRITE, &o) == NULL);
	CHECK(sp_create_table("e", SP_GLOBAL | SP_WRITE | SP_RELEASE | SP_EVENTUAL, &o) == NULL);
	CHECK(sp_create_table("f", SP_GLOBAL | SP_READ | SP_EVENTUAL, &o) == NULL);
	CHECK(sp_create_table("g", SP_PER_FLOW | SP_READ, &o) != NULL);
	CHECK(sp_create_table("h", SP_GLOBAL | SP_READ, &o) != NULL);
	CHECK(strstr(sm_last_error(sm_get_region()), "not a combination") == NULL ||
	      sm_errors(sm_get_region()) >= 6);
}

static uint32_t take_all(int slot, uint32_t *out, uint32_t max)
{
	struct sp_pool *p;
	uint32_t n = 0, v;

	sm_set_instance(slot);
	p = sp_get_state(pool_t, &cluster);
	while (p && n < max && sp_pool_take(p, &v) == 0)
		out[n++] = v;
	return n;
}

static void test_release_pool(struct sm_region *r)
{
	uint32_t seen[POOL_ITEMS * 2], n = 0, i, j, a, b;
	struct sp_pool *pa, *pb;
	uint8_t merged[SP_POOL_SIZE(POOL_ITEMS)];

	a = (uint32_t)sm_instance_claim(r);
	sm_set_instance((int)a);
	pa = sp_get_state(pool_t, &cluster);
	CHECK(pa && pa->nfree == POOL_ITEMS); /* the first instance gets the whole pool */
	b = (uint32_t)sm_instance_claim(r);
	sm_set_instance((int)b);
	pb = sp_get_state(pool_t, &cluster);
	CHECK(pb && pa->nfree == POOL_ITEMS / 2 && pb->nfree == POOL_ITEMS / 2); /* split in two */

	/* instance a exhausts its sub-pool, triggers, gets half of what b has left */
	sm_batch_begin(r, (int)a);
	n += take_all((int)a, seen + n, POOL_ITEMS);
	CHECK(n == POOL_ITEMS / 2);
	sm_set_instance((int)b);
	n += take_all((int)b, seen + n, 10);
	sm_set_instance((int)a);
	CHECK(sp_trigger(pool_t, &cluster) == 0);
	sm_batch_end(r, (int)a);
	CHECK(pa->nfree == 20 && pb->nfree == 20);
	n += take_all((int)a, seen + n, POOL_ITEMS);
	n += take_all((int)b, seen + n, POOL_ITEMS);
	CHECK(n == POOL_ITEMS);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			CHECK(seen[i] != seen[j]); /* no resource handed out twice */

	/* give some back to b, scale in b: its free resources go to a */
	sm_set_instance((int)b);
	CHECK(sp_pool_give(pb, seen[0]) == 0 && sp_pool_give(pb, seen[1]) == 0);
	sm_instance_release(r, (int)b);
	CHECK(pa->nfree == 2 && pb->nfree == 0); /* straight from b's share to a's, nothing left behind */
	CHECK((pa->item[0] == seen[0] && pa->item[1] == seen[1]) || (pa->item[0] == seen[1] && pa->item[1] == seen[0]));
	CHECK(sm_table_lookup(r, "fake/pool", &cluster, 4, merged, sizeof(merged)) == 0);
	CHECK(((struct sp_pool *)merged)->nfree == 2);
	/* scale to zero: everything returns to the base, and a new instance gets it all */
	sm_instance_release(r, (int)a);
	a = (uint32_t)sm_instance_claim(r);
	sm_set_instance((int)a);
	pa = sp_get_state(pool_t, &cluster);
	CHECK(pa && pa->nfree == 2);
	sm_instance_release(r, (int)a);
}

/* Scale in the middle one of three: its share goes straight to the two that stay, equally, and every
 * item is still held exactly once. */
static void test_release_leaves_to_many(struct sm_region *r)
{
	struct sp_pool *p[3];
	bool held[1u << 16] = {false};
	uint32_t i, k, total = 0;
	int s[3];

	for (k = 0; k < 3; k++) {
		s[k] = sm_instance_claim(r);
		sm_set_instance(s[k]);
		p[k] = sp_get_state(pool_t, &cluster);
		CHECK(p[k] != NULL);
	}
	/* what the earlier test left in the pool, plus 30 items the middle one gives back */
	sm_set_instance(s[1]);
	for (i = 0; i < 30; i++)
		CHECK(sp_pool_give(p[1], 1000 + i) == 0);
	total = p[0]->nfree + p[1]->nfree + p[2]->nfree;
	CHECK(total >= 30);
	sm_instance_release(r, s[1]);
	CHECK(p[1]->nfree == 0);
	CHECK(p[0]->nfree + p[2]->nfree == total);
	CHECK(p[0]->nfree - p[2]->nfree <= 1 || p[2]->nfree - p[0]->nfree <= 1);
	total = 0;
	for (k = 0; k < 3; k += 2)
		for (i = 0; i < p[k]->nfree; i++) {
			CHECK(p[k]->item[i] < (1u << 16) && !held[p[k]->item[i]]);
			held[p[k]->item[i] & 0xffff] = true;
			total++;
		}
	CHECK(total == p[0]->nfree + p[2]->nfree);
	sm_instance_release(r, s[0]);
	sm_instance_release(r, s[2]);
}

static void test_eventual_counters(struct sm_region *r)
{
	uint32_t host = 0x10000001;
	uint64_t one[2] = {1, 64}, merged[2];
	int a = sm_instance_claim(r), b = sm_instance_claim(r), i;

	for (i = 0; i < 5; i++) {
		uint64_t *v;

		sm_set_instance(a);
		if (!(v = sp_get_state(cnt_t, &host))) {
			CHECK(sp_put_state(cnt_t, &host, one) == 0);
		} else {
			v[0] += 1;
			v[1] += 64;
		}
		sm_set_instance(b);
		v = sp_get_state(cnt_t, &host);
		if (!v)
			CHECK(sp_put_state(cnt_t, &host, one) == 0);
		else {
			v[0] += 1;
			v[1] += 64;
		}
	}
	CHECK(sm_table_lookup(r, "fake/hosts", &host, 4, merged, sizeof(merged)) == 0);
	CHECK(merged[0] == 10 && merged[1] == 640);
	sm_set_instance(-1);
	CHECK(sp_timer(cnt_t, NULL, 1000) == 0);
	sm_run_timers(r, 5000); /* update: replicas folded into the base */
	CHECK(sm_table_lookup(r, "fake/hosts", &host, 4, merged, sizeof(merged)) == 0);
	CHECK(merged[0] == 10 && merged[1] == 640);
	sm_set_instance(a);
	CHECK(((uint64_t *)sp_get_state(cnt_t, &host))[0] == 0);
	sm_instance_release(r, a);
	sm_instance_release(r, b);
	CHECK(sm_table_lookup(r, "fake/hosts", &host, 4, merged, sizeof(merged)) == 0);
	CHECK(merged[0] == 10);
}

static void test_per_flow_and_errors(struct sm_region *r)
{
	struct sp_flow f = {.src_ip = 1, .dst_ip = 2, .src_port = 3, .dst_port = 4, .proto = 17};
	uint64_t v = 42, *got;
	uint64_t errs = sm_errors(r);
	int a = sm_instance_claim(r);

	sm_set_instance(a);
	CHECK(sp_get_state(flow_t, &f) == NULL);
	CHECK(sp_put_state(flow_t, &f, &v) == 0);
	got = sp_get_state(flow_t, &f);
	CHECK(got && *got == 42);
	CHECK(sp_delete_state(flow_t, &f) == 0);
	CHECK(sp_get_state(flow_t, &f) == NULL);
	CHECK(sp_delete_state(pool_t, &cluster) == -EPERM);
	CHECK(sm_errors(r) == errs + 1 && strstr(sm_last_error(r), "delete_state on global table") != NULL);
	for (v = 0; v < 1000 && sp_put_state(flow_t, &v, &v) == 0; v++) /* key bytes: first 8 of a flow */
		;
	CHECK(v < 1000); /* a full table says so instead of growing */
	sm_instance_release(r, a);
}


/* Hints: an NF with a flow table and an address table, both large enough to be prefetched. Over many
 * batches (the learning, and its relearning rounds) every lookup with a hint returns what it returns
 * without one: the packet's flow, its source address, a key that only differs in the pad, a key that
 * is not the packet's, and frames that are not IPv4. */
#define HINT_FLOWS 512u
static sp_table *hflow_t, *haddr_t;

static int hinted_init(void)
{
	struct sp_table_opts fo = {.key_size = sizeof(struct sp_flow), .value_size = 16, .capacity = 4096};
	struct sp_table_opts ao = {.key_size = 4, .value_size = 16, .capacity = 4096};

	hflow_t = sp_create_table("flows", SP_PER_FLOW | SP_WRITE, &fo);
	haddr_t = sp_create_table("hosts", SP_GLOBAL | SP_WRITE | SP_EVENTUAL, &ao);
	return hflow_t && haddr_t ? 0 : -1;
}

static const struct sp_nf hinted = {.name = "hinted", .init = hinted_init, .handler = NULL};

static void frame(uint8_t *d, uint32_t i)
{
	uint32_t src = 0x10000001u + i, dst = 0x30000001u; /* the bytes are what matters, not the order */
	uint16_t sport = (uint16_t)(1025 + i % 7), dport = 12;

	memset(d, 0, 64);
	d[12] = 0x08;
	d[14] = 0x45;
	d[23] = i % 3 ? SP_PROTO_UDP : SP_PROTO_TCP;
	memcpy(d + 26, &src, 4);
	memcpy(d + 30, &dst, 4);
	memcpy(d + 34, &sport, 2);
	memcpy(d + 36, &dport, 2);
}

static void test_hints(struct sm_region *r)
{
	static const char *name = "hinted"; /* the Chainer passes the deployment's name by one pointer */
	uint8_t data[32][64];
	struct sp_pkt pkts[32];
	struct sm_hint hints[32];
	uint32_t batch, i, misses = 0;
	int slot;

	sm_set_nf(name, NULL);
	sm_set_phase_deploy(true);
	CHECK(sm_nf_init(&hinted) == 0);
	sm_set_phase_deploy(false);
	slot = sm_instance_claim(r);
	sm_set_instance(slot);
	CHECK(sm_nf_init(&hinted) == 0);
	for (batch = 0; batch < 200; batch++) {
		for (i = 0; i < 32; i++) {
			frame(data[i], (batch * 32 + i) % HINT_FLOWS);
			pkts[i] = (struct sp_pkt){.data = data[i], .len = i == 5 ? 20 : 64}; /* one is no IPv4 */
		}
		if (batch % 50 == 49)
			data[7][12] = 0x86; /* IPv6: no flow */
		sm_hint_batch(name, pkts, hints, 32);
		for (i = 0; i < 32; i++) {
			struct sp_flow f, other;
			uint64_t *with, *without, one[2] = {1, 64};
			int ok = sp_flow_of(&pkts[i], &f) == 0;

			CHECK(hints[i].ok == ok);
			if (!ok)
				continue;
			other = f;
			other.pad[1] = 1; /* a different key that differs in the pad only */
			sm_hint_cur = NULL;
			without = sp_get_state(hflow_t, &f);
			if (!without) {
				misses++;
				CHECK(sp_put_state(hflow_t, &f, one) == 0);
				CHECK(sp_put_state(haddr_t, &f.src_ip, one) == 0);
				without = sp_get_state(hflow_t, &f);
			}
			sm_hint_cur = &hints[i];
			with = sp_get_state(hflow_t, &f);
			CHECK(with != NULL && with == without);
			CHECK(sp_get_state(hflow_t, &other) == NULL);
			CHECK(sp_get_state(haddr_t, &f.src_ip) != NULL);
			CHECK(sp_get_state(haddr_t, &f.dst_ip) == NULL);
			with[0]++;
			sm_hint_cur = NULL;
			CHECK(sp_get_state(haddr_t, &f.src_ip) == sp_get_state(haddr_t, &f.src_ip));
		}
		sm_hint_cur = NULL;
	}
	CHECK(misses == HINT_FLOWS - HINT_FLOWS / 32); /* flow k is always packet k % 32; packet 5 is no IPv4 */
	sm_instance_release(r, slot);
	sm_set_instance(-1);
	sm_set_nf("fake", NULL);
}

/* Tables are per tenant: the name carries the tenant (but for "default"), and create_table of a table
 * another tenant created is refused even where the names meet (a default-tenant NF named "alice:nat"). */
static void test_tenants(struct sm_region *r)
{
	struct sp_table_opts o = {.key_size = 4, .value_size = 4, .capacity = 4};
	uint64_t errs;
	uint32_t k = 1, v = 7, fl, ks, vs;
	uint64_t n;
	sp_table *t;

	CHECK(sm_set_tenant("bad:name") == -EINVAL && sm_set_tenant("") == -EINVAL);
	CHECK(sm_set_tenant("alice") == 0);
	sm_set_nf("nat", NULL);
	sm_set_phase_deploy(true);
	t = sp_create_table("map", SP_PER_FLOW | SP_WRITE, &o);
	CHECK(t != NULL && sm_table_info(r, "alice:nat/map", &fl, &ks, &vs, &n) == 0);
	CHECK(sp_put_state(t, &k, &v) == 0);
	/* the same NF name for another tenant is another table */
	CHECK(sm_set_tenant("mallory") == 0);
	CHECK(sp_create_table("map", SP_PER_FLOW | SP_WRITE, &o) != t);
	CHECK(sm_table_info(r, "mallory:nat/map", &fl, &ks, &vs, &n) == 0);
	/* a name that meets alice's table is refused, counted and explained, in deploy and attach mode */
	CHECK(sm_set_tenant(SM_DEFAULT_TENANT) == 0);
	sm_set_nf("alice:nat", NULL);
	errs = sm_errors(r);
	CHECK(sp_create_table("map", SP_PER_FLOW | SP_WRITE, &o) == NULL && errno == EACCES);
	sm_set_phase_deploy(false);
	CHECK(sp_create_table("map", SP_PER_FLOW | SP_WRITE, &o) == NULL && errno == EACCES);
	CHECK(sm_errors(r) == errs + 2 && strstr(sm_last_error(r), "belongs to tenant alice") != NULL);
	sm_set_phase_deploy(true);
	sm_set_nf("fake", NULL);
}

/* Two regions in one process (serpensd holds one per tenant): each keeps its own table handles, although
 * their directory indexes meet; an instance slot claimed in one splits only that region's tables, with that
 * region's hooks, and the timers of a region that is not the current one run with its own hooks. */
static unsigned int b_splits, b_updates;
static void b_split(void *base, void **vals, unsigned int n, uint32_t vsize)
{
	(void)base, (void)vals, (void)n, (void)vsize;
	b_splits++;
}
static void b_update(void *base, void **vals, unsigned int n, uint32_t vsize)
{
	(void)base, (void)vals, (void)n, (void)vsize;
	b_updates++;
}

static void test_two_regions(struct sm_region *a)
{
	size_t size = 8u << 20;
	void *mem = aligned_alloc(64, size);
	struct sp_table_opts o = {.key_size = 4, .value_size = 8, .capacity = 4, .split = b_split,
				  .update = b_update};
	uint64_t v = 5, one = 1;
	uint32_t k = 3;
	unsigned int a_tables = sm_table_count(a), splits;
	struct sm_region *b;
	sp_table *tb;
	int slot;

	memset(mem, 0, size);
	b = sm_region_create(mem, size);
	CHECK(b != NULL && sm_set_region(b) == 0);
	sm_set_nf("other", NULL);
	sm_set_phase_deploy(true);
	tb = sp_create_table("g", SP_GLOBAL | SP_WRITE | SP_EVENTUAL, &o);
	CHECK(tb != NULL && sm_table_count(b) == 1 && sm_table_count(a) == a_tables);
	CHECK(tb != pool_t && sp_put_state(tb, &k, &v) == 0);
	CHECK(sp_timer(tb, NULL, 1) == 0);
	/* back in a: its handles are untouched, b's table is not in its directory */
	CHECK(sm_set_region(a) == 0);
	CHECK(sm_table_info(a, "other/g", &(uint32_t){0}, &(uint32_t){0}, &(uint32_t){0}, &one) == -ENOENT);
	CHECK(sm_tables_hooked(0, a_tables) == false);
	/* a slot claimed in b runs b's split hook; one claimed in a does not */
	slot = sm_instance_claim(b);
	CHECK(slot >= 0 && b_splits == 1);
	splits = b_splits;
	sm_instance_release(b, slot);
	slot = sm_instance_claim(a);
	CHECK(slot >= 0 && b_splits == splits);
	sm_instance_release(a, slot);
	/* b's timer, run while a is current, runs b's update hook */
	b_updates = 0;
	sm_run_timers(b, 1000);
	CHECK(b_updates == 1);
	CHECK(sm_get_region() == a);
	sm_forget_region(b);
	CHECK(sm_get_region() == a);
	sm_set_nf("fake", NULL);
	free(mem);
}

/* A region made with sm_set_region_slots(n) has n instance slots, no more, and a release pool is dealt out
 * over all of them with no item handed out twice; a region made before keeps its own count. */
static void test_region_slots(struct sm_region *a)
{
	size_t size = 16u << 20;
	void *mem = aligned_alloc(64, size);
	struct sp_table_opts o = {.key_size = 4, .value_size = SP_POOL_SIZE(1000), .capacity = 2};
	uint8_t buf[SP_POOL_SIZE(1000)], seen[1000] = {0};
	struct sp_pool *p = (struct sp_pool *)buf;
	uint32_t k = 1, i, total = 0;
	struct sm_region *b;
	sp_table *t;
	int slot, n;
	bool twice = false;

	CHECK(sm_set_region_slots(0) == -EINVAL && sm_set_region_slots(SM_MAX_INSTANCES + 1) == -EINVAL);
	CHECK(sm_set_region_slots(SM_MAX_INSTANCES) == 0);
	memset(mem, 0, size);
	b = sm_region_create(mem, size);
	CHECK(sm_set_region_slots(SM_DEFAULT_INSTANCES) == 0);
	CHECK(b != NULL && sm_region_slots(b) == SM_MAX_INSTANCES && sm_region_slots(a) == SM_DEFAULT_INSTANCES);
	CHECK(sm_set_region(b) == 0);
	sm_set_nf("many", NULL);
	sm_set_phase_deploy(true);
	sm_set_instance(-1); /* the State Manager: writes go to the base value */
	t = sp_create_table("pool", SP_GLOBAL | SP_WRITE | SP_RELEASE, &o);
	CHECK(t != NULL);
	p->cap = p->nfree = 1000;
	for (i = 0; i < 1000; i++)
		p->item[i] = i;
	CHECK(t && sp_put_state(t, &k, p) == 0);
	sm_set_phase_deploy(false); /* as a runtime: each slot sees its own share */
	for (n = 0; n < SM_MAX_INSTANCES; n++)
		CHECK(sm_instance_claim(b) == n);
	CHECK(sm_instance_claim(b) == -ENOSPC && sm_instance_claim_at(b, SM_MAX_INSTANCES) == -EBUSY);
	CHECK(!sm_instance_active(b, SM_MAX_INSTANCES));
	for (slot = 0; t && slot < SM_MAX_INSTANCES; slot++) { /* each instance's share: 10 items, all distinct */
		const struct sp_pool *q;

		sm_set_instance(slot);
		q = sp_get_state(t, &k);
		CHECK(q != NULL && q->nfree == 10);
		for (i = 0; q && i < q->nfree; i++) {
			twice |= seen[q->item[i]]++ != 0;
			total++;
		}
	}
	CHECK(total == 1000 && !twice);
	sm_set_instance(-1);
	for (n = 0; n < SM_MAX_INSTANCES; n++)
		sm_instance_release(b, n);
	{
		uint8_t merged[SP_POOL_SIZE(1000)];

		CHECK(sm_table_lookup(b, "many/pool", &k, 4, merged, sizeof(merged)) == 0);
		CHECK(((struct sp_pool *)merged)->nfree == 1000); /* all back in the base */
	}
	/* the default region still refuses a 17th slot */
	CHECK(sm_instance_claim_at(a, SM_DEFAULT_INSTANCES) == -EBUSY);
	CHECK(sm_set_region(a) == 0);
	sm_forget_region(b);
	sm_set_nf("fake", NULL);
	sm_set_phase_deploy(false);
	free(mem);
}

/* Tables created by another process (a tenant's deployer: deployer.h) are found by serpensd only once it
 * adopts them from the region: before, a claimed slot splits nothing; after, the release pool is dealt
 * out. An adoption for another tenant is refused. */
static void test_adopt(void)
{
	size_t size = 8u << 20;
	void *mem = aligned_alloc(64, size);
	struct sp_table_opts o = {.key_size = 4, .value_size = SP_POOL_SIZE(8), .capacity = 4};
	uint8_t buf[SP_POOL_SIZE(8)];
	struct sp_pool *p = (struct sp_pool *)buf, *base;
	uint32_t k = 1, flags, vsize, i;
	struct sm_region *prev = sm_get_region(), *c;
	char err[200];
	int slot;

	memset(mem, 0, size);
	c = sm_region_create(mem, size);
	CHECK(c != NULL && sm_set_region(c) == 0);
	sm_set_nf("dep", NULL);
	sm_set_phase_deploy(true);
	sm_set_instance(-1); /* the deployer's: init's writes go to the base */
	p->cap = p->nfree = 8;
	for (i = 0; i < 8; i++)
		p->item[i] = i;
	CHECK(sp_put_state(sp_create_table("pool", SP_GLOBAL | SP_WRITE | SP_RELEASE, &o), &k, p) == 0);
	sm_set_phase_deploy(false);
	sm_forget_region(c); /* what serpensd has of a table another process created: nothing */
	CHECK(sm_set_region(prev) == 0);
	slot = sm_instance_claim(c);
	base = sm_base_value(c, "dep/pool", &k, 4, &flags, &vsize);
	CHECK(slot >= 0 && base && base->nfree == 8);
	sm_instance_release(c, slot);
	CHECK(sm_adopt_tables(c, 0, sm_table_count(c), "mallory", err, sizeof(err)) == -1);
	CHECK(strstr(err, "bad name or tenant") != NULL);
	CHECK(sm_adopt_tables(c, 0, sm_table_count(c) + SM_MAX_TABLES, SM_DEFAULT_TENANT, err, sizeof(err)) == -1);
	CHECK(sm_adopt_tables(c, 0, sm_table_count(c), SM_DEFAULT_TENANT, err, sizeof(err)) == 0);
	slot = sm_instance_claim(c);
	CHECK(slot >= 0 && base->nfree < 8); /* split: items dealt out to the claimed slot */
	sm_instance_release(c, slot);
	CHECK(base->nfree == 8); /* merged back */
	CHECK(sm_get_region() == prev);
	sm_forget_region(c);
	sm_set_nf("fake", NULL);
	free(mem);
}

/* A runtime rewrites its own table's directory entry (its region is writable to it) so that serpensd's
 * next split, merge, timer or dump would write into another tenant's region, or read beyond its own:
 * serpensd works on a checked copy of the entry (table_view), so the victim's region stays byte for byte
 * the same, the bad entry is left alone and counted, and a live index out of range is skipped. */
static uint64_t sum_bytes(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

static void test_hostile_entry(void)
{
	size_t size = 8u << 20;
	uint8_t *vm = aligned_alloc(64, size), *mm = aligned_alloc(64, size);
	struct sp_table_opts po = {.key_size = 4, .value_size = SP_POOL_SIZE(64), .capacity = 4};
	struct sp_table_opts co = {.key_size = 4, .value_size = 16, .capacity = 4};
	uint8_t buf[SP_POOL_SIZE(64)];
	struct sp_pool *p = (struct sp_pool *)buf;
	struct sm_region *prev = sm_get_region(), *v, *m;
	struct sm_table_shm *pool_e = NULL, *cnt_e = NULL;
	uint64_t before, errs, one[2] = {1, 1};
	uint32_t k = 7, i;
	int slot;

	memset(vm, 0, size);
	memset(mm, 0, size);
	v = sm_region_create(vm, size);
	m = sm_region_create(mm, size);
	CHECK(v && m);
	/* the victim: a release pool with items in it */
	CHECK(sm_set_region(v) == 0);
	sm_set_nf("vic", NULL);
	sm_set_phase_deploy(true);
	sm_set_instance(-1);
	p->cap = p->nfree = 64;
	for (i = 0; i < 64; i++)
		p->item[i] = 1000 + i;
	CHECK(sp_put_state(sp_create_table("pool", SP_GLOBAL | SP_WRITE | SP_RELEASE, &po), &k, p) == 0);
	/* the attacker's region: a release pool and eventual counters */
	CHECK(sm_set_region(m) == 0);
	sm_set_nf("mal", NULL);
	CHECK(sp_put_state(sp_create_table("pool", SP_GLOBAL | SP_WRITE | SP_RELEASE, &po), &k, p) == 0);
	CHECK(sp_put_state(sp_create_table("cnt", SP_GLOBAL | SP_WRITE | SP_EVENTUAL, &co), &k, one) == 0);
	sm_set_phase_deploy(false);
	for (i = 0; i < m->ntables; i++) {
		if (!strcmp(m->tables[i].name, "mal/pool"))
			pool_e = &m->tables[i];
		if (!strcmp(m->tables[i].name, "mal/cnt"))
			cnt_e = &m->tables[i];
	}
	CHECK(pool_e && cnt_e);
	before = sum_bytes(vm, size);
	errs = sm_errors(m);
	/* the rewrite: the pool's slots now "are" the victim's heap, the counters' live list says 2^32 keys */
	pool_e->slots = v->heap;
	cnt_e->nlive = 1ull << 32;
	cnt_e->live[0] = 0xffffffffu; /* an index far outside its slots */
	slot = sm_instance_claim(m);  /* split: the pool's hook */
	CHECK(slot >= 0);
	sm_instance_release(m, slot); /* merge: both tables' hooks */
	sm_run_timers(m, 1ull << 62);
	CHECK(sm_table_lookup(m, "mal/pool", &k, 4, buf, sizeof(buf)) == -EIO);
	CHECK(sm_base_value(m, "mal/pool", &k, 4, &i, &i) == NULL);
	CHECK(sum_bytes(vm, size) == before); /* not one byte of the victim's region changed */
	CHECK(sm_errors(m) > errs);           /* the bad entry was noticed */
	/* a sound entry, but a sub-pool's count overwritten: serpensd's split/merge copies by those counts */
	sm_set_region(m);
	sm_set_phase_deploy(true);
	sm_set_instance(-1);
	CHECK(sp_put_state(sp_create_table("pool2", SP_GLOBAL | SP_WRITE | SP_RELEASE, &po), &k, p) == 0);
	sm_set_phase_deploy(false);
	slot = sm_instance_claim(m);
	CHECK(slot >= 0);
	sm_set_instance(slot);
	{
		sp_table *t2 = NULL;
		struct sp_pool *mine;

		sm_set_phase_deploy(true); /* attach to it again, as the runtime's NF init would */
		sm_set_instance(-1);
		t2 = sp_create_table("pool2", SP_GLOBAL | SP_WRITE | SP_RELEASE, &po);
		sm_set_phase_deploy(false);
		sm_set_instance(slot);
		mine = t2 ? sp_get_state(t2, &k) : NULL;
		CHECK(mine != NULL);
		if (mine)
			mine->nfree = 0xfffffff0u;
	}
	errs = sm_errors(m);
	sm_instance_release(m, slot); /* would copy 2^32 items from the sub-pool */
	CHECK(sm_errors(m) > errs);
	CHECK(sum_bytes(vm, size) == before);
	CHECK(sm_set_region(prev) == 0);
	sm_forget_region(v);
	sm_forget_region(m);
	sm_set_nf("fake", NULL);
	free(vm);
	free(mm);
}

int main(void)
{
	size_t size = 64u << 20;
	void *mem = aligned_alloc(64, size); /* struct sm_region is 64-byte aligned */
	struct sm_region *r;
	int slot;

	memset(mem, 0, size);
	r = sm_region_create(mem, size);

	CHECK(r != NULL);
	sm_set_region(r);
	sm_set_nf("fake", NULL);
	sm_set_phase_deploy(true);
	test_flags();
	CHECK(sm_nf_init(&fake) == 0);

	/* a runtime process runs init again: tables attach and the pool is not reset */
	sm_set_phase_deploy(false);
	slot = sm_instance_claim(r);
	sm_set_instance(slot);
	CHECK(sm_nf_init(&fake) == 0);
	CHECK(((struct sp_pool *)sp_get_state(pool_t, &cluster))->nfree == POOL_ITEMS);
	sm_instance_release(r, slot);
	{
		struct sp_table_opts o = {.key_size = 4, .value_size = 4, .capacity = 4};
		CHECK(sp_create_table("never-deployed", SP_GLOBAL | SP_READ, &o) == NULL);
	}

	test_two_regions(r);
	test_region_slots(r);
	test_adopt();
	test_hostile_entry();
	test_tenants(r);
	test_release_pool(r);
	test_release_leaves_to_many(r);
	test_eventual_counters(r);
	test_per_flow_and_errors(r);
	test_hints(r);
	free(mem);
	if (failures)
		fprintf(stderr, "test_state: %d check(s) failed\n", failures);
	else
		printf("test_state: all checks passed\n");
	return failures ? 1 : 0;
}
