/*
 * worker.c: the processes serpens-startbench starts — the runtime every startup method runs on.
 *
 * All are DPDK secondaries of the orchestrator with the State Manager attached, and run an NF the same
 * way: sm_nf_init in attach mode (tables exist, deployment wrote them), then the NF's handler on the
 * packets of their slot's rx ring. What differs between methods is only how the process and the NF get
 * there (startbench.h):
 *   pool    (load, serpens) waits pre-initialised; per request it dlopens the NF or maps its image
 *   zygote  (fork)    has the NF loaded; per request it forks, the child is the instance
 *   host    (thread)  has the NF loaded; per request it creates a thread, the thread is the instance
 *   cold    (exec, snapshot) is the instance: exec'd for it, EAL init, then dlopen or snapshot restore
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_mbuf.h>
#include <rte_memzone.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "ctl.h" /* sp_futex_wait / sp_futex_wake */
#include "startbench.h"
#include "startbench_int.h"

static struct sb_ctl *ctl;
static int image_fd[SB_MAX_NFS]; /* pool processes: every deployed NF's image, opened once (prewarm_imports) */

void sb_set_state(struct sb_slot *s, uint32_t st)
{
	__atomic_store_n(&s->state, st, __ATOMIC_SEQ_CST);
	sp_futex_wake(&s->state, INT_MAX);
}

static void slot_fail(struct sb_slot *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void slot_fail(struct sb_slot *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
	sb_set_state(s, SB_FAILED);
}

/* Wait until the slot gets a command other than `none_of`, return it. */
static uint32_t wait_cmd(struct sb_slot *s)
{
	for (;;) {
		uint32_t seq = __atomic_load_n(&s->doorbell, __ATOMIC_ACQUIRE);
		uint32_t cmd = __atomic_load_n(&s->cmd, __ATOMIC_ACQUIRE);

		if (cmd != SB_CMD_NONE) {
			__atomic_store_n(&s->cmd, SB_CMD_NONE, __ATOMIC_RELEASE);
			return cmd;
		}
		sp_futex_wait(&s->doorbell, seq, 200 * 1000 * 1000L);
		if (getppid() == 1)
			_exit(3); /* the orchestrator died */
	}
}

/* Load one NF with the method's starter (native/serpens/startup: what serpensd's runtimes run); false
 * with s->error set on failure. */
static bool load_nf(struct sb_slot *s, const struct sb_nf *d, int method, struct st_loaded *l)
{
	const struct st_nf view = {.name = d->name, .path = d->path, .snapshot = d->snapshot, .image = &d->image,
				   .image_fd = d->image_fd, .owner_pid = d->owner_pid,
				   .cached_fd = image_fd[d - ctl->nf] > 0 ? image_fd[d - ctl->nf] : -1};
	char err[sizeof(s->error)];

	if (st_by_method((enum st_method)method)->load(&view, l, err, sizeof(err)) != 0) {
		st_unload(l);
		slot_fail(s, "%s", err);
		return false;
	}
	snprintf(s->loader, sizeof(s->loader), "%s", l->loader);
	return true;
}

/* The instance is ready: say so, then process the first packet of its rx ring (the orchestrator queued
 * it with the request) through the NF, and pass it back on the tx ring. */
static void ready_and_first_packet(struct sb_slot *s, const struct sp_nf *nf)
{
	struct rte_ring *rx = rte_ring_lookup(s->rx), *tx = rte_ring_lookup(s->tx);
	struct rte_mbuf *m;
	struct sp_pkt p;
	uint64_t t0;

	s->t_ready = sb_now_ns();
	sb_set_state(s, SB_READY);
	if (!rx || !tx) {
		slot_fail(s, "rings %s/%s not found", s->rx, s->tx);
		return;
	}
	t0 = sb_now_ns();
	while (rte_ring_sc_dequeue(rx, (void **)&m) != 0) {
		if (sb_now_ns() - t0 > 5000000000ull) {
			slot_fail(s, "no packet on %s within 5 s", s->rx);
			return;
		}
		rte_pause();
	}
	p.data = rte_pktmbuf_mtod(m, uint8_t *);
	p.len = rte_pktmbuf_data_len(m);
	p.sfc = 0;
	p.buf = m;
	m->hash.usr = (uint32_t)nf->handler(&p); /* the verdict, for the orchestrator to check */
	rte_ring_sp_enqueue(tx, m);
	s->t_first = sb_now_ns();
	sb_set_state(s, SB_DONE);
}

static void mark_started(struct sb_slot *s)
{
	s->t_woke = sb_now_ns();
	s->cpu_woke = sched_getcpu();
}

/* Open every deployed NF's image and fill this process's import cache from them (native/serpens/loader):
 * part of pre-initialising a pool process, like its EAL init. */
static void prewarm_imports(void)
{
	char path[64];
	unsigned int i;

	for (i = 0; i < ctl->nnf; i++) {
		const struct sb_nf *d = &ctl->nf[i];
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", d->owner_pid, d->image_fd);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			ldr_prewarm(&d->image, fd, 0);
			image_fd[i] = fd; /* kept: a handle on the NF's shared region, like a mapped file */
		}
	}
}

/* pool: pre-initialised, no NF; each request loads one (dlopen for load, image map for serpens). */
static int pool_main(struct sb_slot *s)
{
	prewarm_imports();
	for (;;) {
		struct st_loaded l;
		uint32_t cmd, method, nfi;

		sb_set_state(s, SB_WAITING);
		cmd = wait_cmd(s);
		if (cmd == SB_CMD_EXIT)
			return 0;
		if (cmd != SB_CMD_START)
			continue;
		mark_started(s);
		method = s->method;
		nfi = s->nf;
		if (load_nf(s, &ctl->nf[nfi], (int)method, &l))
			ready_and_first_packet(s, l.nf);
		while ((cmd = wait_cmd(s)) != SB_CMD_STOP && cmd != SB_CMD_EXIT)
			;
		st_unload(&l);
		sm_forget_local();
		if (cmd == SB_CMD_EXIT)
			return 0;
	}
}

/* An instance started in slot `target` by a zygote (fork) or a host (thread): the NF is loaded already. */
static void instance_body(struct sb_slot *t, const struct sp_nf *nf)
{
	uint32_t cmd;

	ready_and_first_packet(t, nf);
	while ((cmd = wait_cmd(t)) != SB_CMD_STOP && cmd != SB_CMD_EXIT)
		;
	t->pid = 0;
	sb_set_state(t, SB_EMPTY);
}

static const struct sp_nf *resident_nf; /* zygote, host: the NF every instance of it runs */
static const char *resident_loader;

/* The new instance (a zygote's child or a host's thread, already under the target slot's lcore id). */
static void branched_instance(void *arg)
{
	struct sb_slot *t = arg;

	t->pid = (int32_t)getpid();
	snprintf(t->loader, sizeof(t->loader), "%s", resident_loader);
	mark_started(t);
	instance_body(t, resident_nf);
}

/* zygote (fork) and host (thread): one per deployed NF, with that NF loaded and initialised; each
 * request becomes an instance through the starter's branch (fork.c, thread.c). */
static int resident_main(struct sb_slot *s, unsigned int nfi, int method)
{
	const struct sp_starter *st = st_by_method((enum st_method)method);
	struct st_loaded l;

	if (!load_nf(s, &ctl->nf[nfi], method, &l)) /* dlopen, as SAND and Photons do */
		return 1;
	resident_nf = l.nf;
	resident_loader = l.loader;
	if (method == ST_FORK)
		signal(SIGCHLD, SIG_IGN); /* children are reaped by the kernel */
	for (;;) {
		struct sb_slot *t;
		uint32_t cmd;

		sb_set_state(s, SB_WAITING);
		cmd = wait_cmd(s);
		if (cmd == SB_CMD_EXIT)
			return 0;
		if (cmd != SB_CMD_START || s->target < 0 || s->target >= SB_MAX_SLOTS)
			continue;
		t = &ctl->slot[s->target];
		if (st->branch(sb_slot_lcore(s->target), branched_instance, t) < 0)
			slot_fail(t, "%s: %s", method == ST_FORK ? "fork" : "pthread_create", strerror(errno));
	}
}

/* cold (exec, snapshot): this process is the instance. t_start: when main() began (before EAL init). */
static int cold_main(struct sb_slot *s, unsigned int nfi, int method, uint64_t t_start)
{
	struct st_loaded l;

	s->pid = (int32_t)getpid();
	s->t_woke = t_start;
	s->cpu_woke = sched_getcpu();
	if (!load_nf(s, &ctl->nf[nfi], method, &l))
		return 1;
	instance_body(s, l.nf);
	return 0;
}

int sb_worker_main(const char *role, int slot, int nfi, int method, uint64_t t_start)
{
	const struct rte_memzone *cmz = rte_memzone_lookup(SB_CTL_MZ), *smz = rte_memzone_lookup(SB_STATE_MZ);
	struct sm_region *r;
	struct sb_slot *s;

	if (!cmz || !smz) {
		fprintf(stderr, "serpens-startbench worker: the orchestrator's memzones are missing\n");
		return 2;
	}
	ctl = cmz->addr;
	if (ctl->magic != SB_MAGIC || slot < 0 || slot >= SB_MAX_SLOTS || nfi >= (int)ctl->nnf) {
		fprintf(stderr, "serpens-startbench worker: bad control block, slot or NF index\n");
		return 2;
	}
	s = &ctl->slot[slot];
	r = sm_region_attach(smz->addr);
	if (!r) {
		slot_fail(s, "state region not initialised");
		return 2;
	}
	sm_set_region(r);
	sm_set_instance(0); /* the benchmarked NFs keep no global|write state */
	sm_set_phase_deploy(false);
	s->pid = (int32_t)getpid();
	if (!strcmp(role, "pool"))
		return pool_main(s);
	if (!strcmp(role, "zygote"))
		return resident_main(s, (unsigned int)nfi, ST_FORK);
	if (!strcmp(role, "host"))
		return resident_main(s, (unsigned int)nfi, ST_THREAD);
	if (!strcmp(role, "cold"))
		return cold_main(s, (unsigned int)nfi, method, t_start);
	fprintf(stderr, "serpens-startbench worker: unknown role %s\n", role);
	return 2;
}
