/*
 * runtime.c: serpens-runtime, one instance of one SFC (a DPDK secondary process of serpensd).
 *
 * It maps the control memzone and its SFC's tenant's state region (tenant_region.h), loads the SFC's NFs (init in attach mode: tables
 * exist, deployment already wrote initial state), and then serves batches: dequeue from its rx ring,
 * run the Chainer, enqueue to its tx ring. When the ring is empty it sleeps on a futex; serpensd's
 * router wakes it after wake_batch packets or a flush timeout (paper Section IV-B2). Every batch is
 * bracketed by sm_batch_begin/end so the State Manager can pause it while it splits global state.
 *
 * How it gets there is serpensd's startup method (--startup; native/serpens/startup, docs/startup.md):
 *   -s SLOT      (exec, snapshot, or a start beyond the pool) this process is the instance;
 *   -p POOL      (load, serpens) pool process POOL (ctl.h sp_pool_proc): pre-launched with its EAL
 *                initialised, it waits on its own doorbell until serpensd hands it an instance slot,
 *                takes that slot's lcore id, loads the SFC's NFs, serves, unloads them and goes back to
 *                waiting;
 *   -z SFC       (fork) the SFC's zygote: loads the SFC's NFs once, then forks every instance of it into
 *                the slot serpensd names, and reaps and reports its instances;
 *   -O           the OpenNF controller of serpensd --scaling opennf (scaling/opennf_controller.c).
 * With a scaling protocol that moves flow state (scaling/scale_shared.h) the instance takes its packets
 * through sc_take (scaling/scale_runtime.c): held while their flow's state is on its way.
 * The NFs are loaded by the method's starter: dlopen, the shared-memory image, or the snapshot file.
 *
 * Per-NF chaining (serpensd --chaining local-proxy|global-proxy): the instance runs one position of the
 * SFC (sp_instance.position), reads and writes the chain tag of every packet (chain_tag.h) and measures
 * Table II's delivery time. A zygote loads all of its SFC's NFs; each child it forks runs the position
 * its slot names. With -P the process is instead the local proxy between such instances (local_proxy.c).
 *
 * Wake-up protocol (Dekker-style, no lost wake-ups): the runtime publishes sleeping=1, re-checks its
 * ring, then bumps `done` (a serpensd that handed it the core waits on that) and waits on `doorbell`;
 * serpensd enqueues first, then reads `sleeping` and, if set, bumps `doorbell` and wakes it.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_memzone.h>
#include <rte_ring.h>

#include "chain_tag.h"
#include "eal_init_lock.h"
#include "chainer.h"
#include "handover.h"
#include "privs.h"
#include "ctl.h"
#include "deployer.h"
#include "hop.h"
#include "local_proxy.h"
#include "runtime_trim.h"
#include "scaling/scale_runtime.h"

int onf_controller_run(struct sp_ctl *ctl); /* scaling/opennf_controller.c */


static struct sp_instance *g_in;
static int g_tag_off = -1; /* the chain tag's mbuf field (per-NF chaining) */
static struct sm_region *g_r;
static int g_slot = -1;
static struct sp_ctl *g_ctl;
static struct chainer *g_chainer;
static struct sp_pool_proc *g_pool; /* a pool process's own entry (-p) */

/* Order this process's mempool handler table as serpensd's (ctl.h, mempool_ops): a pool names its
 * handler by index, and this statically linked runtime registered only the ring handlers, in its own
 * order. Handlers serpensd has and this process lacks stay empty: no pool a runtime touches uses one
 * (the mbuf pool's is checked; the scaling messages' pool, rte_mempool_create, gets a ring handler).
 * Runs before any pool is touched, on the only thread that registers handlers (their constructors ran
 * before main). 0, or -1 if the mbuf pool's handler is not here. */
static int align_mempool_ops(const struct sp_ctl *ctl)
{
	struct rte_mempool_ops_table *t = &rte_mempool_ops_table;
	static struct rte_mempool_ops mine[RTE_MEMPOOL_MAX_OPS_IDX];
	unsigned int i, j, n = t->num_ops;

	if (ctl->n_mempool_ops > RTE_MEMPOOL_MAX_OPS_IDX || ctl->mbuf_ops_index < 0 ||
	    (uint32_t)ctl->mbuf_ops_index >= ctl->n_mempool_ops)
		return -1;
	memcpy(mine, t->ops, sizeof(mine));
	memset(t->ops, 0, sizeof(t->ops));
	for (i = 0; i < ctl->n_mempool_ops; i++)
		for (j = 0; j < n; j++)
			if (!strcmp(mine[j].name, ctl->mempool_ops[i]))
				t->ops[i] = mine[j];
	t->num_ops = ctl->n_mempool_ops;
	return t->ops[ctl->mbuf_ops_index].enqueue ? 0 : -1;
}

static uint64_t mono_ns(void) /* serpensd's mono_ns: the clock of the start steps (ctl.h) */
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* serpensd --start-placement: a pooled runtime waits, and runs its next start, on the CPUs serpensd names
 * in its pool entry (the control thread's, for a wake on the requester's own vCPU); once it is ready serpensd
 * moves it back to its lcore's CPU to serve (instance_manager.c: not here, where the move would keep the
 * control thread, on the same CPU, from seeing READY). */
static void place_for_start(const struct sp_pool_proc *pp)
{
	uint64_t m = __atomic_load_n(&pp->cpus, __ATOMIC_ACQUIRE);
	cpu_set_t set;
	unsigned int i;

	if (!m)
		return;
	CPU_ZERO(&set);
	for (i = 0; i < 64; i++)
		if (m & (1ull << i))
			CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* Publish the instance's state and wake serpensd if it waits for a change (start_instance). */
static void set_state(struct sp_instance *in, uint32_t st)
{
	__atomic_store_n(&in->state, st, __ATOMIC_RELEASE);
	sp_futex_wake(&in->state, INT_MAX);
}

static void fail(struct sp_instance *in, const char *msg)
{
	fprintf(stderr, "serpens-runtime: %s\n", msg);
	if (!in && g_pool) /* a pool process that cannot join the pool: pool_fill reports it */
		snprintf(g_pool->error, sizeof(g_pool->error), "%s", msg);
	if (in) {
		snprintf(in->error, sizeof(in->error), "%s", msg);
		set_state(in, INST_DEAD);
	}
	exit(1);
}

/* The remote store failed inside a batch (Redis gone or timing out): that batch's state cannot be
 * written, so the instance stops at once with the reason (serpensd reports the exit, its log the reason)
 * instead of hanging or running on stale state. */
static void remote_fatal(const char *msg)
{
	char buf[300];

	if (g_r && g_slot >= 0)
		sm_batch_end(g_r, g_slot);
	snprintf(buf, sizeof(buf), "instance %d: %s", g_slot, msg);
	fail(g_in, buf);
}

/* fission/snf: install the remote backend in this process, counting into the instance's slot (a zygote,
 * `in` NULL: into a private struct; it runs no batch). The connection is made on first use. */
static void remote_setup(struct sp_ctl *ctl, struct sp_instance *in)
{
	struct rs_config rc = {.backend = (enum rs_backend)ctl->state_backend, .host = ctl->redis_host,
			       .port = (int)ctl->redis_port, .timeout_ms = ctl->redis_timeout_ms,
			       .stats = in ? &in->remote : NULL, .fatal = remote_fatal,
			       /* its tenant's Redis user, which comes with its region (handover.h) */
			       .user = ho_store_user(), .pass = ho_store_pass()};

	if (ctl->state_backend != RS_SERPENS && rs_setup(&rc) != 0)
		fail(in, "unknown state backend in the control memzone");
}

/* Per-NF chaining, around one batch of the instance's NF: Table II's delivery time (from when the previous
 * NF's instance handed the batch's first packet over to now, the batch's start; batches from the gateway
 * carry no stamp), the NF, the hop's drops, and the stamp of this hand-over on every packet that goes on. */
static unsigned int run_one(struct sp_ctl *ctl, struct sp_instance *in, struct chainer *c, struct rte_mbuf **m,
			    unsigned int n, struct rte_mbuf **out, uint64_t t_start)
{
	struct sp_hop_stats *hop = &ctl->delivery.hop[c->sfc][c->position];
	uint64_t stamp = sp_chain_tag(m[0], g_tag_off)->stamp, drops = 0, now;
	unsigned int i, nout;

	if (stamp) {
		uint64_t dt = t_start > stamp ? t_start - stamp : 0;

		in->delivery_cycles += dt;
		in->delivery_batches++;
		__atomic_fetch_add(&hop->delivery_cycles, dt, __ATOMIC_RELAXED);
		__atomic_fetch_add(&hop->delivery_batches, 1, __ATOMIC_RELAXED);
	}
	nout = chainer_run_one(c, m, n, out, &drops, g_tag_off);
	if (drops) {
		in->nf_drops += drops;
		__atomic_fetch_add(&hop->nf_drops, drops, __ATOMIC_RELAXED);
	}
	now = rte_rdtsc();
	for (i = 0; i < nout; i++)
		sp_chain_tag(out[i], g_tag_off)->stamp = now;
	return nout;
}

static void serve(struct sp_ctl *ctl, struct sp_instance *in, struct chainer *c, struct rte_ring *rx,
		  struct rte_ring *tx, struct sm_region *r, int slot)
{
	struct rte_mbuf *m[SP_MAX_BATCH], *out[SP_MAX_BATCH];
	const unsigned int burst = RTE_MIN(RTE_MAX(ctl->batch, 1u), (unsigned int)SP_MAX_BATCH);
	unsigned int n, nout, sent;
	const bool sc_on = sc_runtime_active();
	uint32_t seq;

	if (sc_on)
		sc_runtime_begin(slot);
	for (;;) {
		/* The instance stage's clock (docs/stages.md) starts before the dequeue but counts only if the
		 * dequeue brought packets: an empty poll on the way to sleep is not work. */
		uint64_t t_deq = rte_rdtsc();

		n = sc_on ? sc_take(rx, m, burst) : rte_ring_sc_dequeue_burst(rx, (void **)m, burst, NULL);
		if (n > 0) {
			uint64_t t0 = rte_rdtsc(), remote0 = in->remote.ns, work, remote;

			sm_batch_begin(r, slot);
			if (c->position < 0) /* consolidated: the whole SFC */
				nout = chainer_run(c, m, n, out, &in->nf_drops);
			else
				nout = run_one(ctl, in, c, m, n, out, t0);
			sm_batch_end(r, slot);
			in->busy_cycles += rte_rdtsc() - t0;
			sent = rte_ring_sp_enqueue_burst(tx, (void **)out, nout, NULL);
			if (sent < nout) { /* serpensd will drain; never block the chain on a full tx ring */
				rte_pktmbuf_free_bulk(out + sent, nout - sent);
				in->nf_drops += nout - sent;
				if (c->position >= 0)
					__atomic_fetch_add(&ctl->delivery.hop[c->sfc][c->position].nf_drops,
							   nout - sent, __ATOMIC_RELAXED);
			}
			in->pkts_in += n;
			in->pkts_out += sent;
			in->batches++;
			/* remote access inside this batch only: the store's counters also see NF init */
			work = rte_rdtsc() - t_deq;
			remote = in->remote.ns - remote0;
			in->work_cycles += work;
			in->work_remote_ns += remote;
			in->slot_work_cycles += work;
			in->slot_work_packets += n;
			if (c->position <= 0)
				in->slot_chain_packets += n; /* entered the SFC here */
			in->slot_remote_ns += remote;
			continue;
		}
		if (sc_on && sc_pending())
			continue; /* protocol work that needs no packet (a message, a due export, a release) */
		if (__atomic_load_n(&in->stop, __ATOMIC_ACQUIRE)) {
			if (sc_on)
				sc_runtime_end();
			return; /* SP_STOP_SERVE or SP_STOP_EXIT */
		}
		seq = __atomic_load_n(&in->doorbell, __ATOMIC_ACQUIRE);
		__atomic_store_n(&in->sleeping, 1, __ATOMIC_SEQ_CST);
		if (!rte_ring_empty(rx) || __atomic_load_n(&in->stop, __ATOMIC_SEQ_CST) || (sc_on && sc_pending())) {
			__atomic_store_n(&in->sleeping, 0, __ATOMIC_SEQ_CST);
			continue;
		}
		sp_hop_done(&in->sl); /* wakes serpensd only if it waits for this (hop.h) */
		in->sleeps++;
		sp_futex_wait(&in->doorbell, seq, 100 * 1000 * 1000L); /* re-check stop at least every 100 ms */
		__atomic_store_n(&in->sleeping, 0, __ATOMIC_SEQ_CST);
	}
}

/* The start's own steps, for serpensd's start_instance reply (ctl.h): what the loaders took (c NULL: none
 * here, a forked instance's zygote loaded them) and the moment before READY. */
static void stamp_ready(struct sp_instance *in, const struct chainer *c)
{
	in->start_map_ns = c ? c->map_ns : 0;
	in->start_init_ns = c ? c->init_ns : 0;
	in->start_ready_ns = mono_ns();
}

static void pool_state(struct sp_pool_proc *pp, uint32_t st)
{
	__atomic_store_n(&pp->state, st, __ATOMIC_RELEASE);
	sp_futex_wake(&pp->state, INT_MAX);
}

/* Leave the instance slot served: back under the pool's shared lcore id, no State Manager slot, and the
 * slot is serpensd's again (its state and stop word are not ours to touch from here on). */
static void pool_leave_slot(struct sp_pool_proc *pp)
{
	st_set_lcore(SP_POOL_LCORE);
	sm_set_instance(-1);
	g_in = NULL;
	g_slot = -1;
	__atomic_store_n(&pp->slot, -1, __ATOMIC_RELEASE);
}

/* Pool process `idx` (ctl.h, sp_pool_proc; serpensd --pool): wait on its doorbell until serpensd hands it
 * an instance slot, serve that slot's instance, unload its NFs and wait again; exit when told to. */
static int pool_loop(struct sp_ctl *ctl, struct chainer *c, int idx)
{
	struct sp_pool_proc *pp = &ctl->pool[idx];
	struct rte_ring *rx[SM_MAX_INSTANCES], *tx[SM_MAX_INSTANCES];
	struct sp_instance *in;
	char err[512];
	uint32_t seq, images_gen = 0;
	uint64_t woke;
	int slot;

	/* every slot's rings once: they live as long as serpensd, so a start looks none up */
	for (slot = 0; slot < (int)ctl->max_instances; slot++) { /* serpensd made rings for these only */
		rx[slot] = rte_ring_lookup(ctl->inst[slot].rx_ring);
		tx[slot] = rte_ring_lookup(ctl->inst[slot].tx_ring);
		if (!rx[slot] || !tx[slot])
			fail(NULL, "instance rings not found");
	}
	for (;;) {
		place_for_start(pp);
		pool_state(pp, POOL_WAITING);
		for (;;) {
			if (__atomic_load_n(&pp->stop, __ATOMIC_ACQUIRE) == SP_STOP_EXIT)
				return 0;
			seq = __atomic_load_n(&pp->doorbell, __ATOMIC_ACQUIRE);
			slot = __atomic_load_n(&pp->slot, __ATOMIC_ACQUIRE);
			if (slot >= 0 && slot < (int)ctl->max_instances)
				break;
			/* no timeout: every request (a slot, stop) rings the doorbell, and the process dies with
			 * serpensd (PR_SET_PDEATHSIG); a periodic re-check would wake a pool of 500 5000 times a
			 * second for nothing */
			if (images_gen != __atomic_load_n(&ctl->images_gen, __ATOMIC_ACQUIRE)) {
				/* an SFC was deployed (serpensd rang every waiting pool process; to one of its
				 * tenant's it sent the images first: handover.h): their imports prewarmed now, not
				 * in their first start here */
				images_gen = __atomic_load_n(&ctl->images_gen, __ATOMIC_ACQUIRE);
				chainer_take_images(ctl);
				continue;
			}
			sp_futex_wait(&pp->doorbell, seq, 0);
		}
		woke = mono_ns();
		in = &ctl->inst[slot];
		in->start_woke_ns = woke;
		/* the slot's own lcore id before anything of the instance runs (ctl.h, SP_POOL_LCORE) */
		st_set_lcore(SP_INSTANCE_LCORE0 + (unsigned int)slot);
		sm_set_instance(slot);
		g_in = in;
		g_slot = slot;
		ho_set_requester(&in->region_req, &in->state); /* its region and images, asked through the slot */
		if (ctl->state_backend != RS_SERPENS)
			remote_setup(ctl, in); /* the remote store's counters: this slot's */
		chainer_keep_only(ctl, (uint32_t)in->sfc); /* no other SFC's image stays open (security.md) */
		if (chainer_load(c, ctl, (uint32_t)in->sfc, in->position, err, sizeof(err)) != 0) {
			snprintf(in->error, sizeof(in->error), "%.*s", (int)sizeof(in->error) - 1, err);
			chainer_unload(c);
			rs_forget();
			pool_leave_slot(pp);
			pool_state(pp, POOL_WAITING); /* back before the failure is seen: serpensd keeps it */
			set_state(in, INST_DEAD);
			continue;
		}
		g_r = sm_get_region(); /* the SFC's tenant's (chainer_load) */
		snprintf(in->loader, sizeof(in->loader), "%s", chainer_loader(c));
		in->ready_tsc = rte_rdtsc();
		in->slot_starts++;
		stamp_ready(in, c);
		set_state(in, INST_READY);
		serve(ctl, in, c, rx[slot], tx[slot], g_r, slot);
		chainer_unload(c);
		rs_forget(); /* the next instance reconnects */
		pool_leave_slot(pp);
	}
}

/* A zygote's child: become the instance of slot `arg` (its lcore id is the slot's already: fork.c). The
 * zygote loaded every NF of the SFC; with per-NF chaining the child runs the one its slot names. */
static void forked_instance(void *arg)
{
	int slot = (int)(intptr_t)arg;
	struct sp_instance *in = &g_ctl->inst[slot];
	struct rte_ring *rx, *tx;
	char err[600];

	in->start_woke_ns = mono_ns();
	signal(SIGCHLD, SIG_DFL);
	in->pid = (int32_t)getpid();
	g_in = in;
	g_slot = slot;
	sm_set_instance(slot);
	rx = rte_ring_lookup(in->rx_ring);
	tx = rte_ring_lookup(in->tx_ring);
	if (!rx || !tx)
		fail(in, "instance rings not found");
	if (in->position >= (int)g_chainer->npos)
		fail(in, "the slot names a position its SFC does not have");
	g_chainer->position = in->position;
	/* remote state: the zygote closed its connection before forking; this instance counts into its own
	 * slot and opens its own connection now, so a dead store fails the start rather than the first
	 * batch (as an exec'd instance's NF init would) */
	remote_setup(g_ctl, in);
	if (g_ctl->state_backend != RS_SERPENS && rs_ping(err, sizeof(err)) != 0)
		fail(in, err);
	snprintf(in->loader, sizeof(in->loader), "%s", chainer_loader(g_chainer));
	in->ready_tsc = rte_rdtsc();
	in->slot_starts++;
	stamp_ready(in, NULL);
	set_state(in, INST_READY);
	serve(g_ctl, in, g_chainer, rx, tx, g_r, slot);
}

static void on_sigchld(int sig) { (void)sig; } /* only to cut the zygote's futex wait short */

static void zygote_state(struct sp_zygote *z, uint32_t st)
{
	__atomic_store_n(&z->state, st, __ATOMIC_RELEASE);
	sp_futex_wake(&z->state, INT_MAX);
}

/* The zygote of SFC `sfc` (--startup fork): NFs loaded and initialised once, in attach mode and as no
 * instance; each request forks an instance into the target slot. It reaps its children and reports their
 * exit in their slots: serpensd is not their parent and cannot wait for them. */
static int zygote_loop(struct sp_ctl *ctl, struct chainer *c, int sfc)
{
	const struct sp_starter *st = st_by_method((enum st_method)ctl->startup);
	struct sp_zygote *z = &ctl->zygote[sfc];
	struct sigaction sa = {.sa_handler = on_sigchld}; /* no SA_RESTART: the wait must return */
	pid_t child[SM_MAX_INSTANCES] = {0}, pid;
	char err[512];
	int status, i, t;
	uint32_t seq;

	if (!st || !st->branch) {
		snprintf(z->error, sizeof(z->error), "the startup method in the control memzone does not fork");
		zygote_state(z, ZY_FAILED);
		return 1;
	}
	remote_setup(ctl, NULL);
	ho_set_requester(&z->region_req, &z->state); /* its SFC's region and images (handover.h) */
	if (chainer_load(c, ctl, (uint32_t)sfc, -1, err, sizeof(err)) != 0) {
		snprintf(z->error, sizeof(z->error), "%.*s", (int)sizeof(z->error) - 1, err);
		zygote_state(z, ZY_FAILED);
		return 1;
	}
	g_r = sm_get_region(); /* its children inherit the mapping */
	rs_disconnect(); /* NF init (attach) may have talked to the store: no child inherits that socket */
	sigaction(SIGCHLD, &sa, NULL);
	zygote_state(z, ZY_WAITING);
	for (;;) {
		seq = __atomic_load_n(&z->doorbell, __ATOMIC_ACQUIRE);
		/* report before reaping: until it is reaped the child's pid exists, so serpensd (which also
		 * treats a vanished pid as exited) can never see it gone, reuse the slot, and then get this
		 * report for the old instance */
		for (;;) {
			siginfo_t si = {0};

			if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
				break;
			status = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8
							   : (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0);
			for (i = 0; i < SM_MAX_INSTANCES; i++)
				if (child[i] == si.si_pid) {
					child[i] = 0;
					ctl->inst[i].exited_status = status;
					__atomic_store_n(&ctl->inst[i].exited, 1, __ATOMIC_RELEASE);
					sp_futex_wake(&ctl->inst[i].state, INT_MAX);
				}
			waitpid(si.si_pid, &status, 0);
		}
		if (__atomic_load_n(&z->stop, __ATOMIC_ACQUIRE))
			return 0;
		t = __atomic_exchange_n(&z->target, -1, __ATOMIC_SEQ_CST);
		if (t >= 0 && t < SM_MAX_INSTANCES) {
			rs_disconnect(); /* never connected again after init; kept here so a fork can never share one */
			pid = st->branch(SP_INSTANCE_LCORE0 + (unsigned int)t, forked_instance, (void *)(intptr_t)t);
			if (pid < 0) {
				snprintf(ctl->inst[t].error, sizeof(ctl->inst[t].error), "zygote: fork: %s", strerror(errno));
				set_state(&ctl->inst[t], INST_DEAD);
			} else {
				child[t] = pid;
				ctl->inst[t].pid = pid;
			}
			continue;
		}
		sp_futex_wait(&z->doorbell, seq, 100 * 1000 * 1000L);
	}
}

int main(int argc, char **argv)
{
	const struct rte_memzone *ctl_mz;
	struct sp_ctl *ctl;
	struct sp_instance *in = NULL;
	struct rte_ring *rx, *tx;
	static struct chainer chainer;
	char err[512];
	int ret, slot = -1, opt, pool = -1, proxy = 0, zygote = -1;

	/* the remote state backends and CHC talk to Redis over TCP (hiredis writes without MSG_NOSIGNAL): a
	 * Redis that dies must be an error this runtime reports, not a SIGPIPE that kills it */
	signal(SIGPIPE, SIG_IGN);
	ret = eal_init_serialised(argc, argv); /* one secondary at a time: eal_init_lock.h */
	if (ret < 0)
		fail(NULL, "EAL init failed (is serpensd running with the same --file-prefix?)");
	if (rt_trim_fbarrays(err, sizeof(err)) < 0) /* 1.5 MiB of zeros per process: runtime_trim.c */
		fail(NULL, err);
	argc -= ret;
	argv += ret;
	/* the socket serpensd hands this process its tenant's state region and NF images over (handover.h) */
	if (ho_listen(err, sizeof(err)) != 0)
		fail(NULL, err);
	/* a tenant's deployer (deployer.h) runs no NF code itself, and keeps what its confined children need */
	if (argc > 2 && !strcmp(argv[1], "-D"))
		return deployer_run(argv[2]);
	/* before any NF code runs here (privs.c: what is kept and why; docs/security.md) */
	if (sp_drop_privileges(err, sizeof(err)) != 0)
		fail(NULL, err);
	while ((opt = getopt(argc, argv, "s:p:POz:")) != -1) {
		if (opt == 's')
			slot = atoi(optarg);
		else if (opt == 'p')
			pool = atoi(optarg);
		else if (opt == 'P')
			proxy = 1;
		else if (opt == 'O')
			proxy = 2;
		else if (opt == 'z')
			zygote = atoi(optarg);
	}
	if (!proxy && (zygote >= SP_MAX_SFCS || pool >= SP_MAX_POOL ||
		       (zygote < 0 && pool < 0 && (slot < 0 || slot >= SM_MAX_INSTANCES))))
		fail(NULL, "usage: serpens-runtime [EAL] -- -s SLOT | -p POOL | -z SFC | -P | -O");
	ctl_mz = rte_memzone_lookup(SP_CTL_MZ);
	if (!ctl_mz)
		fail(NULL, "serpensd's control memzone not found");
	ctl = ctl_mz->addr;
	if (ctl->magic != SP_CTL_MAGIC)
		fail(NULL, "control memzone has a wrong magic");
	g_pool = pool >= 0 && pool < SP_MAX_POOL ? &ctl->pool[pool] : NULL;
	if (align_mempool_ops(ctl) != 0)
		fail(NULL, "serpensd's mbuf pool uses a mempool handler this runtime does not link "
			   "(native/serpens/meson.build)");
	if (proxy == 1) /* the local proxy of per-NF chaining: no NF, no state slot (local_proxy.c) */
		return local_proxy_run(ctl);
	if (proxy == 2) /* the OpenNF controller: no NF, no state slot */
		return onf_controller_run(ctl);
	g_ctl = ctl;
	g_chainer = &chainer;
	in = slot >= 0 && pool < 0 && zygote < 0 ? &ctl->inst[slot] : NULL;
	if (ctl->delivery.mode != SP_CHAIN_CONSOLIDATED && (g_tag_off = sp_chain_tag_lookup()) < 0)
		fail(in, "the chain tag mbuf field is not registered (serpensd --chaining?)");
	/* no state region yet: chainer_load maps the SFC's tenant's (tenant_region.h) */
	sm_set_instance(slot);
	sm_set_phase_deploy(false);
	g_in = in;
	g_slot = slot;
	if (sc_runtime_setup(ctl, err, sizeof(err)) < 0) /* before any NF creates its tables */
		fail(in, err);
	if (zygote >= 0)
		return zygote_loop(ctl, &chainer, zygote);
	remote_setup(ctl, in); /* a pool process: counting into a private struct until it serves a slot */
	if (pool >= 0)
		return pool_loop(ctl, &chainer, pool);
	rx = rte_ring_lookup(in->rx_ring);
	tx = rte_ring_lookup(in->tx_ring);
	if (!rx || !tx)
		fail(in, "instance rings not found");
	in->start_woke_ns = mono_ns(); /* an exec'd instance "wakes" when its EAL and setup are done */
	ho_set_requester(&in->region_req, &in->state);
	if (chainer_load(&chainer, ctl, (uint32_t)in->sfc, in->position, err, sizeof(err)) != 0)
		fail(in, err);
	g_r = sm_get_region();
	snprintf(in->loader, sizeof(in->loader), "%s", chainer_loader(&chainer));
	in->ready_tsc = rte_rdtsc();
	in->slot_starts++;
	stamp_ready(in, &chainer);
	set_state(in, INST_READY);
	serve(ctl, in, &chainer, rx, tx, g_r, slot);
	return 0; /* not rte_eal_cleanup(): see native/common/eal_files.h */
}
