/*
 * opennf_controller.c: the OpenNF controller (Gember-Jacobson et al., SIGCOMM'14), a process of its own
 * (serpens-runtime -O), started by serpensd with --scaling opennf.
 *
 * A move (the control thread's MOVE message; scale_control.c):
 *   1. the router already sends the moved buckets' packets here, one ring message per packet (the
 *      switch's packet-in); each is buffered, in arrival order;
 *   2. EXPORT to the old instance, which, after the last packet it had to see, sends every moved flow's
 *      state here (getPerflow) and DONE;
 *   3. the flows go to the new instance one at a time (putPerflow), each waiting for its ACK;
 *   4. after the last ACK: MOVED to the control thread, which points the route at the new instance and
 *      answers ROUTED;
 *   5. the buffer goes to the new instance's packet ring, then RELEASED: in order-preserving mode the new
 *      instance holds the moved flows' packets from the router until then, so buffered ones go first.
 * Loss-free either way: nothing is dropped unless the buffer (65536 packets) overflows, which is
 * counted (buffer_drops).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "ctl.h"
#include "scale_msg.h"
#include "scale_shared.h"

#define ONF_BUFFER 65536
#define ONF_QUEUE 65536

static struct rte_mbuf *buffer[ONF_BUFFER];
static unsigned int nbuf;
static struct sc_msg *queue[ONF_QUEUE]; /* states from the old instance, to forward one at a time */
static unsigned int qhead, qn;

static void fail_move(uint64_t move, const char *why)
{
	struct sc_msg *m = sc_msg_new(SC_M_FAIL, move, 0);

	if (m) {
		m->len = (uint32_t)snprintf((char *)m->data, SC_MSG_ROOM, "opennf controller: %s", why) + 1;
		sc_send(SC_INBOX_ONF, SC_INBOX_CTL, m);
	}
}

int onf_controller_run(struct sp_ctl *ctl)
{
	struct sc_shared *sh = &ctl->scaling;
	struct sc_onf_proc *p = &sh->onf;
	struct sc_move *mv = &sh->move;
	bool moving = false, export_done = false, waiting_ack = false, moved_sent = false;
	uint64_t move = 0;
	int from = -1, to = -1;
	struct sc_msg *m;
	void *pkt;

	if (sc_msg_attach(ctl) != 0) {
		snprintf(p->error, sizeof(p->error), "its message pool and rings are missing");
		__atomic_store_n(&p->state, INST_DEAD, __ATOMIC_RELEASE);
		return 1;
	}
	__atomic_store_n(&p->state, INST_READY, __ATOMIC_RELEASE);
	sp_futex_wake(&p->state, INT_MAX);
	for (;;) {
		bool busy = false;

		/* packet-ins: one message per packet, buffered in order */
		while (rte_ring_sc_dequeue(sc_divert_ring(), &pkt) == 0) {
			busy = true;
			if (nbuf < ONF_BUFFER) {
				buffer[nbuf++] = pkt;
				if (nbuf > p->buffered_max)
					p->buffered_max = nbuf;
			} else {
				rte_pktmbuf_free(pkt);
				__atomic_fetch_add(&mv->buffer_drops, 1, __ATOMIC_RELAXED);
			}
			p->buffered_now = nbuf;
		}
		while ((m = sc_recv(SC_INBOX_ONF)) != NULL) {
			busy = true;
			switch (m->type) {
			case SC_M_MOVE:
				move = m->move;
				from = mv->from;
				to = mv->to;
				moving = true;
				export_done = waiting_ack = moved_sent = false;
				qhead = qn = 0;
				sc_msg_free(m);
				m = sc_msg_new(SC_M_EXPORT, move, 0);
				if (!m || sc_send(SC_INBOX_ONF, from, m) != 0)
					fail_move(move, "cannot send EXPORT to the old instance");
				break;
			case SC_M_STATE:
				if (m->move != move || qn == ONF_QUEUE) {
					fail_move(move, "a state message it cannot queue");
					sc_msg_free(m);
					break;
				}
				queue[(qhead + qn++) % ONF_QUEUE] = m;
				break;
			case SC_M_DONE:
				export_done = m->move == move;
				sc_msg_free(m);
				break;
			case SC_M_ACK:
				waiting_ack = false;
				sc_msg_free(m);
				break;
			case SC_M_ROUTED: {
				unsigned int i = 0;

				sc_msg_free(m);
				/* the buffer, in order, then the marker; the packet ring is the new instance's and
				 * only this process produces on it */
				while (i < nbuf) {
					i += rte_ring_sp_enqueue_burst(sc_pkt_ring(to), (void **)buffer + i, nbuf - i, NULL);
					sc_wake(to);
				}
				__atomic_fetch_add(&mv->released, nbuf, __ATOMIC_RELAXED);
				nbuf = 0;
				p->buffered_now = 0;
				m = sc_msg_new(SC_M_RELEASED, move, 0);
				if (!m || sc_send(SC_INBOX_ONF, to, m) != 0)
					fail_move(move, "cannot send RELEASED to the new instance");
				m = sc_msg_new(SC_M_RELEASED, move, 0);
				if (m)
					sc_send(SC_INBOX_ONF, SC_INBOX_CTL, m);
				moving = false;
				break;
			}
			default:
				sc_msg_free(m);
			}
		}
		/* one flow at a time, each acknowledged before the next */
		if (moving && !waiting_ack && qn) {
			m = queue[qhead];
			qhead = (qhead + 1) % ONF_QUEUE;
			qn--;
			waiting_ack = !m->more; /* a flow split over messages is acknowledged once, at its last */
			__atomic_fetch_add(&mv->msgs, 2, __ATOMIC_RELAXED); /* the put and its ack */
			if (sc_send(SC_INBOX_ONF, to, m) != 0) {
				fail_move(move, "cannot forward a state to the new instance");
				waiting_ack = false;
			}
			__atomic_store_n(&mv->t_last_state, rte_rdtsc(), __ATOMIC_RELAXED);
			busy = true;
		}
		if (moving && export_done && !qn && !waiting_ack && !moved_sent) {
			m = sc_msg_new(SC_M_MOVED, move, 0);
			if (m && sc_send(SC_INBOX_ONF, SC_INBOX_CTL, m) == 0)
				moved_sent = true;
		}
		if (busy)
			continue;
		if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) != INST_READY)
			return 0; /* serpensd asked it to stop */
		/* nothing to do, even mid-move (it waits for an ack or the route): sleep, so that with
		 * --colocate the core goes back to serpensd, which hands it to whoever has the next step
		 * (runtime.c's wake-up protocol: publish sleeping, re-check, then wait) */
		{
			uint32_t seq = __atomic_load_n(&p->sl.doorbell, __ATOMIC_ACQUIRE);

			__atomic_store_n(&p->sl.sleeping, 1, __ATOMIC_SEQ_CST);
			if (sc_inbox_empty(SC_INBOX_ONF) && rte_ring_empty(sc_divert_ring()) &&
			    __atomic_load_n(&p->state, __ATOMIC_SEQ_CST) == INST_READY) {
				__atomic_fetch_add(&p->sl.done, 1, __ATOMIC_SEQ_CST);
				sp_futex_wake(&p->sl.done, 1);
				sp_futex_wait(&p->sl.doorbell, seq, 100 * 1000 * 1000L);
			}
			__atomic_store_n(&p->sl.sleeping, 0, __ATOMIC_SEQ_CST);
		}
	}
}
