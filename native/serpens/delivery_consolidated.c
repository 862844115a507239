/*
 * delivery_consolidated.c: Serpens' chaining (paper Section III-C) behind the delivery seam (delivery.h).
 * The whole SFC runs in one instance, so the only deliveries are the gateway's: the Router hashes a
 * packet's flow to one of its SFC's instances (a flow always reaches the same one) and queues it on that
 * instance's rx ring; the instance's Chainer runs every NF over the batch; serpensd sends what the
 * instance put on its tx ring.
 */
#include <unistd.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <jansson.h>

#include "gateway.h"
#include "hop.h"
#include "serpensd.h"
#include "scaling/scale_msg.h"

/* --pin-flows (E2's rule for scaling: a flow stays where it started until it is moved explicitly): the
 * gateway remembers each flow's instance, so a move of router buckets with "pin" sends only new flows to
 * the new instance. An entry holds while its slot serves the SFC, its pin generation (route_table) is
 * current (a move of the flow's bucket away from that slot bumps it) and the flow was seen within
 * PIN_IDLE_S; otherwise the flow takes its bucket's instance and is pinned there. */
#define PIN_SIZE 65536 /* flows remembered (a power of two); a full probe window evicts its oldest */
#define PIN_PROBE 8
#define PIN_IDLE_S 10

struct pin {
	uint32_t flow;   /* 0: empty (a flow hash of 0 is stored as 1) */
	uint8_t sfc;
	int8_t slot;
	uint8_t gen;
	uint64_t seen;   /* TSC of its last packet */
};
static struct pin P[PIN_SIZE];

static uint64_t pin_evictions; /* live pins dropped for room: each one a flow that may move unasked */

static int pinned_slot(struct serpensd *d, const struct route_table *rt, unsigned int sfc, uint32_t h, int slot,
		       uint64_t now)
{
	const uint32_t key = h ? h : 1, b = h & (RT_BUCKETS - 1), i = (key * 2654435761u) & (PIN_SIZE - 1);
	const uint64_t idle = (uint64_t)PIN_IDLE_S * rte_get_tsc_hz();
	struct pin *victim = NULL, *e;
	unsigned int k;

	for (k = 0; k < PIN_PROBE; k++) {
		e = &P[(i + k) & (PIN_SIZE - 1)];
		if (e->flow == key && e->sfc == sfc) {
			if (e->slot >= 0 && now - e->seen < idle && e->gen == rt->pin_gen[sfc][b][e->slot] &&
			    d->ctl->inst[e->slot].state == INST_READY && d->ctl->inst[e->slot].sfc == (int32_t)sfc) {
				e->seen = now;
				return e->slot;
			}
			victim = e; /* lapsed: pinned again, where its bucket goes now */
			break;
		}
		if (e->flow == 0 || now - e->seen >= idle) { /* free, or its flow ended */
			if (!victim || victim->flow)
				victim = e;
		} else if (!victim || (victim->flow && e->seen < victim->seen)) {
			victim = e; /* the oldest live one, if nothing better turns up */
		}
	}
	if (slot < 0)
		return slot;
	if (victim->flow && victim->flow != key && now - victim->seen < idle)
		pin_evictions++;
	*victim = (struct pin){.flow = key, .sfc = (uint8_t)sfc, .slot = (int8_t)slot, .gen = rt->pin_gen[sfc][b][slot],
			       .seen = now};
	return slot;
}

struct slot_dp {
	uint64_t pending_since; /* TSC when the ring went from empty to non-empty while the instance slept */
	struct rte_mbuf *stage[DP_BURST];
	unsigned int nstage;
	/* set by the Router and resolved with the TSC the poll of the same loop iteration has at hand, instead
	 * of a TSC read per burst (~18 ns here): the ring went from empty to non-empty (pending_since) */
	bool started;
};
static struct slot_dp S[SM_MAX_INSTANCES];
/* slots that got packets in this loop iteration (their last_pkt_tsc, for keep-warm, and maybe started are
 * due): the poll visits only those */
#define S_WORDS ((SM_MAX_INSTANCES + 63) / 64)
static uint64_t S_flagged[S_WORDS];

static void flush_stage(struct serpensd *d, unsigned int slot)
{
	struct slot_dp *s = &S[slot];
	struct sp_instance *in = &d->ctl->inst[slot];
	unsigned int n;

	if (!s->nstage)
		return;
	n = sp_hop_enqueue_started(d->rx[slot], s->stage, s->nstage, &s->started);
	if (n < s->nstage) {
		rte_pktmbuf_free_bulk(s->stage + n, s->nstage - n);
		d->ctl->sfcs[in->sfc].ring_full += s->nstage - n;
	}
	in->enq += n;
	S_flagged[slot / 64] |= 1ull << (slot % 64);
	s->nstage = 0;
}

static void cons_route(struct serpensd *d, struct rte_mbuf **m, unsigned int nb)
{
	const struct route_table *rt = __atomic_load_n(&d->route, __ATOMIC_ACQUIRE);
	struct pkt_key k;
	unsigned int i, diverted = 0;
	const bool pin = rt && rt->pin_gen;
	const uint64_t now = pin ? rte_rdtsc() : 0;
	uint64_t staged[S_WORDS] = {0}; /* slots this burst staged packets for: only those are flushed */
	uint32_t h;
	unsigned int w;
	int si, slot;

	for (i = 0; i < nb; i++) {
		si = gw_admit(d, rt, m[i], &k);
		if (si < 0)
			continue;
		h = gw_flow_hash(&k);
		m[i]->hash.usr = h; /* the instance's flow of this packet, for the scaling protocols (scaling/) */
		slot = rt->bucket[si][h & (RT_BUCKETS - 1)];
		if (pin && slot != RT_DIVERT)
			slot = pinned_slot(d, rt, rt->sfc_id[si], h, slot, now);
		if (unlikely(slot == RT_DIVERT)) { /* OpenNF: a packet-in, one message per packet */
			if (rte_ring_sp_enqueue(sc_divert_ring(), m[i]) != 0) {
				d->ctl->scaling.move.buffer_drops++;
				rte_pktmbuf_free(m[i]);
			} else {
				d->ctl->scaling.move.diverted++;
				diverted++;
			}
			continue;
		}
		if (slot < 0) {
			d->ctl->sfcs[rt->sfc_id[si]].no_instance++;
			if (d->want_start[rt->sfc_id[si]]++ == 0 && d->auto_start) { /* the first: start one now */
				uint64_t one = 1;

				if (write(d->tick_fd, &one, sizeof(one)) < 0) {
					/* the counter is full: a tick is due anyway */
				}
			}
			rte_pktmbuf_free(m[i]);
			continue;
		}
		S[slot].stage[S[slot].nstage++] = m[i];
		staged[slot / 64] |= 1ull << (slot % 64);
		if (S[slot].nstage == DP_BURST)
			flush_stage(d, (unsigned int)slot);
	}
	for (w = 0; w < S_WORDS; w++)
		while (staged[w]) {
			flush_stage(d, w * 64 + (unsigned int)__builtin_ctzll(staged[w]));
			staged[w] &= staged[w] - 1;
		}
	if (diverted)
		sc_wake(SC_INBOX_ONF);
}

static uint64_t slot_work(const void *arg)
{
	return __atomic_load_n(&((const struct sp_instance *)arg)->slot_work_cycles, __ATOMIC_RELAXED);
}

static uint64_t no_work(const void *arg)
{
	(void)arg;
	return 0;
}

/* The scaling protocols' steps that arrive as messages (scaling/): an instance with a message or
 * packets handed over by the OpenNF controller, and the controller with a message or packet-ins, is woken
 * like an instance with due packets, and with --colocate handed the core: otherwise it would wait for
 * the scheduler to take the core from this busy loop. */
static uint64_t scaling_poll(struct serpensd *d)
{
	uint64_t cost = 0;
	unsigned int i;

	for (i = 0; i < sp_slots_hi(d->ctl); i++) {
		struct sp_instance *in = &d->ctl->inst[i];

		if (in->state != INST_READY || (sc_inbox_empty((int)i) && rte_ring_empty(sc_pkt_ring((int)i))))
			continue;
		if (sp_hop_wake(&in->sl, d->ctl->colocate, slot_work, in, &d->handoff, &cost))
			in->wakeups++;
	}
	if (d->ctl->scaling.protocol == SC_OPENNF &&
	    (!sc_inbox_empty(SC_INBOX_ONF) || !rte_ring_empty(sc_divert_ring())))
		sp_hop_wake(&d->ctl->scaling.onf.sl, d->ctl->colocate, no_work, NULL, &d->handoff, &cost);
	return cost;
}

/* Wake each instance whose queue is due (hop.h); with --colocate hand it the core until it drained. */
static uint64_t cons_poll(struct serpensd *d, uint64_t now, uint64_t flush_tsc)
{
	unsigned int i, w, hi = sp_slots_hi(d->ctl);
	uint64_t cost = 0;

	for (w = 0; w < S_WORDS && w * 64 < hi; w++)
		while (S_flagged[w]) { /* now is the TSC right after this iteration's route (serpensd.c) */
			i = w * 64 + (unsigned int)__builtin_ctzll(S_flagged[w]);
			S_flagged[w] &= S_flagged[w] - 1;
			d->ctl->inst[i].last_pkt_tsc = now;
			if (S[i].started) {
				S[i].pending_since = now;
				S[i].started = false;
			}
		}
	for (i = 0; i < hi; i++) {
		struct sp_instance *in = &d->ctl->inst[i];

		if (in->state != INST_READY)
			continue;
		if (!sp_hop_due(rte_ring_count(d->rx[i]), S[i].pending_since, now, d->ctl->wake_batch, flush_tsc))
			continue;
		if (!sp_hop_wake(&in->sl, d->ctl->colocate, slot_work, in, &d->handoff, &cost))
			continue; /* it is running: it will find the packets */
		in->wakeups++;
		S[i].pending_since = now;
	}
	if (d->ctl->scaling.protocol != SC_SHARED)
		cost += scaling_poll(d);
	return cost;
}

/* Send what the instances produced; returns how many packets were taken from their tx rings. */
static unsigned int cons_transmit(struct serpensd *d)
{
	struct rte_mbuf *m[DP_BURST];
	unsigned int i, n, taken = 0;
	uint16_t sent;

	for (i = 0; i < sp_slots_hi(d->ctl); i++) {
		if (d->ctl->inst[i].state == INST_FREE)
			continue;
		while ((n = rte_ring_sc_dequeue_burst(d->tx[i], (void **)m, DP_BURST, NULL)) > 0) {
			taken += n;
			sent = rte_eth_tx_burst(0, 0, m, (uint16_t)n);
			if (unlikely(sent < n)) {
				rte_pktmbuf_free_bulk(m + sent, n - sent);
				d->port_tx_dropped += n - sent;
			}
			d->port_tx += sent;
			d->ctl->sfcs[d->ctl->inst[i].sfc].tx += sent;
		}
	}
	return taken;
}

static json_t *cons_stats(struct serpensd *d)
{
	unsigned int i, pinned = 0;
	uint64_t now = rte_rdtsc(), idle = (uint64_t)PIN_IDLE_S * rte_get_tsc_hz();

	if (!d->pin_flows)
		return NULL; /* the Router's buckets are all there is */
	for (i = 0; i < PIN_SIZE; i++)
		pinned += P[i].flow && now - P[i].seen < idle;
	return json_pack("{s:b, s:I, s:I}", "pin_flows", d->pin_flows, "pinned_flows", (json_int_t)pinned,
			 "pin_evictions", (json_int_t)pin_evictions);
}

const struct sp_delivery_ops sp_delivery_consolidated = {
	.name = "consolidated",
	.mode = SP_CHAIN_CONSOLIDATED,
	.per_nf = false,
	.route = cons_route,
	.poll = cons_poll,
	.transmit = cons_transmit,
	.stats = cons_stats,
};
