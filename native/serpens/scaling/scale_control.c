/*
 * scale_control.c: moves of router buckets, run by serpensd's control thread through the --scaling
 * protocol (scale_shared.h says what each one does; scale_runtime.c and opennf_controller.c are the
 * other sides). One move at a time: the control thread serves one request at a time, so a second move
 * waits for the first; the data plane forwards throughout.
 *
 * Every protocol's move begins the same way: the new instance is told (IMPORT) before any moved packet
 * can reach it, and the route changes in one table publication followed by a grace period, after which
 * the data plane will never again queue a moved flow's packet on the old instance; the old instance's
 * `enq` count at that moment is the drain mark it must reach before its state may leave.
 */
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>

#include "control_int.h"
#include "scale_control.h"
#include "scale_msg.h"
#include "scale_shared.h"

#define MOVE_TIMEOUT_NS (10ull * 1000000000ull)
#define ONF_START_TIMEOUT_NS (15ull * 1000000000ull)

static struct sc_shared *SH;

bool sc_private_state(void) { return SH && SH->protocol != SC_SHARED; }

int sc_control_setup(void)
{
	SH = &D->ctl->scaling;
	if (SH->protocol == SC_SHARED)
		return 0;
	if (D->delivery->per_nf) {
		fprintf(stderr, "serpensd: --scaling %s moves the router's buckets with the whole SFC in one "
				"instance: it needs --chaining consolidated (the proxies route by their own hash)\n",
			sc_protocol_name((enum sc_protocol)SH->protocol));
		return -1;
	}
	if (D->ctl->state_backend != RS_SERPENS) {
		fprintf(stderr, "serpensd: --scaling %s keeps per-flow state in the instances; the rest stays in "
				"the State Manager: it needs --state-backend serpens\n",
			sc_protocol_name((enum sc_protocol)SH->protocol));
		return -1;
	}
	if (SH->protocol == SC_CHC && !D->ctl->redis_port) {
		fprintf(stderr, "serpensd: --scaling chc needs the external store: --redis HOST:PORT\n");
		return -1;
	}
	if (sc_msg_create(D->ctl) != 0)
		return -1;
	if (SH->protocol == SC_OPENNF) {
		char *args[] = {(char *)"-O", NULL};
		uint64_t t0 = mono_ns();

		SH->onf.state = INST_STARTING;
		SH->onf.pid = control_spawn(D, SP_ONF_LCORE, args);
		if (SH->onf.pid <= 0) {
			fprintf(stderr, "serpensd: cannot start the OpenNF controller\n");
			return -1;
		}
		while (__atomic_load_n(&SH->onf.state, __ATOMIC_ACQUIRE) == INST_STARTING) {
			if (mono_ns() - t0 > ONF_START_TIMEOUT_NS) {
				fprintf(stderr, "serpensd: the OpenNF controller did not start\n");
				return -1;
			}
			sp_futex_wait(&SH->onf.state, INST_STARTING, 1000 * 1000L);
		}
		if (SH->onf.state != INST_READY) {
			fprintf(stderr, "serpensd: the OpenNF controller failed: %s\n", SH->onf.error);
			return -1;
		}
	}
	return 0;
}

int control_setup_scaling(struct serpensd *d)
{
	D = d; /* before the control thread exists (control_int.h) */
	return sc_control_setup();
}

void sc_control_stop(void)
{
	if (!SH || SH->protocol != SC_OPENNF || SH->onf.pid <= 0)
		return;
	__atomic_store_n(&SH->onf.state, INST_STOPPING, __ATOMIC_SEQ_CST);
	sc_wake(SC_INBOX_ONF);
}

static double us_between(uint64_t a, uint64_t b)
{
	return b > a ? (double)(b - a) * 1e6 / (double)rte_get_tsc_hz() : 0.0;
}

static json_t *record(const struct sc_move *mv)
{
	unsigned int i, nb = 0;
	char mask[SC_MASK_WORDS * 16 + 1];
	json_t *r;

	for (i = 0; i < SC_MASK_WORDS; i++) {
		nb += (unsigned int)__builtin_popcountll(mv->buckets[i]);
		for (unsigned int k = 0; k < 8; k++) /* little-endian bytes: bucket b is bit b % 8 of byte b / 8 */
			snprintf(mask + i * 16 + k * 2, 3, "%02x", (unsigned int)(mv->buckets[i] >> (8 * k)) & 0xff);
	}
	r = json_pack("{s:I, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f,"
			 " s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "id", (json_int_t)mv->id, "protocol", sc_protocol_name((enum sc_protocol)mv->protocol),
			 "sfc", D->ctl->sfcs[mv->sfc].name, "from", mv->from, "to", mv->to, "buckets", nb,
			 "from_mark", (json_int_t)mv->from_mark, "t_request_tsc", (json_int_t)mv->t_request,
			 "t_switch_tsc", (json_int_t)mv->t_switch, "t_state_done_tsc", (json_int_t)mv->t_state_done,
			 "t_end_tsc", (json_int_t)mv->t_end, "t_last_state_tsc", (json_int_t)mv->t_last_state,
			 "switch_us", us_between(mv->t_request, mv->t_switch),
			 "state_us", us_between(mv->t_switch, mv->t_state_done),
			 "total_us", us_between(mv->t_request, mv->t_end),
			 "last_state_us", us_between(mv->t_request, mv->t_last_state),
			 "flows", (json_int_t)mv->flows, "entries", (json_int_t)mv->entries,
			 "bytes", (json_int_t)mv->bytes, "msgs", (json_int_t)mv->msgs, "pulls", (json_int_t)mv->pulls,
			 "store_rtts", (json_int_t)mv->store_rtts, "diverted", (json_int_t)mv->diverted,
			 "released", (json_int_t)mv->released, "buffer_drops", (json_int_t)mv->buffer_drops);
	json_object_set_new(r, "mask", json_string(mask));
	json_object_set_new(r, "pinned", json_boolean(mv->pinned));
	return r;
}

/* Wait on the control thread's inbox for a message of `want` about move `id` (others are stale: freed).
 * 0, or -1 with err set (a FAIL message, or the timeout). */
static int wait_for(uint16_t want, uint64_t id, char *err, size_t errlen)
{
	uint64_t t0 = mono_ns();
	struct sc_msg *m;

	for (;;) {
		while ((m = sc_recv(SC_INBOX_CTL)) != NULL) {
			uint16_t type = m->type;

			if (m->move == id && type == SC_M_FAIL) {
				snprintf(err, errlen, "%.*s", (int)(m->len ? m->len : 1) - 1, (const char *)m->data);
				sc_msg_free(m);
				return -1;
			}
			sc_msg_free(m);
			if (type == want)
				return 0;
		}
		if (mono_ns() - t0 > MOVE_TIMEOUT_NS) {
			snprintf(err, errlen, "no answer within %llu s", MOVE_TIMEOUT_NS / 1000000000ull);
			return -1;
		}
		sleep_us(5); /* the data plane is on its own thread: a poll here costs it nothing */
	}
}

static int send_to(int box, uint16_t type, uint64_t id, char *err, size_t errlen)
{
	struct sc_msg *m = sc_msg_new(type, id, 0);

	if (!m || sc_send(SC_INBOX_CTL, box, m) != 0) {
		snprintf(err, errlen, "cannot send a message to %d (message pool or inbox full)", box);
		return -1;
	}
	return 0;
}

/* The route of the move's buckets goes to `slot` (or RT_DIVERT): one publication, one grace period. */
/* --pin-flows: per SFC and bucket, the instances that may still hold flows pinned there (a pinned move
 * leaves its old instance serving the bucket's existing flows); scale-in moves those too. */
static uint32_t pin_holders[SP_MAX_SFCS][RT_BUCKETS];

static void route_to(struct sc_move *mv, int slot)
{
	route_owner_set(mv->sfc, mv->buckets, slot);
	control_publish_routes(D);
}

int sc_move(int sfc, int from, int to, const uint64_t *mask, bool departing, bool pinned, json_t *records,
	    char *err, size_t errlen)
{
	struct sc_move *mv = &SH->move;
	const struct sp_instance *a = &D->ctl->inst[from];
	char why[300];
	int rc = 0;

	memset(&mv->from_mark, 0, sizeof(*mv) - offsetof(struct sc_move, from_mark));
	mv->id++;
	mv->protocol = SH->protocol;
	mv->sfc = sfc;
	mv->from = from;
	mv->to = to;
	memcpy(mv->buckets, mask, sizeof(mv->buckets));
	mv->t_request = rte_rdtsc();
	mv->pinned = pinned;
	__atomic_store_n(&mv->active, 1, __ATOMIC_RELEASE);
	if (D->pin_flows) {
		unsigned int b;

		for (b = 0; b < RT_BUCKETS; b++)
			if ((mask[b / 64] >> (b % 64)) & 1) {
				if (pinned)
					pin_holders[sfc][b] |= 1u << from; /* it keeps the existing flows */
				else
					pin_holders[sfc][b] &= ~(1u << from);
			}
		if (!pinned)
			route_unpin(sfc, mask, from); /* its pins in these buckets lapse: they follow the move */
	}
	if (pinned) { /* E2: new flows go to `to`, every existing one stays with its state: only the route moves */
		route_to(mv, to);
		mv->t_switch = mv->t_state_done = mv->t_end = rte_rdtsc();
		__atomic_store_n(&mv->active, 0, __ATOMIC_RELEASE);
		if (records)
			json_array_append_new(records, record(mv));
		return 0;
	}
	switch ((enum sc_protocol)SH->protocol) {
	case SC_SHARED: /* the state is where the new instance reaches it: only the route moves */
		route_to(mv, to);
		mv->t_switch = mv->t_state_done = mv->t_end = rte_rdtsc();
		break;
	case SC_SNF:
	case SC_S6:
	case SC_CHC:
		if (send_to(to, SC_M_IMPORT, mv->id, why, sizeof(why)) != 0) {
			rc = -1;
			break;
		}
		route_to(mv, to);
		mv->from_mark = __atomic_load_n(&a->enq, __ATOMIC_ACQUIRE);
		mv->t_switch = rte_rdtsc();
		if (send_to(from, SC_M_EXPORT, mv->id, why, sizeof(why)) != 0 ||
		    wait_for(SH->protocol == SC_S6 ? SC_M_READY : SC_M_DONE, mv->id, why, sizeof(why)) != 0) {
			rc = -1;
			break;
		}
		/* s6 pulls lazily; an owner that is about to stop pushes what was not pulled yet */
		if (SH->protocol == SC_S6 && departing &&
		    (send_to(from, SC_M_EXPORT, mv->id, why, sizeof(why)) != 0 ||
		     wait_for(SC_M_DONE, mv->id, why, sizeof(why)) != 0)) {
			rc = -1;
			break;
		}
		mv->t_state_done = mv->t_end = rte_rdtsc();
		break;
	case SC_OPENNF:
		if (send_to(to, SC_M_IMPORT, mv->id, why, sizeof(why)) != 0) {
			rc = -1;
			break;
		}
		route_to(mv, RT_DIVERT); /* packet-ins to the controller */
		mv->from_mark = __atomic_load_n(&a->enq, __ATOMIC_ACQUIRE);
		mv->t_switch = rte_rdtsc();
		if (send_to(SC_INBOX_ONF, SC_M_MOVE, mv->id, why, sizeof(why)) != 0 ||
		    wait_for(SC_M_MOVED, mv->id, why, sizeof(why)) != 0) {
			route_to(mv, from); /* the state did not move: the flows stay where it is */
			rc = -1;
			break;
		}
		mv->t_state_done = rte_rdtsc();
		route_to(mv, to);
		if (send_to(SC_INBOX_ONF, SC_M_ROUTED, mv->id, why, sizeof(why)) != 0 ||
		    wait_for(SC_M_RELEASED, mv->id, why, sizeof(why)) != 0) {
			rc = -1;
			break;
		}
		mv->t_end = rte_rdtsc();
		break;
	default:
		snprintf(why, sizeof(why), "unknown protocol %u", SH->protocol);
		rc = -1;
	}
	__atomic_store_n(&mv->active, 0, __ATOMIC_RELEASE);
	if (rc != 0) {
		snprintf(err, errlen, "move %llu (%s, instance %d -> %d): %s", (unsigned long long)mv->id,
			 sc_protocol_name((enum sc_protocol)SH->protocol), from, to, why);
		return -1;
	}
	if (records)
		json_array_append_new(records, record(mv));
	return 0;
}

static bool serves(int slot, int sfc)
{
	const struct sp_instance *in = &D->ctl->inst[slot];

	return in->state == INST_READY && in->sfc == sfc;
}

int sc_scale_out(int sfc, int slot, bool pinned, json_t *records, char *err, size_t errlen)
{
	unsigned int count[SM_MAX_INSTANCES] = {0}, n = 0, target, b;
	int i;

	for (b = 0; b < RT_BUCKETS; b++) {
		int o = route_owner_get(sfc, (int)b);

		if (o >= 0 && o != slot && serves(o, sfc))
			count[o]++;
	}
	for (i = 0; i < SM_MAX_INSTANCES; i++)
		n += (i == slot || serves(i, sfc)) ? 1 : 0;
	if (n <= 1) { /* the first instance: every bucket, nothing to move */
		control_publish_routes(D);
		return 0;
	}
	target = RT_BUCKETS / n;
	for (i = 0; i < SM_MAX_INSTANCES; i++) {
		uint64_t mask[SC_MASK_WORDS] = {0};
		unsigned int give;

		if (i == slot || count[i] <= target)
			continue;
		give = count[i] - target;
		for (b = RT_BUCKETS; b-- > 0 && give;) /* its highest buckets */
			if (route_owner_get(sfc, (int)b) == i) {
				mask[b / 64] |= 1ull << (b % 64);
				give--;
			}
		if (sc_move(sfc, i, slot, mask, false, pinned, records, err, errlen) != 0)
			return -1;
	}
	return 0;
}

int sc_scale_in(int slot, json_t *records, char *err, size_t errlen)
{
	int sfc = D->ctl->inst[slot].sfc, others[SM_MAX_INSTANCES], n = 0, i, k = 0;
	uint64_t mask[SM_MAX_INSTANCES][SC_MASK_WORDS];
	unsigned int b;

	for (i = 0; i < SM_MAX_INSTANCES; i++)
		if (i != slot && serves(i, sfc))
			others[n++] = i;
	if (n == 0)
		return 0;
	memset(mask, 0, sizeof(mask));
	for (b = 0; b < RT_BUCKETS; b++) /* its buckets dealt out in turn */
		if (route_owner_get(sfc, (int)b) == slot) {
			mask[k][b / 64] |= 1ull << (b % 64);
			k = (k + 1) % n;
		}
	for (i = 0; i < n; i++) {
		bool any = false;
		unsigned int w;

		for (w = 0; w < SC_MASK_WORDS; w++)
			any |= mask[i][w] != 0;
		if (any && sc_move(sfc, slot, others[i], mask[i], true, false, records, err, errlen) != 0)
			return -1;
	}
	/* --pin-flows: flows still pinned to it in buckets another instance owns go to that owner, one move
	 * per owner */
	memset(mask, 0, sizeof(mask));
	for (b = 0; D->pin_flows && b < RT_BUCKETS; b++) {
		int o = route_owner_get(sfc, (int)b);

		if ((pin_holders[sfc][b] & (1u << slot)) && o >= 0 && o != slot)
			mask[o][b / 64] |= 1ull << (b % 64);
	}
	for (i = 0; D->pin_flows && i < SM_MAX_INSTANCES; i++) {
		bool any = false;
		unsigned int w;

		for (w = 0; w < SC_MASK_WORDS; w++)
			any |= mask[i][w] != 0;
		if (any && sc_move(sfc, slot, i, mask[i], true, false, records, err, errlen) != 0)
			return -1;
	}
	return 0;
}

json_t *move_flows(json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "sfc"));
	json_t *jf = json_object_get(req, "from"), *jt = json_object_get(req, "to");
	json_t *jb = json_object_get(req, "buckets"), *jr = json_object_get(req, "fraction"), *records, *v;
	json_t *jp = json_object_get(req, "pin");
	bool pin = json_is_true(jp);
	uint64_t mask[SC_MASK_WORDS] = {0};
	int sfc = find_sfc(name ? name : ""), from, to;
	json_int_t slot;
	unsigned int b, owned = 0, want, picked = 0;
	char err[400];
	size_t i;

	if (sfc < 0)
		return fail("move_flows: no SFC named '%s' is deployed", name ? name : "");
	if (D->delivery->per_nf)
		return fail("move_flows: the router's buckets move with consolidated chaining only");
	if (!jf || !jt)
		return fail("move_flows: 'from' and 'to' (instance slots, 0..%u) are required",
			    D->ctl->max_instances - 1);
	/* checked before the cast to int: a slot 2^32 is not slot 0 */
	if ((v = int_field(req, "move_flows", "from", 0, (json_int_t)D->ctl->max_instances - 1, -1, &slot)))
		return v;
	from = (int)slot;
	if ((v = int_field(req, "move_flows", "to", 0, (json_int_t)D->ctl->max_instances - 1, -1, &slot)))
		return v;
	to = (int)slot;
	if (jr && (!json_is_number(jr) || !(json_number_value(jr) > 0.0 && json_number_value(jr) <= 1.0)))
		return fail("move_flows: 'fraction' must be a number in (0, 1]");
	if (from < 0 || from >= SM_MAX_INSTANCES || !serves(from, sfc))
		return fail("move_flows: no running instance of SFC %s in slot %d", name, from);
	if (to < 0 || to >= SM_MAX_INSTANCES || !serves(to, sfc))
		return fail("move_flows: no running instance of SFC %s in slot %d", name, to);
	if (from == to)
		return fail("move_flows: 'from' and 'to' are the same instance");
	if (jb && jr)
		return fail("move_flows: give 'buckets' or 'fraction', not both");
	if (jp && !json_is_boolean(jp))
		return fail("move_flows: 'pin' is true or false");
	if (pin && !D->pin_flows)
		return fail("move_flows: 'pin' keeps existing flows where they are: serpensd needs --pin-flows");
	if (jb) {
		if (!json_is_array(jb) || json_array_size(jb) == 0)
			return fail("move_flows: 'buckets' is a non-empty list of bucket numbers 0..%d", RT_BUCKETS - 1);
		json_array_foreach(jb, i, v) {
			json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;

			if (!json_is_integer(v))
				return fail("move_flows: 'buckets' item %zu is not an integer (bucket numbers are 0..%d)", i,
					    RT_BUCKETS - 1);
			if (x < 0 || x >= RT_BUCKETS)
				return fail("move_flows: bucket %lld is not in 0..%d", (long long)x, RT_BUCKETS - 1);
			if (route_owner_get(sfc, (int)x) != from)
				return fail("move_flows: bucket %lld is not routed to instance %d", (long long)x, from);
			mask[x / 64] |= 1ull << (x % 64);
		}
	} else {
		double f = jr ? json_number_value(jr) : 0.5;

		if ((jr && !json_is_number(jr)) || !(f > 0.0 && f <= 1.0))
			return fail("move_flows: 'fraction' must be a number in (0, 1]");
		for (b = 0; b < RT_BUCKETS; b++)
			owned += route_owner_get(sfc, (int)b) == from;
		want = (unsigned int)((double)owned * f + 0.5);
		for (b = 0; b < RT_BUCKETS && picked < want; b++)
			if (route_owner_get(sfc, (int)b) == from) {
				mask[b / 64] |= 1ull << (b % 64);
				picked++;
			}
		if (!picked)
			return fail("move_flows: instance %d has no bucket to move", from);
	}
	records = json_array();
	if (sc_move(sfc, from, to, mask, false, pin, records, err, sizeof(err)) != 0) {
		json_decref(records);
		return fail("move_flows: %s", err);
	}
	v = json_pack("{s:b, s:O}", "ok", 1, "move", json_array_get(records, 0));
	json_decref(records);
	return v;
}

json_t *sc_stats(void)
{
	json_t *inst = json_object(), *o;
	int i;

	if (!SH)
		return json_null();
	for (i = 0; i < SM_MAX_INSTANCES; i++) {
		const struct sc_inst *s = &SH->inst[i];

		if (D->ctl->inst[i].state == INST_FREE && !s->held && !s->msgs_in)
			continue;
		o = json_pack("{s:I, s:I, s:I, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "held", (json_int_t)s->held,
			      "held_now", (json_int_t)s->held_now, "held_max", (json_int_t)s->held_max,
			      "hold_us", (double)s->hold_cycles * 1e6 / (double)rte_get_tsc_hz(),
			      "hold_max_us", (double)s->hold_max_cycles * 1e6 / (double)rte_get_tsc_hz(),
			      "hold_drops", (json_int_t)s->hold_drops, "flows_in", (json_int_t)s->flows_in,
			      "flows_out", (json_int_t)s->flows_out, "msgs_in", (json_int_t)s->msgs_in,
			      "msgs_out", (json_int_t)s->msgs_out, "store_errors", (json_int_t)s->store_errors,
			      "error", s->error);
		char k[8];

		snprintf(k, sizeof(k), "%d", i);
		json_object_set_new(inst, k, o);
	}
	return json_pack("{s:s, s:s, s:o, s:o, s:{s:i, s:I, s:I}}", "protocol",
			 sc_protocol_name((enum sc_protocol)SH->protocol), "opennf_mode",
			 SH->onf_mode == SC_ONF_ORDER ? "order-preserving" : "loss-free",
			 "last_move", SH->move.id ? record(&SH->move) : json_null(), "instances", inst, "controller",
			 "pid", SH->onf.pid, "buffered_now", (json_int_t)SH->onf.buffered_now, "buffered_max",
			 (json_int_t)SH->onf.buffered_max);
}
