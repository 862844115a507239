/*
 * instance_manager.c: the Instance Manager's requests. start_instance claims an instance slot (the State
 * Manager splits global|write state for it), has the startup method give it a process (instance_process.c),
 * waits until the runtime reports ready and only then routes packets to it; with a per-NF chaining it
 * starts an instance set, one instance per position. stop_instance retires a slot: out of the routing
 * table, the process stopped (or returned to the pool), its rings drained, its state merged back.
 * Separate from the periodic duties (instance_tick.c), which use these same steps on their own.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_pause.h>

#include "control_int.h"
#include "handover.h"

static uint64_t drain_ring(struct rte_ring *r)
{
	uint64_t n = 0;
	void *m;

	while (rte_ring_sc_dequeue(r, &m) == 0) {
		rte_pktmbuf_free(m);
		n++;
	}
	return n;
}

/* Packets an instance slot leaves in its rings are dropped, and counted: with per-NF chaining as the hop's
 * `stranded` (delivery.h: every drop attributed to a hop), with consolidated chaining as its SFC's. */
static void drain_slot(int slot, bool rx, bool tx)
{
	struct sp_instance *in = &D->ctl->inst[slot];
	uint64_t n = (rx ? drain_ring(D->rx[slot]) : 0) + (tx ? drain_ring(D->tx[slot]) : 0);

	if (!n || in->sfc < 0 || in->sfc >= SP_MAX_SFCS)
		return;
	if (!D->delivery->per_nf)
		__atomic_fetch_add(&D->ctl->sfcs[in->sfc].stranded, n, __ATOMIC_RELAXED);
	else if (in->position >= 0 && in->position < SP_MAX_POS)
		__atomic_fetch_add(&D->ctl->delivery.hop[in->sfc][in->position].stranded, n, __ATOMIC_RELAXED);
}

/* ctl->slots_hi (ctl.h): the data path's loops over the slots stop there. Raised before a slot can hold
 * anything the data path looks at (it is still FREE then), lowered only past slots that are FREE again. */
static void slots_hi_raise(int slot)
{
	if ((uint32_t)slot + 1 > D->ctl->slots_hi)
		__atomic_store_n(&D->ctl->slots_hi, (uint32_t)slot + 1, __ATOMIC_RELEASE);
}

static void slots_hi_lower(void)
{
	uint32_t hi = D->ctl->slots_hi;

	while (hi > 0 && __atomic_load_n(&D->ctl->inst[hi - 1].state, __ATOMIC_ACQUIRE) == INST_FREE)
		hi--;
	__atomic_store_n(&D->ctl->slots_hi, hi, __ATOMIC_RELEASE);
}

/* Claim a free instance slot for SFC sfc (the State Manager splits global/write state for it, in the
 * SFC's tenant's region), and a waiting pool process to serve it if there is one (*pool, else -1: a cold
 * start). Any slot can take any pool process of the tenant, or one that served no tenant yet. *chosen:
 * when they were chosen, before the State Manager's split (start_instance's steps). */
static int claim_slot(int sfc, int *pool, uint64_t *chosen)
{
	int i, t = D->sfc_tenant[sfc];
	struct sm_region *r = tr_region(t);

	if (!r)
		return -1;
	for (i = 0; i < (int)D->ctl->max_instances; i++)
		if (D->ctl->inst[i].state == INST_FREE) {
			*pool = D->starter->resident == ST_RES_POOL ? pool_pick(t) : -1;
			*chosen = mono_ns();
			sm_set_region(r); /* a remote store's hooks ask for the current region */
			if (sm_instance_claim_at(r, i) != i) {
				sm_set_region(D->state);
				continue;
			}
			sm_set_region(D->state);
			D->slot_tenant[i] = (int8_t)t;
			return i;
		}
	return -1;
}

/* The State Manager's merge of the slot's state back, in the region of the tenant it was started for. */
static void release_slot_state(int slot)
{
	struct sm_region *r = tr_region(D->slot_tenant[slot]);

	if (!r)
		return;
	sm_set_region(r);
	sm_instance_release(r, slot);
	sm_set_region(D->state);
}

/* The slot's runtime asks for its descriptors (ctl.h, region_req): hand it the region of the tenant
 * serpensd started the slot for and the images of the SFC it started there (handover.h) — never what the
 * request or the slot (in writable shared memory) name. */
static void serve_region_req(int slot, int sfc, pid_t pid)
{
	struct sp_instance *in = &D->ctl->inst[slot];
	char err[256];

	if (!__atomic_load_n(&in->region_req, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&in->region_req, 0, __ATOMIC_RELEASE);
	if (ho_send(pid, D->slot_tenant[slot], true, sfc, err, sizeof(err)) != 0)
		fprintf(stderr, "serpensd: instance %d: %s\n", slot, err);
}

/* A start's steps (docs/startup.md, "serpensd's start path, step by step"), ns: consecutive intervals from
 * the request's receipt to the control thread seeing the last instance ready (startup_us), then the tail,
 * its routes (routes_us). An instance set adds its instances' steps up. */
struct start_steps {
	uint64_t parse;      /* request received (control socket) -> the Instance Manager has it */
	uint64_t choose;     /* -> a slot (pool process) chosen; a fork start's zygote launched if it had none */
	uint64_t state;      /* -> the State Manager's split for the slot done, the slot reset */
	uint64_t wake;       /* -> the runtime runs (pooled: its futex wait returned; exec'd: fork + exec + EAL
			      * init; forked: the zygote forked it) */
	uint64_t map;        /* the loaders' map, summed over the NFs it loaded (fork: 0, the zygote did it) */
	uint64_t init;       /* their init, summed (fork: 0) */
	uint64_t ready;      /* the rest of the runtime's work until it published READY */
	uint64_t seen;       /* -> the control thread saw READY */
	uint64_t set_routes; /* an instance set: the routes of its instances but the last, published in between */
	uint64_t routes;     /* tail, outside startup_us: the routes (and flow moves) that let packets reach it */
};

/* A pooled start whose runtime runs on CPUs the control thread does not (start_placement_setup): the
 * control thread polls for READY this long before it sleeps on the state word. Being woken across CPUs
 * costs 15-30 µs on this VM, about as long as a one-NF start itself, and the control thread has nothing
 * else to do meanwhile (one request at a time); bounded because its CPU is shared (the generator's on
 * this machine kind). Long enough for a pooled dlopen of three NFs (~0.5 ms). Never when the runtime may
 * run on the control thread's own CPU: polling there would keep it from running. */
#define START_SPIN_NS (1000 * 1000ull)
static bool start_spin;

static uint64_t clamp(uint64_t v, uint64_t lo, uint64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The runtime's stamps (ctl.h, start_*) into steps between t_state (serpensd woke or spawned it) and t_seen;
 * clamped into that interval so that the steps always tile it, whatever a runtime wrote. */
static void runtime_steps(const struct sp_instance *in, uint64_t t_state, uint64_t t_seen, struct start_steps *s)
{
	uint64_t woke = clamp(in->start_woke_ns, t_state, t_seen);
	uint64_t ready = clamp(in->start_ready_ns, woke, t_seen);
	uint64_t map = RTE_MIN(in->start_map_ns, ready - woke);
	uint64_t init = RTE_MIN(in->start_init_ns, ready - woke - map);

	s->wake += woke - t_state;
	s->map += map;
	s->init += init;
	s->ready += ready - woke - map - init;
	s->seen += t_seen - ready;
}

static json_t *steps_json(const struct start_steps *s)
{
	return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "parse_us", s->parse / 1e3, "choose_us",
			 s->choose / 1e3, "state_us", s->state / 1e3, "wake_us", s->wake / 1e3, "map_us", s->map / 1e3,
			 "init_us", s->init / 1e3, "ready_us", s->ready / 1e3, "seen_us", s->seen / 1e3,
			 "set_routes_us", s->set_routes / 1e3);
}

/* One start in progress: what launch_one did, for await_step and finish_one. A start is these three, in that
 * order, whether start_instance starts one instance (start_one_at) or start_instances starts N together
 * (launch every one, then await them all, then finish each): the same code either way. */
struct start_ctx {
	int sfc, pos, slot, pool;
	bool pooled, forked;
	pid_t pid;
	uint64_t t0, t_prev, t_chosen, t_state, t_seen;
};

/* Claim a slot for one instance of SFC `sfc` running position `pos` (-1: the whole SFC), reset it and give
 * it a process: wake a pool process, ring the SFC's zygote, or spawn a runtime. NULL, or the reply of a
 * start that failed (nothing left claimed). t_prev: the end of the previous step (the steps' start). */
static json_t *launch_one(int sfc, int pos, uint64_t t_prev, struct start_ctx *c)
{
	struct sp_instance *in;
	char zerr[400];

	*c = (struct start_ctx){.sfc = sfc, .pos = pos, .slot = -1, .t0 = mono_ns(), .t_prev = t_prev,
				.forked = D->starter->resident == ST_RES_ZYGOTE};
	c->t_chosen = c->t0;
	if (sfc < 0 || sfc >= SP_MAX_SFCS || !D->ctl->sfcs[sfc].used)
		return fail("start_instance: no SFC with id %d", sfc);
	if (c->forked && !D->zygote_pid[sfc] && zygote_launch(sfc, zerr, sizeof(zerr)) != 0)
		return fail("start_instance: %s", zerr); /* its zygote died: a new one first */
	c->slot = claim_slot(sfc, &c->pool, &c->t_chosen); /* splits global/write state for it */
	c->pooled = c->slot >= 0 && c->pool >= 0;
	if (c->slot < 0)
		return fail("start_instance %s: all %u instance slots are in use (serpensd --max-instances)",
			    D->ctl->sfcs[sfc].name, D->ctl->max_instances);
	slots_hi_raise(c->slot);
	in = &D->ctl->inst[c->slot];
	drain_slot(c->slot, true, true); /* what the slot's last instance left */
	memset(&in->pkts_in, 0, offsetof(struct sp_instance, rx_ring) - offsetof(struct sp_instance, pkts_in));
	in->sfc = sfc;
	in->position = pos;
	in->sleeping = in->done = in->stop = 0;
	in->error[0] = '\0';
	in->region_req = 0;
	in->exit_status = 0;
	in->exited = 0;
	in->exited_status = 0;
	D->forked[c->slot] = c->forked;
	memset(&D->ctl->scaling.inst[c->slot], 0, sizeof(D->ctl->scaling.inst[c->slot]));
	__atomic_store_n(&in->state, INST_STARTING, __ATOMIC_RELEASE);
	c->t_state = mono_ns();
	if (c->pooled) { /* wake a waiting pool process: it takes the slot, loads the SFC's NFs, reports ready */
		pool_hand(c->pool, c->slot, c->sfc);
		c->pid = D->pid[c->slot];
	} else if (c->forked) { /* the SFC's zygote forks the instance into this slot */
		struct st_start st = {.doorbell = &D->ctl->zygote[sfc].doorbell};

		in->doorbell = 0;
		in->pid = 0;
		D->pid[c->slot] = 0;
		__atomic_store_n(&D->ctl->zygote[sfc].target, c->slot, __ATOMIC_SEQ_CST);
		D->starter->start(&st);
		c->pid = 0;
	} else {
		in->doorbell = 0;
		c->pid = spawn_runtime(c->slot);
		if (c->pid < 0) {
			in->state = INST_FREE;
			release_slot_state(c->slot);
			slots_hi_lower();
			return fail("start_instance: fork failed: %s", strerror(errno));
		}
	}
	return NULL;
}

/* One look at a launched start: serve its runtime's region request, notice a death or the timeout. true
 * while it is still starting; false once it left STARTING (READY, or DEAD with the cause in its error),
 * with t_seen set. */
static bool await_step(struct start_ctx *c)
{
	struct sp_instance *in = &D->ctl->inst[c->slot];
	int status;

	if (__atomic_load_n(&in->state, __ATOMIC_ACQUIRE) != INST_STARTING) {
		c->t_seen = mono_ns();
		return false;
	}
	/* a forked instance inherits its zygote's mapping and never asks */
	if (!c->forked)
		serve_region_req(c->slot, c->sfc, c->pid);
	if (slot_exited(c->slot, &status)) {
		in->exit_status = status;
		in->state = INST_DEAD;
	} else if (c->forked && !in->pid && D->zygote_pid[c->sfc] > 0 &&
		   waitpid(D->zygote_pid[c->sfc], &status, WNOHANG) == D->zygote_pid[c->sfc]) {
		snprintf(in->error, sizeof(in->error), "its zygote died before it forked the instance");
		D->zygote_pid[c->sfc] = 0;
		D->ctl->zygote[c->sfc].state = ZY_NONE;
		in->state = INST_DEAD;
	} else if (mono_ns() - c->t0 > READY_TIMEOUT_NS) {
		slot_kill(c->slot, &status);
		snprintf(in->error, sizeof(in->error), "did not become ready within %llu s",
			 READY_TIMEOUT_NS / 1000000000ull);
		in->state = INST_DEAD;
	} else {
		return true;
	}
	c->t_seen = mono_ns();
	return false;
}

/* Wait for one launched start to leave STARTING. */
static void await_one(struct start_ctx *c)
{
	struct sp_instance *in = &D->ctl->inst[c->slot];

	if (c->pooled && start_spin) {
		uint64_t until = c->t_state + START_SPIN_NS;

		while (mono_ns() < until) {
			if (!await_step(c))
				return;
			rte_pause();
		}
	}
	/* the runtime wakes this futex when it leaves STARTING (runtime.c); the timeout only bounds how late a
	 * crash is noticed. (A nanosleep here cost ~55 µs per start: timer slack.) */
	while (await_step(c))
		sp_futex_wait(&in->state, INST_STARTING, 1000 * 1000L);
}

/* After await: a start that failed is cleaned up (the reply says why); a ready one gets its steps added to
 * *s and its routes (and share of the flows) — *t_end is when they were published — and the reply. */
static json_t *finish_one(struct start_ctx *c, bool pin, struct start_steps *s, uint64_t *t_end)
{
	struct sp_instance *in = &D->ctl->inst[c->slot];
	int slot = c->slot, sfc = c->sfc, status;
	pid_t pid = c->pid;
	char zerr[400];
	json_t *moves;

	if (in->state != INST_READY) {
		char why[300];
		bool back_in_pool = pool_back(slot); /* it could not load the NFs, and waits again */

		snprintf(why, sizeof(why), "%s", in->error[0] ? in->error : "the runtime exited");
		if (!back_in_pool && slot_exited(slot, &status))
			in->exit_status = status;
		in->state = INST_FREE;
		D->pid[slot] = 0;
		release_slot_state(slot);
		pool_leave(slot, back_in_pool); /* a pool process that died with it is replaced */
		slots_hi_lower();
		return fail("start_instance %s: %s", D->ctl->sfcs[sfc].name, why);
	}
	D->startup_ns[slot] = c->t_seen - c->t_prev;
	s->choose += c->t_chosen - c->t_prev;
	s->state += c->t_state - c->t_chosen;
	runtime_steps(in, c->t_state, c->t_seen, s);
	if (c->pooled && __atomic_load_n(&D->ctl->pool[c->pool].cpus, __ATOMIC_ACQUIRE)) {
		/* --start-placement: it started elsewhere; it serves on the instance CPU (its lcore's, as
		 * runtime_spawn put it). Moved from here, after READY was seen: a sleeping runtime just
		 * changes its mask, a running one migrates — outside startup_us either way. */
		cpu_set_t serve;

		CPU_ZERO(&serve);
		CPU_SET(D->instance_lcore, &serve);
		sched_setaffinity(pid, sizeof(serve), &serve);
	}
	if (c->forked)
		pid = D->pid[slot] = in->pid; /* written by the child before it said ready */
	in->last_pkt_tsc = rte_rdtsc();
	moves = json_array();
	if (D->delivery->per_nf) {
		control_publish_routes(D);
	} else if (sc_scale_out(sfc, slot, pin, moves, zerr, sizeof(zerr)) != 0) { /* its share of the flows */
		json_decref(moves);
		return fail("start_instance %s: instance %d started, but moving flows to it failed: %s",
			    D->ctl->sfcs[sfc].name, slot, zerr);
	}
	*t_end = mono_ns();
	s->routes += *t_end - c->t_seen;
	return json_pack("{s:b, s:i, s:i, s:f, s:b, s:s, s:s, s:o}", "ok", 1, "instance", slot, "pid", (int)pid,
			 "startup_us", (double)D->startup_ns[slot] / 1e3, "pooled", c->pooled, "startup",
			 D->starter->name, "loader", in->loader, "moves", moves);
}

/* Start one instance of SFC `sfc` running position `pos` (-1: the whole SFC); its steps from t_prev (the end
 * of the previous step) are added to *s, and *t_end is when its routes were published. */
static json_t *start_one_at(int sfc, int pos, bool pin, uint64_t t_prev, struct start_steps *s, uint64_t *t_end)
{
	struct start_ctx c;
	json_t *err = launch_one(sfc, pos, t_prev, &c);

	if (err)
		return err;
	await_one(&c);
	return finish_one(&c, pin, s, t_end);
}

/* The reply's steps (and routes_us, the tail) for a start received at t_req whose instances were seen ready
 * at t_seen: startup_us is t_seen - t_req, which the steps tile. */
static void add_steps(json_t *rep, const struct start_steps *s, uint64_t t_req, uint64_t t_seen)
{
	json_object_set_new(rep, "startup_us", json_real((double)(t_seen - t_req) / 1e3));
	json_object_set_new(rep, "steps", steps_json(s));
	json_object_set_new(rep, "routes_us", json_real((double)s->routes / 1e3));
}

/* Start one instance of SFC `sfc` running position `pos` (-1: the whole SFC), with no request before it (the
 * periodic duties: a crashed one's replacement, an on-demand start). */
json_t *start_one(int sfc, int pos, bool pin)
{
	struct start_steps s = {0};
	uint64_t t0 = mono_ns(), t_end = t0;
	json_t *rep = start_one_at(sfc, pos, pin, t0, &s, &t_end);

	if (json_is_true(json_object_get(rep, "ok")))
		add_steps(rep, &s, t0, t_end - s.routes);
	return rep;
}

/* start_instance: one instance of the whole SFC, or — with per-NF chaining — an instance set, one per
 * position, in position order. The reply keeps the one-instance fields (the set's first slot and pid,
 * startup_us of the whole set, pooled if all were) and adds the set: "instances" and "positions". A set
 * that cannot be completed is taken down again. startup_us runs from t_req, the request's receipt, to the
 * control thread seeing the (last) instance ready; "steps" tile it and "routes_us" follows it. */
json_t *start_instance_at(int sfc, bool pin, uint64_t t_req)
{
	json_t *rep, *one, *slots, *positions;
	uint64_t t0 = mono_ns(), t_prev = t0;
	struct start_steps s = {0};
	bool pooled = true;
	unsigned int p, npos;

	t_req = t_req && t_req <= t0 ? t_req : t0;
	s.parse = t0 - t_req;
	if (!D->delivery->per_nf) {
		rep = start_one_at(sfc, -1, pin, t0, &s, &t_prev);
		if (json_is_true(json_object_get(rep, "ok")))
			add_steps(rep, &s, t_req, t_prev - s.routes);
		return rep;
	}
	if (sfc < 0 || sfc >= SP_MAX_SFCS || !D->ctl->sfcs[sfc].used)
		return fail("start_instance: no SFC with id %d", sfc);
	npos = D->ctl->sfcs[sfc].npos;
	slots = json_array();
	positions = json_array();
	rep = NULL;
	for (p = 0; p < npos; p++) {
		/* the routes of the instance before this one were published inside the set's start */
		s.set_routes += s.routes;
		s.routes = 0;
		one = start_one_at(sfc, (int)p, false, t_prev, &s, &t_prev);
		if (!json_is_true(json_object_get(one, "ok"))) {
			size_t i;
			json_t *v;

			json_array_foreach(slots, i, v)
				retire((int)json_integer_value(v), false);
			json_decref(slots);
			json_decref(positions);
			json_decref(rep);
			return one;
		}
		json_array_append(slots, json_object_get(one, "instance"));
		json_array_append_new(positions, json_integer(p));
		pooled &= json_is_true(json_object_get(one, "pooled"));
		if (!rep)
			rep = one;
		else
			json_decref(one);
	}
	add_steps(rep, &s, t_req, t_prev - s.routes);
	json_object_set_new(rep, "pooled", json_boolean(pooled));
	json_object_set_new(rep, "instances", slots);
	json_object_set_new(rep, "positions", positions);
	return rep;
}

json_t *start_instance(int sfc, bool pin) { return start_instance_at(sfc, pin, 0); }

/* The zygote takes one target at a time (runtime.c, zygote_loop): wait until it took the last one before
 * naming the next. false: it did not within READY_TIMEOUT_NS (dead or hung; the starts' own checks say). */
static bool zygote_took(int sfc)
{
	uint64_t t0 = mono_ns();

	while (__atomic_load_n(&D->ctl->zygote[sfc].target, __ATOMIC_ACQUIRE) >= 0) {
		if (mono_ns() - t0 > READY_TIMEOUT_NS)
			return false;
		sched_yield(); /* it may need this CPU to take it */
	}
	return true;
}

/* The pool processes pool_pick could hand a start of the tenant: waiting, and this tenant's or no one's yet. */
static unsigned int pool_waiting(int tenant)
{
	unsigned int p, n = 0;

	for (p = 0; p < D->pool_size; p++)
		n += __atomic_load_n(&D->ctl->pool[p].state, __ATOMIC_ACQUIRE) == POOL_WAITING &&
		     (D->pool_tenant[p] == tenant || D->pool_tenant[p] < 0);
	return n;
}

/* start_instances: n instances of SFC `sfc` (whole-SFC instances: consolidated chaining) started together,
 * as Fig. 11(a) starts them: every one launched back to back (launch_one, as start_instance does), then all
 * awaited, then each finished (its routes) in slot order. All or nothing: if one fails, the others are
 * stopped again and the reply is the first failure, naming which of the n it was. all_ready_us runs from the
 * request's receipt (t_req) to the control thread seeing the last one ready; each instance's startup_us from
 * t_req to it being seen ready, and its steps tile the time from the end of the previous one's launch.
 * pooled_only: refused unless n pool processes wait (no start of the n is a cold start). */
json_t *start_instances_at(int sfc, unsigned int n, bool pooled_only, uint64_t t_req)
{
	struct start_ctx *c;
	struct start_steps *s;
	uint64_t t0 = mono_ns(), t_prev = t0, t_last = t0, t_end;
	json_t *rep = NULL, *list, *one;
	unsigned int i, launched = 0, pending, nfree = 0;
	bool pooled = true;

	if (D->delivery->per_nf)
		return fail("start_instances: starts whole-SFC instances; --chaining %s starts one per NF "
			    "(use start_instance)", D->delivery->name);
	if (sfc < 0 || sfc >= SP_MAX_SFCS || !D->ctl->sfcs[sfc].used)
		return fail("start_instances: no SFC with id %d", sfc);
	for (i = 0; i < D->ctl->max_instances; i++)
		nfree += D->ctl->inst[i].state == INST_FREE;
	if (n < 1 || n > nfree)
		return fail("start_instances: 'n' must be 1..%u (free instance slots of %u, serpensd --max-instances)",
			    nfree, D->ctl->max_instances);
	if (pooled_only) { /* Fig. 11(a)'s pooled methods: every start from the pool, none a cold start */
		unsigned int waiting = pool_waiting(D->sfc_tenant[sfc]);

		if (D->starter->resident != ST_RES_POOL)
			return fail("start_instances: 'pooled' needs a pooled startup method (load, serpens), not %s",
				    D->starter->name);
		if (n > waiting)
			return fail("start_instances %s: %u instances: more than the pool's %u waiting processes "
				    "('pooled': pool starts only; serpensd --pool %u)", D->ctl->sfcs[sfc].name, n,
				    waiting, D->pool_size);
	}
	c = calloc(n, sizeof(*c));
	s = calloc(n, sizeof(*s));
	if (!c || !s) {
		free(c);
		free(s);
		return fail("start_instances: out of memory");
	}
	t_req = t_req && t_req <= t0 ? t_req : t0;
	for (i = 0; i < n; i++) {
		s[i].parse = t0 - t_req;
		if (c[0].forked && i > 0 && !zygote_took(sfc)) {
			rep = fail("start_instances %s: instance %u of %u: its zygote did not take the previous "
				   "one within %llu s", D->ctl->sfcs[sfc].name, i + 1, n,
				   READY_TIMEOUT_NS / 1000000000ull);
			break;
		}
		if ((rep = launch_one(sfc, -1, t_prev, &c[i])))
			break;
		launched++;
		t_prev = c[i].t_state;
	}
	/* await them all: a look at each in turn (region requests are served as they come), then sleep on the
	 * first one still starting. Its READY wakes this wait (runtime.c), and nothing is done before it is
	 * ready too, so sleeping on it costs no latency even when others finish first; the timeout only
	 * bounds how late a crash is noticed, as in await_one. (Polling every 20 µs instead cost the control
	 * thread a waitpid per pending start per poll, on the CPUs the starts need.) */
	do {
		int first = -1;

		pending = 0;
		for (i = 0; i < launched; i++) {
			if (c[i].t_seen)
				continue;
			if (await_step(&c[i])) {
				pending++;
				if (first < 0)
					first = (int)i;
			} else if (c[i].t_seen > t_last) {
				t_last = c[i].t_seen;
			}
		}
		if (pending)
			sp_futex_wait(&D->ctl->inst[c[first].slot].state, INST_STARTING, 1000 * 1000L);
	} while (pending);
	list = json_array();
	for (i = 0; i < launched; i++) {
		one = finish_one(&c[i], false, &s[i], &t_end);
		if (!json_is_true(json_object_get(one, "ok"))) {
			if (!rep) {
				const char *why = json_string_value(json_object_get(one, "error"));

				rep = fail("start_instances %s: instance %u of %u (slot %d): %s",
					   D->ctl->sfcs[sfc].name, i + 1, n, c[i].slot, why ? why : "failed");
			}
			json_decref(one);
			continue; /* finish_one freed it, or (its flows could not move) it runs: stopped below */
		}
		json_object_set_new(one, "steps", steps_json(&s[i]));
		json_object_set_new(one, "startup_us", json_real((double)(c[i].t_seen - t_req) / 1e3));
		json_object_set_new(one, "routes_us", json_real((double)s[i].routes / 1e3));
		json_object_del(one, "ok");
		json_object_del(one, "startup");
		pooled &= c[i].pooled;
		json_array_append_new(list, one);
	}
	if (rep) { /* all or nothing: the ones that did start stop again */
		for (i = 0; i < launched; i++)
			if (c[i].slot >= 0 && D->ctl->inst[c[i].slot].state == INST_READY)
				retire(c[i].slot, false);
		json_decref(list);
	} else {
		/* Each finish_one moved flows to its instance from the SFC's instances above their share — but
		 * an SFC that had none before has no bucket owner yet, and with all n ready at once none of them
		 * was the "first instance" that takes every bucket (sc_scale_out): the routes deal the buckets
		 * without a ready owner out to the ready instances in turn. */
		t_end = mono_ns();
		control_publish_routes(D);
		rep = json_pack("{s:b, s:i, s:f, s:f, s:b, s:s, s:o}", "ok", 1, "n", (int)n, "all_ready_us",
				(double)(t_last - t_req) / 1e3, "routes_us", (double)(mono_ns() - t_end) / 1e3,
				"pooled", pooled, "startup", D->starter->name, "instances", list);
	}
	free(c);
	free(s);
	return rep;
}

/* --start-placement, on the control thread before its first request: the CPUs each pool slot's runtime
 * waits and starts on (sp_pool_proc.cpus: a runtime applies it whenever it goes back to the pool, and
 * a pool entry keeps it across refills); the runtimes already waiting are moved at once. With `same` the
 * control thread is pinned to the first CPU it may run on (DPDK's control-thread CPUs: those of no lcore),
 * so that "the requester's vCPU" is one CPU. */
void start_placement_setup(void)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t all = ncpu >= 64 ? ~0ull : (1ull << ncpu) - 1, own = 0, mask;
	/* the instance CPU: runtime_spawn pins runtimes to CPU <instance_lcore> */
	uint64_t inst = D->instance_lcore < 64 ? 1ull << D->instance_lcore : 0;
	cpu_set_t set;
	int i;

	CPU_ZERO(&set);
	pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
	for (i = 0; i < 64; i++)
		if (CPU_ISSET(i, &set))
			own |= 1ull << i;
	if (D->start_placement == SP_PLACE_INSTANCE) {
		start_spin = inst && !(inst & own);
		return;
	}
	if (D->start_placement == SP_PLACE_SAME) {
		own &= -own; /* its lowest CPU */
		CPU_ZERO(&set);
		CPU_SET(__builtin_ctzll(own), &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		mask = own;
	} else if (D->start_placement == SP_PLACE_OTHER) {
		mask = all & ~own ? all & ~own : all; /* every CPU is the control thread's: none other to take */
	} else {
		mask = all;
	}
	start_spin = !(mask & own);
	CPU_ZERO(&set);
	for (i = 0; i < 64; i++)
		if (mask & (1ull << i))
			CPU_SET(i, &set);
	for (i = 0; i < (int)D->pool_size; i++) {
		__atomic_store_n(&D->ctl->pool[i].cpus, mask, __ATOMIC_RELEASE);
		if (D->pool_pid[i] > 0) /* its main thread, which waits in the pool */
			sched_setaffinity(D->pool_pid[i], sizeof(set), &set);
	}
}

/* Take a slot out of service: out of the routing table, stop the process (a pooled one goes back to the
 * pool) or reap it, let the data plane send what it produced, merge its state back. */
uint64_t retire(int slot, bool crashed)
{
	struct sp_instance *in = &D->ctl->inst[slot];
	bool pooled = D->pool_of[slot] >= 0 && !crashed;
	uint64_t t0, processed;
	int status = 0;

	in->state = crashed ? INST_DEAD : INST_STOPPING;
	control_publish_routes(D);
	if (!crashed) {
		__atomic_store_n(&in->stop, SP_STOP_SERVE, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&in->doorbell, 1, __ATOMIC_SEQ_CST);
		sp_futex_wake(&in->doorbell, 1);
		t0 = mono_ns();
		for (;;) {
			if (pooled && pool_back(slot))
				break;
			if (slot_exited(slot, &status)) {
				pooled = false; /* it exited instead of returning to the pool */
				break;
			}
			if (mono_ns() - t0 > STOP_TIMEOUT_NS) {
				slot_kill(slot, &status);
				pooled = false;
				break;
			}
			sleep_us(50);
		}
		in->exit_status = status;
	}
	drain_slot(slot, true, false); /* a crashed instance leaves its queue behind */
	if (D->delivery->collect)
		D->delivery->collect(D); /* its last output: the side that drains its tx ring may sleep */
	t0 = mono_ns();
	while (!rte_ring_empty(D->tx[slot]) && mono_ns() - t0 < 1000000000ull)
		sleep_us(50);
	processed = in->pkts_in;
	release_slot_state(slot);
	D->pid[slot] = 0;
	in->pid = 0;
	__atomic_store_n(&in->state, INST_FREE, __ATOMIC_RELEASE);
	slots_hi_lower();
	pool_leave(slot, pooled); /* back in the pool, or — it died — replaced: the pool stays full */
	return processed;
}

/* Would stopping this instance lose flow state? Yes if the state lives in instances (every --scaling
 * protocol but `shared`) and no other ready instance of its SFC could take its flows. */
bool stop_loses_state(int slot)
{
	int i;

	if (D->delivery->per_nf || !sc_private_state())
		return false;
	for (i = 0; i < SM_MAX_INSTANCES; i++)
		if (i != slot && D->ctl->inst[i].state == INST_READY && D->ctl->inst[i].sfc == D->ctl->inst[slot].sfc)
			return false;
	return true;
}

/* Scale-in: the instance's flows go to the SFC's other instances through the scaling protocol, then it
 * stops. The last instance of an SFC whose flow state lives in instances cannot stop: that state would
 * be lost (scale to zero keeps state only where it is shared). */
json_t *stop_instance(int slot)
{
	json_t *moves;
	char err[400];

	if (slot < 0 || slot >= SM_MAX_INSTANCES || D->ctl->inst[slot].state != INST_READY)
		return fail("stop_instance: no running instance in slot %d", slot);
	if (stop_loses_state(slot))
		return fail("stop_instance: slot %d is the last instance of SFC %s, and with --scaling %s its flows' "
			    "state lives in it: stopping it would lose that state", slot,
			    D->ctl->sfcs[D->ctl->inst[slot].sfc].name,
			    sc_protocol_name((enum sc_protocol)D->ctl->scaling.protocol));
	moves = json_array();
	if (!D->delivery->per_nf && sc_scale_in(slot, moves, err, sizeof(err)) != 0) {
		json_decref(moves);
		return fail("stop_instance %d: moving its flows failed, it keeps running: %s", slot, err);
	}
	return json_pack("{s:b, s:I, s:o}", "ok", 1, "drained", (json_int_t)retire(slot, false), "moves", moves);
}

void control_stop_all(struct serpensd *d)
{
	int i;

	(void)d;
	if (!D)
		return;
	for (i = 0; i < SM_MAX_INSTANCES; i++)
		if (D->ctl->inst[i].state == INST_READY)
			retire(i, false);
	pool_stop_all();
	for (i = 0; i < SP_MAX_SFCS; i++)
		zygote_stop(i);
	sc_control_stop();
}
