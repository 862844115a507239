/*
 * local_proxy.c: the local proxy of --chaining local-proxy — SAND's per-server message bus between the
 * instances of an SFC's NFs (one instance per NF, docs/chaining.md). A DPDK secondary of serpensd
 * (serpens-runtime -P), started, restarted and stopped by serpensd (delivery_local_proxy.c).
 *
 * Every batch crosses it at every hop, the first and the last included:
 *
 *   gateway ─► proxy rx ─► proxy ─► NF0 instance rx ─► NF0 ─► its tx ─► proxy ─► NF1 ... ─► proxy tx ─► port
 *
 * A packet's chain tag (chain_tag.h) says which SFC it belongs to and which position it goes to next;
 * the proxy picks one of the ready instances of that position by the flow hash (so a flow stays on one
 * instance per NF), queues it there and wakes the instance by the wake rule every hop uses (hop.h). Its
 * view of the instances is rebuilt whenever serpensd's control thread bumps the generation. No payload
 * is copied: the cost is the queueing and the context switches.
 *
 * The proxy shares the instances' core, so it always hands that core to the instance it wakes and waits
 * until the instance went back to sleep (hop.h); it never busy-polls. When it has nothing due it sleeps
 * on its own futex words like an instance, after publishing the TSC of its earliest flush deadline
 * (wake_at): serpensd's loop wakes it then, or when its rx ring is due, with the same rule (and with
 * --colocate hands it serpensd's core). Every hop's packets and drops are counted in delivery.hop.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "chain_tag.h"
#include "hop.h"
#include "local_proxy.h"

#define PX_BURST 32

struct px_dest {
	uint64_t pending_since; /* the flush clock of the instance's rx ring (hop.h) */
	struct rte_mbuf *stage[PX_BURST];
	unsigned int nstage;
};

/* The ready instances of each (SFC, position), in slot order. */
struct px_view {
	uint8_t n[SP_MAX_SFCS][SP_MAX_POS];
	int8_t slot[SP_MAX_SFCS][SP_MAX_POS][SM_MAX_INSTANCES];
};

static struct sp_ctl *C;
static struct sp_proxy *P;
static struct rte_ring *rx, *tx, *inst_rx[SM_MAX_INSTANCES], *inst_tx[SM_MAX_INSTANCES];
static struct px_dest dest[SM_MAX_INSTANCES];
static struct rte_mbuf *exit_stage[PX_BURST];
static unsigned int nexit;
static struct px_view view;
static int tag_off;
static struct sp_handoff_stats hs;

static void rebuild_view(void)
{
	uint64_t gen = __atomic_load_n(&C->delivery.gen, __ATOMIC_SEQ_CST);
	unsigned int i;

	memset(view.n, 0, sizeof(view.n));
	for (i = 0; i < SM_MAX_INSTANCES; i++) {
		const struct sp_instance *in = &C->inst[i];
		int s = in->sfc, p = in->position;

		if (__atomic_load_n(&in->state, __ATOMIC_ACQUIRE) != INST_READY || s < 0 || s >= SP_MAX_SFCS ||
		    p < 0 || p >= SP_MAX_POS)
			continue;
		view.slot[s][p][view.n[s][p]++] = (int8_t)i;
	}
	__atomic_store_n(&P->gen_seen, gen, __ATOMIC_SEQ_CST);
}

static void flush_dest(unsigned int slot)
{
	struct px_dest *d = &dest[slot];
	struct sp_instance *in = &C->inst[slot];
	unsigned int k;

	if (!d->nstage)
		return;
	k = sp_hop_enqueue(inst_rx[slot], d->stage, d->nstage, &d->pending_since);
	C->delivery.hop[in->sfc][in->position].in += k;
	if (k < d->nstage) {
		rte_pktmbuf_free_bulk(d->stage + k, d->nstage - k);
		C->delivery.hop[in->sfc][in->position].ring_full += d->nstage - k;
	}
	in->enq += k;
	in->last_pkt_tsc = rte_rdtsc(); /* keep-warm */
	d->nstage = 0;
}

static void flush_exit(void)
{
	unsigned int k, i;

	if (!nexit)
		return;
	k = rte_ring_sp_enqueue_burst(tx, (void **)exit_stage, nexit, NULL);
	for (i = 0; i < nexit; i++) {
		struct sp_hop_stats *h = &C->delivery.hop[sp_chain_tag(exit_stage[i], tag_off)->sfc][SP_MAX_POS];

		if (i < k) {
			h->in++;
		} else {
			h->ring_full++;
			rte_pktmbuf_free(exit_stage[i]);
		}
	}
	P->tx += k;
	nexit = 0;
}

/* Send one packet on to where its tag says: the next NF's instance for its flow, or out. */
static void forward(struct rte_mbuf *m)
{
	const struct sp_chain_tag *t = sp_chain_tag(m, tag_off);
	unsigned int n, slot;

	if (t->label == SP_LABEL_END) {
		exit_stage[nexit++] = m;
		if (nexit == PX_BURST)
			flush_exit();
		return;
	}
	if (t->sfc >= SP_MAX_SFCS || t->label >= SP_MAX_POS) { /* never written so: count, not crash */
		C->delivery.hop[0][SP_MAX_POS].ring_full++;
		rte_pktmbuf_free(m);
		return;
	}
	n = view.n[t->sfc][t->label];
	if (n == 0) { /* the local proxy drops what it cannot deliver; serpensd may start an instance */
		C->delivery.hop[t->sfc][t->label].no_instance++;
		__atomic_fetch_or(&C->delivery.want_start[t->sfc], 1ull << t->label, __ATOMIC_RELAXED);
		rte_pktmbuf_free(m);
		return;
	}
	slot = (unsigned int)view.slot[t->sfc][t->label][t->hash % n];
	dest[slot].stage[dest[slot].nstage++] = m;
	if (dest[slot].nstage == PX_BURST)
		flush_dest(slot);
}

/* Move everything waiting: from the gateway and from every instance's tx ring. Returns packets moved. */
static unsigned int move(void)
{
	struct rte_mbuf *m[PX_BURST];
	unsigned int n, i, k, moved = 0;

	while ((n = rte_ring_sc_dequeue_burst(rx, (void **)m, PX_BURST, NULL)) > 0) {
		P->rx += n;
		moved += n;
		for (i = 0; i < n; i++)
			forward(m[i]);
	}
	for (k = 0; k < sp_slots_hi(C); k++) {
		const struct sp_instance *in = &C->inst[k];

		while ((n = rte_ring_sc_dequeue_burst(inst_tx[k], (void **)m, PX_BURST, NULL)) > 0) {
			C->delivery.hop[in->sfc][in->position].out += n;
			moved += n;
			for (i = 0; i < n; i++)
				forward(m[i]);
		}
	}
	for (k = 0; k < sp_slots_hi(C); k++)
		flush_dest(k);
	flush_exit();
	return moved;
}

static uint64_t slot_work(const void *arg)
{
	return __atomic_load_n(&((const struct sp_instance *)arg)->slot_work_cycles, __ATOMIC_RELAXED);
}

/* Wake every instance whose queue is due; it gets the core until it drained (hop.h). Returns how many
 * were woken; *cost gets the proxy's share of the hand-offs. */
static unsigned int wake_due(uint64_t now, uint64_t flush_tsc, uint64_t *cost)
{
	unsigned int i, woken = 0;

	for (i = 0; i < sp_slots_hi(C); i++) {
		struct sp_instance *in = &C->inst[i];

		if (__atomic_load_n(&in->state, __ATOMIC_ACQUIRE) != INST_READY || in->position < 0)
			continue;
		if (!sp_hop_due(rte_ring_count(inst_rx[i]), dest[i].pending_since, now, C->wake_batch, flush_tsc))
			continue;
		if (!sp_hop_wake(&in->sl, true, slot_work, in, &hs, cost))
			continue;
		in->wakeups++;
		P->wakeups++;
		dest[i].pending_since = now;
		woken++;
	}
	P->handoffs = hs.handoffs;
	P->handoff_timeouts = hs.timeouts;
	P->handoff_max_ns = hs.max_ns;
	return woken;
}

/* The earliest flush deadline of a ring it feeds (0: none), for serpensd to wake it then. An instance
 * that is running (a hand-off that timed out) finds its packets itself. */
static uint64_t next_deadline(uint64_t flush_tsc)
{
	uint64_t at = 0, t;
	unsigned int i;

	for (i = 0; i < sp_slots_hi(C); i++) {
		if (rte_ring_empty(inst_rx[i]) || __atomic_load_n(&C->inst[i].state, __ATOMIC_ACQUIRE) != INST_READY ||
		    !__atomic_load_n(&C->inst[i].sleeping, __ATOMIC_SEQ_CST))
			continue;
		t = dest[i].pending_since + flush_tsc;
		if (!at || t < at)
			at = t;
	}
	return at;
}

/* Anything that makes sleeping wrong: packets to move, a new generation, a stop. */
static bool has_work(void)
{
	unsigned int i;

	if (!rte_ring_empty(rx) || __atomic_load_n(&C->delivery.gen, __ATOMIC_SEQ_CST) != P->gen_seen ||
	    __atomic_load_n(&P->sl.stop, __ATOMIC_SEQ_CST))
		return true;
	for (i = 0; i < sp_slots_hi(C); i++)
		if (!rte_ring_empty(inst_tx[i]))
			return true;
	return false;
}

static int lookup_rings(void)
{
	unsigned int i;

	rx = rte_ring_lookup(P->rx_ring);
	tx = rte_ring_lookup(P->tx_ring);
	for (i = 0; i < C->max_instances; i++) { /* serpensd made rings for these slots only */
		inst_rx[i] = rte_ring_lookup(C->inst[i].rx_ring);
		inst_tx[i] = rte_ring_lookup(C->inst[i].tx_ring);
		if (!inst_rx[i] || !inst_tx[i])
			return -1;
	}
	return rx && tx ? 0 : -1;
}

static int fail(const char *msg)
{
	fprintf(stderr, "serpens-runtime -P: %s\n", msg);
	snprintf(P->error, sizeof(P->error), "%s", msg);
	__atomic_store_n(&P->state, INST_DEAD, __ATOMIC_RELEASE);
	sp_futex_wake(&P->state, INT_MAX);
	return 1;
}

int local_proxy_run(struct sp_ctl *ctl)
{
	uint64_t hz = rte_get_tsc_hz(), flush_tsc, t0, t1, cost, at;
	unsigned int moved, woken;
	uint32_t seq;

	C = ctl;
	P = &ctl->delivery.proxy;
	flush_tsc = hz * ctl->delivery.flush_us / 1000000;
	if ((tag_off = sp_chain_tag_lookup()) < 0)
		return fail("the chain tag mbuf field is not registered");
	if (lookup_rings() != 0)
		return fail("the proxy's or the instances' rings were not found");
	/* a restarted proxy carries on with its predecessor's counters (cumulative, like the hops') */
	hs = (struct sp_handoff_stats){.handoffs = P->handoffs, .timeouts = P->handoff_timeouts,
				       .max_ns = P->handoff_max_ns};
	rebuild_view();
	__atomic_store_n(&P->state, INST_READY, __ATOMIC_RELEASE);
	sp_futex_wake(&P->state, INT_MAX);
	for (;;) {
		/* one pass: the proxy stage's clock runs around the moving of packets and the wake-ups (less
		 * the woken instances' own work), and counts only if the pass did something */
		t0 = rte_rdtsc();
		cost = 0;
		__atomic_store_n(&P->kick, 0, __ATOMIC_RELAXED);
		if (__atomic_load_n(&C->delivery.gen, __ATOMIC_SEQ_CST) != P->gen_seen)
			rebuild_view();
		moved = move();
		t1 = rte_rdtsc();
		woken = wake_due(t1, flush_tsc, &cost);
		if (moved || woken) {
			P->busy_cycles += (t1 - t0) + cost;
			P->wake_cycles += cost;
			continue;
		}
		if (__atomic_load_n(&P->sl.stop, __ATOMIC_ACQUIRE))
			break;
		/* sleep (runtime.c's protocol); serpensd wakes it at wake_at or when its rx ring is due */
		seq = __atomic_load_n(&P->sl.doorbell, __ATOMIC_ACQUIRE);
		at = next_deadline(flush_tsc);
		__atomic_store_n(&P->wake_at, at, __ATOMIC_SEQ_CST);
		__atomic_store_n(&P->sl.sleeping, 1, __ATOMIC_SEQ_CST);
		if (has_work() || (at && rte_rdtsc() >= at)) {
			__atomic_store_n(&P->sl.sleeping, 0, __ATOMIC_SEQ_CST);
			continue;
		}
		__atomic_fetch_add(&P->sl.done, 1, __ATOMIC_SEQ_CST);
		sp_futex_wake(&P->sl.done, 1);
		P->sleeps++;
		sp_futex_wait(&P->sl.doorbell, seq, 100 * 1000 * 1000L); /* re-check stop at least every 100 ms */
		__atomic_store_n(&P->sl.sleeping, 0, __ATOMIC_SEQ_CST);
		P->runs++;
	}
	return 0;
}
