/*
 * scale_msg.c: the scaling protocols' message pool, inboxes and packet rings (scale_msg.h). serpensd
 * creates them at start-up whatever --scaling says is cheap to skip: only a protocol that moves state
 * (not `shared`) makes it create them.
 */
#include "scale_msg.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#include "ctl.h"

static struct sp_ctl *C;
static struct rte_mempool *pool;
static struct rte_ring *inbox[SC_NINBOX];
static struct rte_ring *pkt_ring[SM_MAX_INSTANCES];
static struct rte_ring *divert;

static void ring_name(char *buf, size_t len, const char *kind, int i)
{
	snprintf(buf, len, "sp_sc%s%d", kind, i);
}

/* Rings exist for the slots serpensd may use (--max-instances) and the two inboxes past every slot: a slot
 * beyond them never holds an instance (512 KiB of hugepages per packet ring saved for each). */
static bool slot_used(int box)
{
	return box >= SM_MAX_INSTANCES || box < (int)C->max_instances;
}

int sc_msg_create(struct sp_ctl *ctl)
{
	char name[RTE_RING_NAMESIZE];
	int i;

	C = ctl;
	ctl->scaling.msg_size = SC_MSG_BUF;
	pool = rte_mempool_create(SC_MSG_POOL, SC_MSG_COUNT, SC_MSG_BUF, 0, 0, NULL, NULL, NULL, NULL,
				  (int)rte_socket_id(), 0);
	if (!pool) {
		fprintf(stderr, "serpensd: scaling: cannot create the message pool: %s\n", rte_strerror(rte_errno));
		return -1;
	}
	for (i = 0; i < SC_NINBOX; i++) {
		if (!slot_used(i))
			continue;
		ring_name(name, sizeof(name), "in", i);
		inbox[i] = rte_ring_create(name, 4096, (int)rte_socket_id(), RING_F_SC_DEQ);
		if (!inbox[i])
			goto fail;
	}
	for (i = 0; i < (int)ctl->max_instances; i++) {
		ring_name(name, sizeof(name), "pk", i);
		pkt_ring[i] = rte_ring_create(name, 65536, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (!pkt_ring[i])
			goto fail;
	}
	divert = rte_ring_create(SC_DIVERT_RING, 65536, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (!divert)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "serpensd: scaling: cannot create its rings: %s\n", rte_strerror(rte_errno));
	return -1;
}

int sc_msg_attach(struct sp_ctl *ctl)
{
	char name[RTE_RING_NAMESIZE];
	int i;

	C = ctl;
	pool = rte_mempool_lookup(SC_MSG_POOL);
	divert = rte_ring_lookup(SC_DIVERT_RING);
	if (!pool || !divert)
		return -1;
	for (i = 0; i < SC_NINBOX; i++) {
		if (!slot_used(i))
			continue;
		ring_name(name, sizeof(name), "in", i);
		if (!(inbox[i] = rte_ring_lookup(name)))
			return -1;
	}
	for (i = 0; i < (int)ctl->max_instances; i++) {
		ring_name(name, sizeof(name), "pk", i);
		if (!(pkt_ring[i] = rte_ring_lookup(name)))
			return -1;
	}
	return 0;
}

bool sc_msg_ready(void) { return pool != NULL; }

struct sc_msg *sc_msg_new(enum sc_msg_type type, uint64_t move, uint32_t flow)
{
	struct sc_msg *m;

	if (rte_mempool_get(pool, (void **)&m) != 0)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->type = (uint16_t)type;
	m->move = move;
	m->flow = flow;
	return m;
}

void sc_msg_free(struct sc_msg *m)
{
	if (m)
		rte_mempool_put(pool, m);
}

void sc_wake(int box)
{
	uint32_t *bell, *sleeping;

	if (box < SM_MAX_INSTANCES) {
		bell = &C->inst[box].doorbell;
		sleeping = &C->inst[box].sleeping;
	} else if (box == SC_INBOX_ONF) {
		bell = &C->scaling.onf.sl.doorbell;
		sleeping = &C->scaling.onf.sl.sleeping;
	} else {
		return; /* the control thread polls its inbox while it waits for a move */
	}
	/* the reader publishes `sleeping` and then re-checks its inbox (runtime.c): enqueue, then look */
	__atomic_fetch_add(bell, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(sleeping, __ATOMIC_SEQ_CST))
		sp_futex_wake(bell, INT_MAX);
}

int sc_send(int from, int to, struct sc_msg *m)
{
	m->src = (int16_t)from;
	m->tsc = rte_rdtsc();
	if (to < 0 || to >= SC_NINBOX || rte_ring_mp_enqueue(inbox[to], m) != 0) {
		sc_msg_free(m);
		return -1;
	}
	sc_wake(to);
	return 0;
}

struct sc_msg *sc_recv(int box)
{
	void *m;

	return rte_ring_sc_dequeue(inbox[box], &m) == 0 ? m : NULL;
}

bool sc_inbox_empty(int box) { return rte_ring_empty(inbox[box]); }
struct rte_ring *sc_pkt_ring(int slot) { return pkt_ring[slot]; }
struct rte_ring *sc_divert_ring(void) { return divert; }
