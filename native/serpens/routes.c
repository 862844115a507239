/*
 * routes.c: how the control thread changes what serpensd's data plane sees. It builds a new routing
 * table (per SFC, the 5-tuple hash buckets over its ready instances), publishes it with one atomic
 * pointer store, and waits for a grace period before freeing the old one; every caller that reuses an
 * instance slot, and every move of flows (scaling/scale_control.c), relies on that wait. Separate
 * because it is the one point where the control thread and the data plane meet (serpensd.h: struct
 * route_table, dp_epoch).
 *
 * With consolidated chaining each bucket has an owner that stays until a move changes it, so starting
 * or stopping an instance moves only the buckets the scaling protocol moves; a bucket whose owner is no
 * longer ready (a crash) is dealt to the SFC's ready instances in turn. The proxy chainings pick
 * instances themselves and keep the plain spread (bucket i to the i-th ready instance, modulo).
 */
#include <stdlib.h>
#include <string.h>

#include <rte_pause.h>

#include "control_int.h"

/* The data plane ends a loop pass within a microsecond or two when it is running; it can also be handing
 * a batch to an instance (hand-off: it waits for that batch), or be preempted. So: poll for GRACE_SPIN_NS
 * first, then sleep in 20 µs steps. Sleeping at once cost every start 50-65 µs of routes_us, where the
 * wait itself is a few µs (docs/startup.md, "What remains"). */
#define GRACE_SPIN_NS 20000ull

static void grace_period(void)
{
	uint64_t e = __atomic_load_n(&D->dp_epoch, __ATOMIC_ACQUIRE), t0 = mono_ns();

	if (!__atomic_load_n(&D->dp_running, __ATOMIC_ACQUIRE))
		return; /* no data plane reading the table (start-up, shut-down) */
	while (__atomic_load_n(&D->dp_epoch, __ATOMIC_ACQUIRE) < e + 2 && mono_ns() - t0 < GRACE_SPIN_NS)
		rte_pause();
	while (__atomic_load_n(&D->dp_epoch, __ATOMIC_ACQUIRE) < e + 2 && mono_ns() - t0 < 1000000000ull)
		sleep_us(20);
}

static int8_t owner[SP_MAX_SFCS][RT_BUCKETS];
static bool owner_init;
/* --pin-flows: the generation of the flows pinned to each slot in each bucket (serpensd.h) */
static uint8_t pin_gen[SP_MAX_SFCS][RT_BUCKETS][SM_MAX_INSTANCES];

int route_owner_get(int sfc, int bucket) { return owner_init ? owner[sfc][bucket] : -1; }

void route_owner_set(int sfc, const uint64_t *mask, int slot)
{
	unsigned int b;

	for (b = 0; b < RT_BUCKETS; b++)
		if ((mask[b / 64] >> (b % 64)) & 1)
			owner[sfc][b] = (int8_t)slot;
}

void route_unpin(int sfc, const uint64_t *mask, int slot)
{
	unsigned int b;

	for (b = 0; b < RT_BUCKETS; b++)
		if (slot >= 0 && slot < SM_MAX_INSTANCES && ((mask[b / 64] >> (b % 64)) & 1))
			pin_gen[sfc][b][slot]++;
}

/* Consolidated chaining: keep each bucket's owner; deal the orphaned ones out. */
static void owned_buckets(struct serpensd *d, unsigned int s, const int *slots, unsigned int n, int8_t *out)
{
	unsigned int b, next = 0;

	for (b = 0; b < RT_BUCKETS; b++) {
		int o = owner[s][b];

		if (o != RT_DIVERT && (o < 0 || d->ctl->inst[o].state != INST_READY || d->ctl->inst[o].sfc != (int32_t)s))
			owner[s][b] = (int8_t)(n ? slots[next++ % n] : -1);
		out[b] = owner[s][b];
	}
}

void control_publish_routes(struct serpensd *d)
{
	struct route_table *rt = calloc(1, sizeof(*rt)), *old;
	unsigned int s, i, b, n;
	int slots[SM_MAX_INSTANCES];

	if (!rt)
		return;
	if (!owner_init) {
		memset(owner, -1, sizeof(owner));
		owner_init = true;
	}
	for (s = 0; s < SP_MAX_SFCS; s++) {
		if (!d->ctl->sfcs[s].used)
			continue;
		rt->sfc_id[rt->nsfc] = s;
		rt->match[rt->nsfc] = d->ctl->sfcs[s].match;
		for (i = 0, n = 0; i < SM_MAX_INSTANCES; i++)
			if (d->ctl->inst[i].state == INST_READY && d->ctl->inst[i].sfc == (int32_t)s)
				slots[n++] = (int)i;
		if (d->delivery->per_nf)
			for (b = 0; b < RT_BUCKETS; b++)
				rt->bucket[rt->nsfc][b] = (int8_t)(n ? slots[b % n] : -1);
		else
			owned_buckets(d, s, slots, n, rt->bucket[rt->nsfc]);
		rt->ninst[rt->nsfc] = (uint8_t)n;
		rt->nsfc++;
	}
	if (d->pin_flows) {
		rt->pin_gen = malloc(sizeof(pin_gen));
		if (rt->pin_gen)
			memcpy(rt->pin_gen, pin_gen, sizeof(pin_gen));
	}
	old = __atomic_exchange_n(&d->route, rt, __ATOMIC_ACQ_REL);
	grace_period();
	if (old)
		free(old->pin_gen);
	free(old);
	/* the proxy chainings pick instances themselves: a new generation makes them rebuild their view */
	__atomic_fetch_add(&d->ctl->delivery.gen, 1, __ATOMIC_SEQ_CST);
	if (d->delivery->quiesce)
		d->delivery->quiesce(d);
}

