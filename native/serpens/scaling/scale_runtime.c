/*
 * scale_runtime.c: an instance's side of the state-moving scaling protocols (scale_runtime.h).
 *
 * The old instance of a move: the router stops sending it the moved flows' packets, then the control
 * thread sends EXPORT with a drain mark (its `enq` count at that moment); once the instance has taken
 * that many packets from its rx ring it has handled every packet the moved flows sent it, and only then
 * gives their state up:
 *   snf     every moved flow's entries in STATE messages straight to the new instance, then DONE;
 *   opennf  the same to the OpenNF controller, which forwards them one at a time;
 *   chc     every moved flow's entries written to the store (scale_chc.c), then DONE to the control thread;
 *   s6      nothing pushed: it answers PULLs (after the mark) with the flow's entries, or NONE.
 * The new instance, from IMPORT on, holds every packet of a moved bucket whose flow's state has not
 * arrived, and lets other flows' packets through:
 *   snf     a flow is ready when its STATE arrives; after DONE every flow is (the rest had none);
 *   s6      on a flow's first packet it looks the flow up in the directory and PULLs it from its owner;
 *   chc     it asks the store for the held flows (one pipelined round trip per batch) until it has
 *           them or the old side's DONE record says they had none;
 *   opennf  loss-free: nothing to hold (the route moves after every import was acknowledged);
 *           order-preserving: every packet of a moved bucket waits until the controller released its
 *           buffer, so buffered packets go first.
 * Held packets are released in arrival order, before anything newer of their flow.
 */
#include "scale_runtime.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>

#include "ctl.h"
#include "scale_msg.h"
#include "scale_shared.h"
#include "scale_store.h"
#include "serpens/state_ops.h"

#define HOLD_MAX 65536     /* packets an instance can hold (a power of two) */
#define FLOWS_MAX 16384    /* flows of one incoming move it tracks (a power of two) */
#define REFS_MAX 65536     /* entries one export collects */
#define PULLS_MAX 4096     /* s6 pulls waiting for the drain mark */

enum { F_UNKNOWN = 0, F_ASKED, F_READY };
#define IN_MAX 16          /* moves into one instance at once */
#define F_TOMB 0xffffffffu /* a flow no longer tracked (fkey) */

struct in_move {
	uint64_t id;
	uint64_t mask[SC_MASK_WORDS];
	bool hold_all; /* opennf order-preserving: every packet of its buckets waits for the buffer */
	bool released; /* opennf: the controller handed its buffer over */
	unsigned int fetched; /* chc: flows of it found in the store so far */
};

struct held {
	struct rte_mbuf *m;
	uint32_t flow;
	uint64_t tsc;
};

struct fifo {
	struct held e[HOLD_MAX];
	unsigned int head, n;
};

static struct {
	struct sp_ctl *ctl;
	struct sc_shared *sh;
	enum sc_protocol proto;
	bool active;
	int slot;
	struct sc_inst *st;
	/* the moves into this instance still in progress (several at once: a scale-out to a third instance
	 * takes flows from two, and CHC's new side finishes only when it fetched what it needs) */
	struct in_move in[IN_MAX];
	unsigned int nin;
	uint32_t fkey[FLOWS_MAX];  /* the flows of those moves (S6: the flows being pulled) and where they are */
	uint8_t fstate[FLOWS_MAX];
	unsigned int nflows;
	struct { uint32_t flow; uint64_t move; } asked[FLOWS_MAX]; /* chc: flows to fetch from the store */
	unsigned int nasked;
	/* the move out of it */
	bool ex_pending, ex_serving;
	uint64_t ex_move, ex_mark;
	uint64_t ex_mask[SC_MASK_WORDS];
	struct { uint32_t flow; int to; } pulls[PULLS_MAX];
	unsigned int npulls;
	/* packets */
	struct fifo hold, release;
} R;

static struct sc_ref refs[REFS_MAX];

static void store_hook_packet(const struct sp_pkt *pkt)
{
	sc_store_set_flow(((const struct rte_mbuf *)pkt->buf)->hash.usr);
}
static void store_hook_nop_begin(const char *nf, const struct sp_pkt *p, unsigned int n)
{
	(void)nf;
	(void)p;
	(void)n;
}
static void store_hook_nop_end(void) {}

/* The private store tags each new entry with the flow of the packet being handled: the Chainer tells
 * it which packet that is. */
static const struct sp_batch_hooks store_hooks = {
	.begin = store_hook_nop_begin, .packet = store_hook_packet, .end = store_hook_nop_end};

/* ---- S6's directory (shared: scale_shared.h) ------------------------------------------------------ */

static uint32_t dir_key(uint32_t flow) { return flow ? flow : 1; }

static int dir_get(uint32_t flow)
{
	uint32_t k = dir_key(flow), i = k & (SC_DIR_SIZE - 1), n;

	for (n = 0; n < SC_DIR_SIZE; n++, i = (i + 1) & (SC_DIR_SIZE - 1)) {
		uint32_t f = __atomic_load_n(&R.sh->dir[i].flow, __ATOMIC_ACQUIRE);

		if (f == k)
			return __atomic_load_n(&R.sh->dir[i].owner, __ATOMIC_ACQUIRE);
		if (f == 0)
			return -1;
	}
	return -1;
}

static void dir_set(uint32_t flow, int owner)
{
	uint32_t k = dir_key(flow), i = k & (SC_DIR_SIZE - 1), n, zero;

	for (n = 0; n < SC_DIR_SIZE; n++, i = (i + 1) & (SC_DIR_SIZE - 1)) {
		uint32_t f = __atomic_load_n(&R.sh->dir[i].flow, __ATOMIC_ACQUIRE);

		zero = 0;
		if (f == 0 && __atomic_compare_exchange_n(&R.sh->dir[i].flow, &zero, k, false, __ATOMIC_ACQ_REL,
							  __ATOMIC_ACQUIRE))
			f = k;
		else if (f == 0)
			f = zero; /* another instance took it: see whose */
		if (f == k) {
			__atomic_store_n(&R.sh->dir[i].owner, owner, __ATOMIC_RELEASE);
			return;
		}
	}
}

/* S6: every flow whose state an instance creates is registered as owned by it. */
static void s6_on_new_entry(uint32_t flow) { dir_set(flow, R.slot); }

/* ---- the incoming move's flows -------------------------------------------------------------------- */

static uint32_t fkey_of(uint32_t flow) { return flow == 0 ? 1 : flow == F_TOMB ? F_TOMB - 1 : flow; }

static uint8_t *fslot(uint32_t flow, bool create)
{
	uint32_t k = fkey_of(flow), i = k & (FLOWS_MAX - 1), n;
	uint8_t *tomb = NULL;

	for (n = 0; n < FLOWS_MAX; n++, i = (i + 1) & (FLOWS_MAX - 1)) {
		if (R.fkey[i] == k)
			return &R.fstate[i];
		if (R.fkey[i] == F_TOMB && !tomb)
			tomb = &R.fstate[i];
		if (R.fkey[i] == 0) {
			if (!create)
				return NULL;
			if (tomb)
				i = (uint32_t)(tomb - R.fstate);
			if (R.nflows >= FLOWS_MAX / 2)
				return NULL; /* keep probes short: the caller treats it as "wait" */
			R.fkey[i] = k;
			R.fstate[i] = F_UNKNOWN;
			R.nflows++;
			return &R.fstate[i];
		}
	}
	return NULL;
}

static void fforget(uint32_t flow)
{
	uint8_t *s = fslot(flow, false);

	if (s) {
		R.fkey[s - R.fstate] = F_TOMB;
		R.nflows--;
	}
}

static void freset(void)
{
	memset(R.fkey, 0, sizeof(R.fkey));
	R.nflows = 0;
}

/* The newest move in progress whose buckets hold this flow, or NULL. */
static struct in_move *in_for(uint32_t flow)
{
	unsigned int k;

	for (k = R.nin; k-- > 0;)
		if (sc_bucket_in(R.in[k].mask, flow))
			return &R.in[k];
	return NULL;
}

static struct in_move *in_find(uint64_t id)
{
	unsigned int k;

	for (k = 0; k < R.nin; k++)
		if (R.in[k].id == id)
			return &R.in[k];
	return NULL;
}

static void fifo_push(struct fifo *f, struct rte_mbuf *m, uint32_t flow, uint64_t tsc)
{
	f->e[(f->head + f->n) & (HOLD_MAX - 1)] = (struct held){.m = m, .flow = flow, .tsc = tsc};
	f->n++;
}

static bool must_hold(uint32_t flow);

/* Move a now-ready flow's held packets (all = every held packet that no move in progress holds any
 * more) to the release queue, in order. */
static void release_flow(uint32_t flow, bool all)
{
	unsigned int i, kept = 0, n = R.hold.n;

	for (i = 0; i < n; i++) {
		struct held h = R.hold.e[(R.hold.head + i) & (HOLD_MAX - 1)];

		if (all ? !in_for(h.flow) || !must_hold(h.flow) : h.flow == flow)
			fifo_push(&R.release, h.m, h.flow, h.tsc);
		else
			R.hold.e[(R.hold.head + kept++) & (HOLD_MAX - 1)] = h;
	}
	R.hold.n = kept;
	R.st->held_now = kept;
}

static void flow_ready(uint32_t flow)
{
	uint8_t *s;

	if (R.proto == SC_S6) {
		fforget(flow); /* its state is here (or nowhere): the store and the directory say so from now */
	} else if ((s = fslot(flow, true))) {
		*s = F_READY;
	}
	release_flow(flow, false);
}

/* A move into this instance is over: every flow of its buckets has its state here (or had none). */
static void in_finish(struct in_move *m)
{
	unsigned int k = (unsigned int)(m - R.in);

	memmove(&R.in[k], &R.in[k + 1], (R.nin - k - 1) * sizeof(R.in[0]));
	R.nin--;
	release_flow(0, true);
	if (!R.nin && R.proto != SC_S6)
		freset();
}

static void send_fail(const char *what)
{
	struct sc_msg *m = sc_msg_new(SC_M_FAIL, R.nin ? R.in[R.nin - 1].id : R.ex_move, 0);

	snprintf(R.st->error, sizeof(R.st->error), "%.*s", (int)sizeof(R.st->error) - 1, what);
	if (m) {
		m->len = (uint32_t)snprintf((char *)m->data, SC_MSG_ROOM, "instance %d: %s", R.slot, what) + 1;
		sc_send(R.slot, SC_INBOX_CTL, m);
	}
}

/* S6: any flow whose state is not here is looked up in the directory; if another instance owns it, it is
 * pulled from there and its packets wait (others go on). No move needs to be known: a lookup per packet of
 * a flow without local state, as S6's object space does on a miss. */
static bool s6_must_hold(uint32_t flow)
{
	struct sc_msg *m;
	uint8_t *s;
	int owner;

	if (sc_store_has_flow(flow))
		return false;
	s = fslot(flow, false);
	if (s && *s == F_ASKED)
		return true;
	owner = dir_get(flow);
	if (owner < 0 || owner == R.slot)
		return false; /* a new flow, or ours with no state (yet) */
	s = fslot(flow, true);
	if (!s)
		return true; /* too many pulls at once: it waits until some are answered */
	m = sc_msg_new(SC_M_PULL, R.nin ? R.in[R.nin - 1].id : 0, flow);
	if (!m || sc_send(R.slot, owner, m) != 0) {
		send_fail("s6: cannot send a pull (message pool or inbox full)");
		fforget(flow);
		return false;
	}
	*s = F_ASKED;
	R.st->msgs_out++;
	return true;
}

/* Must this packet of `flow` wait? */
static bool must_hold(uint32_t flow)
{
	struct in_move *mv;
	uint8_t *s;

	if (R.proto == SC_S6)
		return s6_must_hold(flow);
	mv = in_for(flow);
	if (!mv)
		return false;
	if (mv->hold_all)
		return true; /* opennf order-preserving: until the controller's buffer went first */
	if (R.proto == SC_OPENNF)
		return false;
	s = fslot(flow, true);
	if (!s)
		return true; /* more flows than tracked: wait for the move's end */
	if (*s == F_READY)
		return false;
	if (*s == F_ASKED)
		return true;
	if (sc_store_has_flow(flow)) { /* its state is here already: one of this instance's own flows */
		*s = F_READY;
		return false;
	}
	/* first packet of this flow since its move began */
	if (R.proto == SC_CHC && R.nasked < FLOWS_MAX)
		R.asked[R.nasked++] = (typeof(R.asked[0])){.flow = flow, .move = mv->id};
	*s = F_ASKED;
	return true;
}

/* ---- state in messages ---------------------------------------------------------------------------- */

unsigned int sc_pack_flow(const struct sc_ref *r, unsigned int n, uint8_t *buf, uint32_t room, uint32_t *len,
			  unsigned int *consumed)
{
	unsigned int k = 0;
	uint32_t used = 0;

	while (k < n && r[k].flow == r[0].flow) {
		const void *key, *value;
		uint32_t ks, vs, need;
		struct sc_ent e;

		sc_store_get_ref(&r[k], &key, &ks, &value, &vs);
		need = (uint32_t)sizeof(e) + ks + vs;
		if (used + need > room)
			break;
		e = (struct sc_ent){.table = r[k].table, .key_size = (uint16_t)ks, .value_size = vs};
		memcpy(buf + used, &e, sizeof(e));
		memcpy(buf + used + sizeof(e), key, ks);
		memcpy(buf + used + sizeof(e) + ks, value, vs);
		used += need;
		k++;
	}
	*len = used;
	*consumed = k;
	return k;
}

int sc_import_blob(const uint8_t *data, uint32_t len, uint32_t nent, uint32_t flow)
{
	uint32_t off = 0, i;

	for (i = 0; i < nent; i++) {
		struct sc_ent e;
		int rc;

		if (off + sizeof(e) > len)
			return -EINVAL;
		memcpy(&e, data + off, sizeof(e));
		if (off + sizeof(e) + e.key_size + e.value_size > len)
			return -EINVAL;
		rc = sc_store_import(e.table, data + off + sizeof(e), e.key_size,
				     data + off + sizeof(e) + e.key_size, e.value_size, flow);
		if (rc != 0)
			return rc;
		off += (uint32_t)sizeof(e) + e.key_size + e.value_size;
	}
	return 0;
}

/* Send one flow's entries (refs[0..n), all of one flow) to inbox `to`; returns messages sent or -1. An
 * entry larger than a message cannot move: it is an error, never silently dropped. */
static int send_flow(const struct sc_ref *r, unsigned int n, int to, uint64_t move, enum sc_msg_type type)
{
	unsigned int done = 0, used;
	int msgs = 0;

	do {
		struct sc_msg *m = sc_msg_new(type, move, r[0].flow);
		uint32_t len;

		if (!m)
			return -1;
		sc_pack_flow(r + done, n - done, m->data, (uint32_t)SC_MSG_ROOM, &len, &used);
		if (used == 0 && n > done) {
			sc_msg_free(m);
			return -1;
		}
		m->len = len;
		m->nent = (uint16_t)used;
		done += used;
		m->more = done < n;
		__atomic_fetch_add(&R.sh->move.bytes, len, __ATOMIC_RELAXED);
		if (sc_send(R.slot, to, m) != 0)
			return -1;
		msgs++;
		R.st->msgs_out++;
	} while (done < n);
	return msgs;
}

void sc_exported(const struct sc_ref *r, unsigned int n, unsigned int flows)
{
	struct sc_move *mv = &R.sh->move;
	unsigned int i;

	for (i = 0; i < n; i++)
		sc_store_drop_ref(&r[i]);
	__atomic_fetch_add(&mv->flows, flows, __ATOMIC_RELAXED);
	__atomic_fetch_add(&mv->entries, n, __ATOMIC_RELAXED);
	__atomic_fetch_add(&mv->msgs, flows + 1, __ATOMIC_RELAXED); /* one per flow, and the end */
	__atomic_store_n(&mv->t_last_state, rte_rdtsc(), __ATOMIC_RELAXED);
}

/* The old side, past the drain mark: give up every moved flow (snf: to the new instance; opennf: to the
 * controller; chc: to the store). */
static void export_all(void)
{
	struct sc_move *mv = &R.sh->move;
	int to = R.proto == SC_OPENNF ? SC_INBOX_ONF : mv->to;
	unsigned int n, i, j, flows = 0;
	struct sc_msg *done;

	R.ex_pending = false;
	if (R.proto == SC_CHC) {
		int k = chc_flush(R.ex_move, R.ex_mask);

		if (k < 0) {
			send_fail("chc: flushing the moved flows to the store failed");
			return;
		}
		R.st->flows_out += (uint64_t)k;
		done = sc_msg_new(SC_M_DONE, R.ex_move, 0);
		if (done)
			sc_send(R.slot, SC_INBOX_CTL, done);
		/* a nudge, not the hand-over (that is the store's record): the new instance, asleep with held
		 * packets, asks the store again */
		if ((done = sc_msg_new(SC_M_DONE, R.ex_move, 0)))
			sc_send(R.slot, R.sh->move.to, done);
		return;
	}
	n = sc_store_collect(R.ex_mask, 0, refs, REFS_MAX);
	if (n == REFS_MAX) {
		send_fail("more entries to export than one move can collect");
		return;
	}
	for (i = 0; i < n; i = j) {
		for (j = i; j < n && refs[j].flow == refs[i].flow; j++)
			;
		if (R.proto == SC_S6)
			dir_set(refs[i].flow, to); /* the rest of a departing owner's objects: the new owner's now */
		if (send_flow(refs + i, j - i, to, R.ex_move, SC_M_STATE) < 0) {
			send_fail("cannot send a flow's state (message pool full, or an entry larger than a message)");
			return;
		}
		flows++;
	}
	sc_exported(refs, n, flows);
	R.st->flows_out += flows;
	if (R.proto != SC_S6) { /* s6: the new instance never waits for an end, it pulls what it misses */
		done = sc_msg_new(SC_M_DONE, R.ex_move, 0);
		if (!done || sc_send(R.slot, to, done) != 0)
			send_fail("cannot send DONE");
	}
	if (R.proto != SC_OPENNF && (done = sc_msg_new(SC_M_DONE, R.ex_move, 0)))
		sc_send(R.slot, SC_INBOX_CTL, done);
}

/* S6: answer a pull with the flow's entries (or NONE) and hand the flow over in the directory. */
static void serve_pull(uint32_t flow, int to)
{
	unsigned int n = sc_store_collect(NULL, flow, refs, REFS_MAX), i;
	struct sc_move *mv = &R.sh->move;
	struct sc_msg *m;

	/* the flow is the requester's now; a flow this instance had no state of is handed over only if the
	 * directory still names this instance (else its state is elsewhere: the requester asks there) */
	if (n > 0 || dir_get(flow) == R.slot)
		dir_set(flow, to);
	if (n == 0) {
		m = sc_msg_new(SC_M_NONE, R.ex_move, flow);
		if (m && sc_send(R.slot, to, m) == 0)
			R.st->msgs_out++;
	} else if (send_flow(refs, n, to, R.ex_move, SC_M_STATE) < 0) {
		send_fail("s6: cannot answer a pull");
		return;
	}
	for (i = 0; i < n; i++)
		sc_store_drop_ref(&refs[i]);
	R.st->flows_out += n ? 1 : 0;
	__atomic_fetch_add(&mv->pulls, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&mv->flows, n ? 1 : 0, __ATOMIC_RELAXED);
	__atomic_fetch_add(&mv->entries, n, __ATOMIC_RELAXED);
	__atomic_fetch_add(&mv->msgs, 2, __ATOMIC_RELAXED); /* the pull and its answer */
	__atomic_store_n(&mv->t_last_state, rte_rdtsc(), __ATOMIC_RELAXED);
}

static void past_mark(void)
{
	unsigned int i;
	struct sc_msg *m;

	if (R.proto != SC_S6) {
		export_all();
		return;
	}
	R.ex_pending = false;
	R.ex_serving = true;
	for (i = 0; i < R.npulls; i++)
		serve_pull(R.pulls[i].flow, R.pulls[i].to);
	R.npulls = 0;
	if ((m = sc_msg_new(SC_M_READY, R.ex_move, 0)))
		sc_send(R.slot, SC_INBOX_CTL, m);
}

static void on_msg(struct sc_msg *m)
{
	struct sc_move *mv = &R.sh->move;

	R.st->msgs_in++;
	switch (m->type) {
	case SC_M_IMPORT: /* the move record in the control memzone is this move's until it ends */
		if (R.proto == SC_S6)
			break; /* S6 needs no move: a flow without state here is looked up in the directory */
		if (R.nin == IN_MAX) {
			send_fail("more moves into one instance at once than it tracks");
			break;
		}
		R.in[R.nin] = (struct in_move){.id = m->move,
					       .hold_all = R.proto == SC_OPENNF && R.sh->onf_mode == SC_ONF_ORDER};
		memcpy(R.in[R.nin].mask, mv->buckets, sizeof(R.in[0].mask));
		R.nin++;
		break;
	case SC_M_EXPORT:
		if (R.proto == SC_S6 && R.ex_serving && m->move == R.ex_move) {
			/* s6 scale-in: this owner is leaving; what nobody pulled yet goes to the new owner now */
			export_all();
			break;
		}
		R.ex_move = m->move;
		R.ex_mark = mv->from_mark;
		memcpy(R.ex_mask, mv->buckets, sizeof(R.ex_mask));
		R.ex_pending = true;
		R.ex_serving = false; /* pulls that came before it (the new side may ask first) stay queued */
		break;
	case SC_M_STATE:
		if (sc_import_blob(m->data, m->len, m->nent, m->flow) != 0) {
			send_fail("cannot import a flow's state (table full, or not the same NFs)");
		} else if (!m->more) {
			R.st->flows_in++;
			if (R.proto == SC_OPENNF) { /* every import is acknowledged to the controller */
				struct sc_msg *ack = sc_msg_new(SC_M_ACK, m->move, m->flow);

				if (ack && sc_send(R.slot, SC_INBOX_ONF, ack) == 0)
					R.st->msgs_out++;
			} else {
				flow_ready(m->flow);
			}
		}
		break;
	case SC_M_NONE: /* s6: the owner had no state of it */
		flow_ready(m->flow);
		break;
	case SC_M_DONE: /* snf: the old instance exported everything (chc: a nudge to ask the store) */
		if (R.proto == SC_SNF && in_find(m->move))
			in_finish(in_find(m->move));
		break;
	case SC_M_PULL:
		if (R.ex_serving)
			serve_pull(m->flow, m->src);
		else if (R.npulls < PULLS_MAX)
			R.pulls[R.npulls++] = (typeof(R.pulls[0])){.flow = m->flow, .to = m->src};
		else
			send_fail("s6: too many pulls before the drain mark");
		break;
	case SC_M_RELEASED: /* opennf: every buffered packet is on our packet ring */
		if (in_find(m->move))
			in_find(m->move)->released = true;
		break;
	default:
		break;
	}
	sc_msg_free(m);
}

/* CHC: one round trip to the store per move in progress, for the flows this instance holds packets of. */
static void chc_poll(void)
{
	static uint32_t flows[FLOWS_MAX];
	static int found[FLOWS_MAX];
	unsigned int k, i, n, kept;

	for (k = 0; k < R.nin;) {
		struct in_move *mv = &R.in[k];
		unsigned int flushed = 0;
		bool done = false;

		for (i = 0, n = 0; i < R.nasked; i++)
			if (R.asked[i].move == mv->id)
				flows[n++] = R.asked[i].flow;
		if (chc_fetch(mv->id, flows, n, found, &done, &flushed) != 0) {
			R.st->store_errors++;
			return;
		}
		for (i = 0, n = 0, kept = 0; i < R.nasked; i++) {
			if (R.asked[i].move != mv->id) {
				R.asked[kept++] = R.asked[i];
				continue;
			}
			if (found[n] || done) { /* its state arrived, or the old side had none for it */
				R.st->flows_in += found[n] ? 1 : 0;
				mv->fetched += found[n] ? 1 : 0;
				flow_ready(R.asked[i].flow);
			} else {
				R.asked[kept++] = R.asked[i];
			}
			n++;
		}
		R.nasked = kept;
		for (i = 0; i < R.nasked && R.asked[i].move != mv->id; i++)
			;
		if (done && i == R.nasked && mv->fetched >= flushed)
			in_finish(mv); /* every flow the old side flushed is here: the move is over for this side */
		else
			k++;
	}
}

static void account_release(struct held *h, uint64_t now)
{
	uint64_t dt = now - h->tsc;

	R.st->hold_cycles += dt;
	if (dt > R.st->hold_max_cycles)
		R.st->hold_max_cycles = dt;
}

unsigned int sc_take(struct rte_ring *rx, struct rte_mbuf **m, unsigned int burst)
{
	struct rte_mbuf *in[burst];
	struct sc_msg *msg;
	unsigned int n = 0, k, i;
	uint64_t now;

	while ((msg = sc_recv(R.slot)) != NULL)
		on_msg(msg);
	if (R.ex_pending && R.st->rx_taken >= R.ex_mark)
		past_mark();
	if (R.proto == SC_CHC && R.nin && R.nasked)
		chc_poll(); /* one round trip per batch while it holds flows; asleep it costs nothing */
	/* 1. what the OpenNF controller handed over: older than anything on rx */
	if (R.proto == SC_OPENNF) {
		n = rte_ring_sc_dequeue_burst(sc_pkt_ring(R.slot), (void **)m, burst, NULL);
		for (k = 0; n == 0 && k < R.nin;)
			if (R.in[k].released)
				in_finish(&R.in[k]); /* the buffer went first: now what waited on rx */
			else
				k++;
		if (n)
			return n;
	}
	/* 2. packets whose flow's state arrived, in the order they came */
	now = rte_rdtsc();
	while (n < burst && R.release.n) {
		struct held *h = &R.release.e[R.release.head];

		account_release(h, now);
		m[n++] = h->m;
		R.release.head = (R.release.head + 1) & (HOLD_MAX - 1);
		R.release.n--;
	}
	if (R.release.n || n == burst)
		return n; /* rx after them, never before */
	/* 3. new packets */
	k = rte_ring_sc_dequeue_burst(rx, (void **)in, burst - n, NULL);
	R.st->rx_taken += k;
	for (i = 0; i < k; i++) {
		uint32_t flow = in[i]->hash.usr;

		if (!must_hold(flow)) {
			m[n++] = in[i];
			continue;
		}
		if (R.hold.n == HOLD_MAX) {
			rte_pktmbuf_free(in[i]);
			R.st->hold_drops++;
			continue;
		}
		fifo_push(&R.hold, in[i], flow, now);
		R.st->held++;
		R.st->held_now = R.hold.n;
		if (R.hold.n > R.st->held_max)
			R.st->held_max = R.hold.n;
	}
	/* past the mark now? Not here: the batch just taken has not been through the NFs yet, and the state
	 * must leave after it (sc_pending keeps the instance awake; the next call exports first thing) */
	return n;
}

bool sc_pending(void)
{
	if (!R.active)
		return false;
	if (!sc_inbox_empty(R.slot) || R.release.n || (R.ex_pending && R.st->rx_taken >= R.ex_mark))
		return true;
	if (R.proto == SC_OPENNF) {
		unsigned int k;

		if (!rte_ring_empty(sc_pkt_ring(R.slot)))
			return true;
		for (k = 0; k < R.nin; k++)
			if (R.in[k].released)
				return true;
	}
	return false;
}

int sc_runtime_setup(struct sp_ctl *ctl, char *err, size_t errlen)
{
	R.ctl = ctl;
	R.sh = &ctl->scaling;
	R.proto = (enum sc_protocol)ctl->scaling.protocol;
	if (R.proto == SC_SHARED)
		return 0;
	if (sc_msg_attach(ctl) != 0) {
		snprintf(err, errlen, "scaling %s: its message pool and rings are missing", sc_protocol_name(R.proto));
		return -1;
	}
	sc_store_install(NULL);
	sp_batch_hooks = &store_hooks;
	if (R.proto == SC_S6)
		sc_store_on_new(s6_on_new_entry);
	R.active = true;
	return 1;
}

bool sc_runtime_active(void) { return R.active; }

void sc_runtime_begin(int slot)
{
	struct sc_inst *st = &R.sh->inst[slot];
	char err[200];

	R.slot = slot;
	R.st = st;
	R.nin = 0;
	R.ex_pending = R.ex_serving = false;
	R.hold.n = R.release.n = 0;
	R.npulls = R.nasked = 0;
	freset();
	if (R.proto == SC_CHC && chc_connect(R.ctl, err, sizeof(err)) != 0)
		snprintf(st->error, sizeof(st->error), "%.*s", (int)sizeof(st->error) - 1, err); /* fetches retry */
}

void sc_runtime_end(void)
{
	unsigned int i;

	/* packets still held when the instance stops cannot be served: they are counted as hold drops */
	for (i = 0; i < R.hold.n; i++)
		rte_pktmbuf_free(R.hold.e[(R.hold.head + i) & (HOLD_MAX - 1)].m);
	for (i = 0; i < R.release.n; i++)
		rte_pktmbuf_free(R.release.e[(R.release.head + i) & (HOLD_MAX - 1)].m);
	if (R.st)
		R.st->hold_drops += R.hold.n + R.release.n;
	R.hold.n = R.release.n = 0;
	sc_store_forget();
	if (R.proto == SC_CHC)
		chc_disconnect();
}
