/*
 * routes.c: how the control thread changes what serpensd's data plane sees. It builds a new routing
 * table (per SFC, the 5-tuple hash buckets over its ready instances), publishes it with one atomic
 * pointer store, and waits for a grace period before freeing the old one; every caller that reuses an
 * instance slot relies on that wait. Separate because it is the one point where the control thread and
 * the data plane meet (serpensd.h: struct route_table, dp_epoch).
 */
#include <stdlib.h>

#include "control_int.h"

static void grace_period(void)
{
	uint64_t e = __atomic_load_n(&D->dp_epoch, __ATOMIC_ACQUIRE), t0 = mono_ns();

	if (!__atomic_load_n(&D->dp_running, __ATOMIC_ACQUIRE))
		return; /* no data plane reading the table (start-up, shut-down) */
	while (__atomic_load_n(&D->dp_epoch, __ATOMIC_ACQUIRE) < e + 2 && mono_ns() - t0 < 1000000000ull)
		sleep_us(20);
}

void control_publish_routes(struct serpensd *d)
{
	struct route_table *rt = calloc(1, sizeof(*rt)), *old;
	unsigned int s, i, b, n;
	int slots[SM_MAX_INSTANCES];

	if (!rt)
		return;
	for (s = 0; s < SP_MAX_SFCS; s++) {
		if (!d->ctl->sfcs[s].used)
			continue;
		rt->sfc_id[rt->nsfc] = s;
		rt->match[rt->nsfc] = d->ctl->sfcs[s].match;
		for (i = 0, n = 0; i < SM_MAX_INSTANCES; i++)
			if (d->ctl->inst[i].state == INST_READY && d->ctl->inst[i].sfc == (int32_t)s)
				slots[n++] = (int)i;
		for (b = 0; b < RT_BUCKETS; b++)
			rt->bucket[rt->nsfc][b] = (int8_t)(n ? slots[b % n] : -1);
		rt->ninst[rt->nsfc] = (uint8_t)n;
		rt->nsfc++;
	}
	old = __atomic_exchange_n(&d->route, rt, __ATOMIC_ACQ_REL);
	grace_period();
	free(old);
	/* the proxy chainings pick instances themselves: a new generation makes them rebuild their view */
	__atomic_fetch_add(&d->ctl->delivery.gen, 1, __ATOMIC_SEQ_CST);
	if (d->delivery->quiesce)
		d->delivery->quiesce(d);
}

