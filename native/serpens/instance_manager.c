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
	for (i = 0; i < SM_MAX_INSTANCES; i++)
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

/* Start one instance of SFC `sfc` running position `pos` (-1: the whole SFC); its steps from t_prev (the end
 * of the previous step) are added to *s, and *t_end is when its routes were published. */
static json_t *start_one_at(int sfc, int pos, bool pin, uint64_t t_prev, struct start_steps *s, uint64_t *t_end)
{
	struct sp_instance *in;
	json_t *moves;
	uint64_t t0 = mono_ns(), t_chosen = t0, t_state, t_seen;
	bool pooled, forked = D->starter->resident == ST_RES_ZYGOTE;
	char zerr[400];
	int slot, status, pool;
	pid_t pid;

	if (sfc < 0 || sfc >= SP_MAX_SFCS || !D->ctl->sfcs[sfc].used)
		return fail("start_instance: no SFC with id %d", sfc);
	if (forked && !D->zygote_pid[sfc] && zygote_launch(sfc, zerr, sizeof(zerr)) != 0)
		return fail("start_instance: %s", zerr); /* its zygote died: a new one first */
	slot = claim_slot(sfc, &pool, &t_chosen); /* splits global/write state for it */
	pooled = slot >= 0 && pool >= 0;
	if (slot < 0)
		return fail("start_instance %s: all %d instance slots are in use", D->ctl->sfcs[sfc].name,
			    SM_MAX_INSTANCES);
	in = &D->ctl->inst[slot];
	drain_slot(slot, true, true); /* what the slot's last instance left */
	memset(&in->pkts_in, 0, offsetof(struct sp_instance, rx_ring) - offsetof(struct sp_instance, pkts_in));
	in->sfc = sfc;
	in->position = pos;
	in->sleeping = in->done = in->stop = 0;
	in->error[0] = '\0';
	in->region_req = 0;
	in->exit_status = 0;
	in->exited = 0;
	in->exited_status = 0;
	D->forked[slot] = forked;
	memset(&D->ctl->scaling.inst[slot], 0, sizeof(D->ctl->scaling.inst[slot]));
	__atomic_store_n(&in->state, INST_STARTING, __ATOMIC_RELEASE);
	t_state = mono_ns();
	if (pooled) { /* wake a waiting pool process: it takes the slot, loads the SFC's NFs, reports ready */
		pool_hand(pool, slot, sfc);
		pid = D->pid[slot];
	} else if (forked) { /* the SFC's zygote forks the instance into this slot */
		struct st_start st = {.doorbell = &D->ctl->zygote[sfc].doorbell};

		in->doorbell = 0;
		in->pid = 0;
		D->pid[slot] = 0;
		__atomic_store_n(&D->ctl->zygote[sfc].target, slot, __ATOMIC_SEQ_CST);
		D->starter->start(&st);
		pid = 0;
	} else {
		in->doorbell = 0;
		pid = spawn_runtime(slot);
		if (pid < 0) {
			in->state = INST_FREE;
			release_slot_state(slot);
			return fail("start_instance: fork failed: %s", strerror(errno));
		}
	}
	if (pooled && start_spin) {
		uint64_t until = t_state + START_SPIN_NS;

		while (__atomic_load_n(&in->state, __ATOMIC_ACQUIRE) == INST_STARTING && mono_ns() < until) {
			serve_region_req(slot, sfc, pid);
			rte_pause();
		}
	}
	while (__atomic_load_n(&in->state, __ATOMIC_ACQUIRE) == INST_STARTING) {
		/* a forked instance inherits its zygote's mapping and never asks */
		if (!forked)
			serve_region_req(slot, sfc, pid);
		if (slot_exited(slot, &status)) {
			in->exit_status = status;
			in->state = INST_DEAD;
			break;
		}
		if (forked && !in->pid && D->zygote_pid[sfc] > 0 &&
		    waitpid(D->zygote_pid[sfc], &status, WNOHANG) == D->zygote_pid[sfc]) {
			snprintf(in->error, sizeof(in->error), "its zygote died before it forked the instance");
			D->zygote_pid[sfc] = 0;
			D->ctl->zygote[sfc].state = ZY_NONE;
			in->state = INST_DEAD;
			break;
		}
		if (mono_ns() - t0 > READY_TIMEOUT_NS) {
			slot_kill(slot, &status);
			snprintf(in->error, sizeof(in->error), "did not become ready within %llu s",
				 READY_TIMEOUT_NS / 1000000000ull);
			in->state = INST_DEAD;
			break;
		}
		/* the runtime wakes this futex when it leaves STARTING (runtime.c); the timeout only bounds how
		 * late a crash is noticed. (A nanosleep here cost ~55 µs per start: timer slack.) */
		sp_futex_wait(&in->state, INST_STARTING, 1000 * 1000L);
	}
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
		return fail("start_instance %s: %s", D->ctl->sfcs[sfc].name, why);
	}
	t_seen = mono_ns();
	D->startup_ns[slot] = t_seen - t_prev;
	s->choose += t_chosen - t_prev;
	s->state += t_state - t_chosen;
	runtime_steps(in, t_state, t_seen, s);
	if (pooled && __atomic_load_n(&D->ctl->pool[pool].cpus, __ATOMIC_ACQUIRE)) {
		/* --start-placement: it started elsewhere; it serves on the instance CPU (its lcore's, as
		 * runtime_spawn put it). Moved from here, after READY was seen: a sleeping runtime just
		 * changes its mask, a running one migrates — outside startup_us either way. */
		cpu_set_t serve;

		CPU_ZERO(&serve);
		CPU_SET(D->instance_lcore, &serve);
		sched_setaffinity(pid, sizeof(serve), &serve);
	}
	if (forked)
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
	s->routes += *t_end - t_seen;
	return json_pack("{s:b, s:i, s:i, s:f, s:b, s:s, s:s, s:o}", "ok", 1, "instance", slot, "pid", (int)pid,
			 "startup_us", (double)D->startup_ns[slot] / 1e3, "pooled", pooled, "startup", D->starter->name,
			 "loader", in->loader, "moves", moves);
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
