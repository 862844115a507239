/*
 * instance_process.c: the process behind an instance slot. How serpensd execs serpens-runtime (as a DPDK
 * secondary on the instance CPU, under a DPDK lcore id of its own: ctl.h), the pool of pre-launched
 * runtimes (--startup load, serpens: ctl.h's sp_pool_proc, apart from the instance slots), the per-SFC zygotes that fork instances (--startup fork), and how
 * the control thread learns that a slot's process exited or makes it exit. Separate from the Instance
 * Manager's requests (instance_manager.c) because this is where the startup method (starter.h) decides
 * what a process is; the requests only ask for one and wait for the slot's state.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <rte_eal.h>

#include "control_int.h"
#include "handover.h"

static const char *file_prefix(void)
{
	const char *dir = rte_eal_get_runtime_dir(), *slash = strrchr(dir, '/');

	return slash ? slash + 1 : dir;
}

/* How serpensd execs serpens-runtime (native/serpens/startup/starter.c does it). */
static const struct st_spawn *runtime_spawn(void)
{
	static char cpus[16];
	static struct st_spawn sp;

	if (!sp.exe) {
		snprintf(cpus, sizeof(cpus), "%u", D->instance_lcore);
		sp = (struct st_spawn){.exe = D->runtime_path, .file_prefix = file_prefix(), .cpus = cpus,
				       .log_level = "*:warning", .deathsig = SIGTERM};
	}
	return &sp;
}

/* Fork and exec serpens-runtime as a DPDK secondary of this serpensd under DPDK lcore id `lcore_id` on
 * the instance CPU, with its own arguments `args` (NULL-terminated) after the EAL's: the local proxy. */
pid_t control_spawn(struct serpensd *d, unsigned int lcore_id, char *const *args)
{
	struct st_start st = {.lcore_id = lcore_id, .tail = args};

	D = d; /* the proxy starts before the control thread (control_start) sets it */
	st.spawn = runtime_spawn();
	return st_spawn_secondary(&st);
}

/* Fork and exec a runtime for instance slot `slot`: the instance itself (exec, snapshot: the starter's
 * start), or — a start beyond the pool — a cold runtime that loads the NFs the way the method does. */
pid_t spawn_runtime(int slot)
{
	char slot_s[16], *tail[] = {"-s", slot_s, NULL};
	/* a distinct lcore id per slot, on the instance CPU: per-lcore state in shared memory (mempool
	 * caches) must never be used by two processes under one id, even when they share a CPU */
	struct st_start st = {.spawn = runtime_spawn(), .lcore_id = SP_INSTANCE_LCORE0 + (unsigned int)slot,
			      .tail = tail};
	pid_t pid;

	snprintf(slot_s, sizeof(slot_s), "%d", slot);
	if (D->starter->resident == ST_RES_NONE)
		pid = D->starter->start(&st);
	else
		pid = st_spawn_secondary(&st);
	if (pid > 0) {
		D->pid[slot] = pid;
		D->ctl->inst[slot].pid = pid;
	}
	return pid;
}

/* Has the process of slot `slot` exited (its wait status in *status)? A forked instance is its zygote's
 * child, not serpensd's: the zygote reaps it and reports; if the zygote died too, the pid is gone. */
bool slot_exited(int slot, int *status)
{
	struct sp_instance *in = &D->ctl->inst[slot];
	pid_t pid = D->forked[slot] ? in->pid : D->pid[slot];

	if (!D->forked[slot])
		return pid > 0 && waitpid(pid, status, WNOHANG) == pid;
	if (__atomic_load_n(&in->exited, __ATOMIC_ACQUIRE)) {
		*status = in->exited_status;
		return true;
	}
	if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) {
		*status = 0;
		return true;
	}
	return false;
}

/* SIGKILL the slot's process and wait until it is gone. */
void slot_kill(int slot, int *status)
{
	pid_t pid = D->forked[slot] ? D->ctl->inst[slot].pid : D->pid[slot];
	uint64_t t0 = mono_ns();

	if (pid <= 0) /* a forked instance not yet running: kill(0) would hit serpensd's group */
		return;
	kill(pid, SIGKILL);
	if (!D->forked[slot]) {
		waitpid(pid, status, 0);
		return;
	}
	while (!slot_exited(slot, status) && mono_ns() - t0 < STOP_TIMEOUT_NS)
		sleep_us(100);
}

/* --startup fork: launch the SFC's zygote (a runtime with the SFC's NFs loaded and initialised) and wait
 * until it waits for requests. 0, or -1 with err. */
int zygote_launch(int sfc, char *err, size_t errlen)
{
	struct sp_zygote *z = &D->ctl->zygote[sfc];
	char sfc_s[16], *tail[] = {"-z", sfc_s, NULL};
	struct st_start st = {.spawn = runtime_spawn(), .lcore_id = SP_ZYGOTE_LCORE,
			      .tail = tail};
	uint64_t t0 = mono_ns();
	int status;
	pid_t pid;

	snprintf(sfc_s, sizeof(sfc_s), "%d", sfc);
	z->error[0] = '\0';
	z->region_req = 0;
	z->stop = 0;
	z->target = -1;
	__atomic_store_n(&z->state, ZY_STARTING, __ATOMIC_RELEASE);
	pid = D->starter->prepare(&st);
	if (pid < 0) {
		snprintf(err, errlen, "SFC %s: cannot fork its zygote: %s", D->ctl->sfcs[sfc].name, strerror(errno));
		z->state = ZY_NONE;
		return -1;
	}
	D->zygote_pid[sfc] = pid;
	z->pid = pid;
	while (__atomic_load_n(&z->state, __ATOMIC_ACQUIRE) != ZY_WAITING) {
		/* it asks for its SFC's tenant's state region and NF images before it loads the NFs (handover.h) */
		if (__atomic_load_n(&z->region_req, __ATOMIC_ACQUIRE)) {
			char rerr[256];

			__atomic_store_n(&z->region_req, 0, __ATOMIC_RELEASE);
			if (ho_send(pid, D->sfc_tenant[sfc], true, sfc, rerr, sizeof(rerr)) != 0)
				fprintf(stderr, "serpensd: zygote of SFC %d: %s\n", sfc, rerr);
		}
		if (z->state == ZY_FAILED || waitpid(pid, &status, WNOHANG) == pid ||
		    mono_ns() - t0 > READY_TIMEOUT_NS) {
			snprintf(err, errlen, "SFC %s: its zygote did not start: %s", D->ctl->sfcs[sfc].name,
				 z->error[0] ? z->error : "exited or timed out");
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			D->zygote_pid[sfc] = 0;
			z->state = ZY_NONE;
			return -1;
		}
		sleep_us(50);
	}
	return 0;
}

void zygote_stop(int sfc)
{
	struct sp_zygote *z = &D->ctl->zygote[sfc];
	pid_t pid = D->zygote_pid[sfc];
	uint64_t t0 = mono_ns();
	int status;

	if (pid <= 0)
		return;
	__atomic_store_n(&z->stop, 1, __ATOMIC_SEQ_CST);
	st_ring(&z->doorbell);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (mono_ns() - t0 > STOP_TIMEOUT_NS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		sleep_us(100);
	}
	D->zygote_pid[sfc] = 0;
	z->state = ZY_NONE;
}

/* The pool (ctl.h, struct sp_pool_proc): pool processes are serpensd's children, each waiting on its
 * own doorbell under the pool's shared lcore id; a start hands one an instance slot. */

/* Launch pool process `p` (the starter's prepare) and wait until it waits. 0, or -1 (said why). */
int pool_fill(int p)
{
	struct sp_pool_proc *pp = &D->ctl->pool[p];
	char idx[16], *tail[] = {"-p", idx, NULL};
	struct st_start st = {.spawn = runtime_spawn(), .lcore_id = SP_POOL_LCORE, .tail = tail};
	uint64_t t0 = mono_ns();
	int status;
	pid_t pid;

	snprintf(idx, sizeof(idx), "%d", p);
	pp->stop = 0;
	pp->slot = -1;
	D->pool_tenant[p] = -1; /* a new process: no tenant's NF has run in it */
	pp->error[0] = '\0';
	__atomic_store_n(&pp->state, POOL_STARTING, __ATOMIC_RELEASE);
	pid = D->starter->prepare(&st);
	if (pid < 0) {
		fprintf(stderr, "serpensd: cannot fork pool process %d: %s\n", p, strerror(errno));
		pp->state = POOL_NONE;
		return -1;
	}
	D->pool_pid[p] = pid;
	pp->pid = pid;
	while (__atomic_load_n(&pp->state, __ATOMIC_ACQUIRE) != POOL_WAITING) {
		if (waitpid(pid, &status, WNOHANG) == pid || mono_ns() - t0 > READY_TIMEOUT_NS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "serpensd: pool process %d did not start: %s\n", p,
				pp->error[0] ? pp->error : "exited or timed out");
			D->pool_pid[p] = 0;
			pp->state = POOL_NONE;
			return -1;
		}
		sp_futex_wait(&pp->state, POOL_STARTING, 1000 * 1000L);
	}
	return 0;
}

int control_fill_pool(struct serpensd *d)
{
	unsigned int i;

	D = d;
	for (i = 0; i < SM_MAX_INSTANCES; i++)
		d->pool_of[i] = -1;
	for (i = 0; i < d->pool_size; i++)
		if (pool_fill((int)i) != 0)
			return -1;
	return 0;
}

/* A new SFC: every waiting pool process of its tenant gets its NFs' images (handover.h) and prewarms their
 * imports now (ctl.h, images_gen), so that no start pays for that. A process that has served no tenant yet
 * gets none (it may serve another tenant: it gets its images with its first start); one busy now asks for
 * them at its next start of this SFC. */
void pool_prewarm(int sfc)
{
	char err[256];
	int p;

	__atomic_fetch_add(&D->ctl->images_gen, 1, __ATOMIC_RELEASE);
	for (p = 0; p < (int)D->pool_size; p++) {
		if (__atomic_load_n(&D->ctl->pool[p].state, __ATOMIC_ACQUIRE) != POOL_WAITING)
			continue;
		if (D->pool_tenant[p] == D->sfc_tenant[sfc] &&
		    ho_send(D->pool_pid[p], D->sfc_tenant[sfc], false, sfc, err, sizeof(err)) != 0)
			fprintf(stderr, "serpensd: pool process %d: %s\n", p, err);
		st_ring(&D->ctl->pool[p].doorbell);
	}
}

/* A waiting pool process for tenant `tenant` (a region index): one that served it before (its region is
 * mapped there already), else one that served no tenant yet. Never one that ran another tenant's NFs:
 * that tenant's code may have left anything behind in it (docs/security.md). */
int pool_pick(int tenant)
{
	int p, fresh = -1;

	for (p = 0; p < (int)D->pool_size; p++) {
		if (__atomic_load_n(&D->ctl->pool[p].state, __ATOMIC_ACQUIRE) != POOL_WAITING)
			continue;
		if (D->pool_tenant[p] == tenant)
			return p;
		if (D->pool_tenant[p] < 0 && fresh < 0)
			fresh = p;
	}
	return fresh;
}

/* Give pool process `p` (waiting) instance slot `slot`, whose control block is ready: it takes the slot's
 * lcore id and serves its instance. */
void pool_hand(int p, int slot, int sfc)
{
	struct sp_pool_proc *pp = &D->ctl->pool[p];
	struct st_start st = {.doorbell = &pp->doorbell};

	D->pool_of[slot] = p;
	/* its first start for this tenant: the tenant's state region and the SFC's images go with the wake,
	 * not after a request (handover.h; on failure it asks, and the request says why). Later starts find
	 * both there (a new SFC's images came with pool_prewarm) or ask. */
	if (D->pool_tenant[p] != D->slot_tenant[slot]) {
		char err[256];

		if (ho_send(D->pool_pid[p], D->slot_tenant[slot], true, sfc, err, sizeof(err)) != 0)
			fprintf(stderr, "serpensd: pool process %d: %s\n", p, err);
	}
	D->pool_tenant[p] = D->slot_tenant[slot];
	D->pid[slot] = D->pool_pid[p];
	D->ctl->inst[slot].pid = D->pool_pid[p];
	pp->state = POOL_BUSY;
	__atomic_store_n(&pp->slot, slot, __ATOMIC_RELEASE);
	D->starter->start(&st); /* rings the doorbell */
}

bool pool_back(int slot)
{
	int p = D->pool_of[slot];

	return p >= 0 && __atomic_load_n(&D->ctl->pool[p].state, __ATOMIC_ACQUIRE) == POOL_WAITING;
}

void pool_leave(int slot, bool back)
{
	int p = D->pool_of[slot];

	if (p < 0)
		return;
	D->pool_of[slot] = -1;
	if (back)
		return;
	/* it exited or was killed with the instance (serpensd reaped it): keep the pool full */
	D->pool_pid[p] = 0;
	D->ctl->pool[p].state = POOL_NONE;
	pool_fill(p);
}

bool pool_reaped(pid_t pid)
{
	int p;

	for (p = 0; p < (int)D->pool_size; p++) {
		if (D->pool_pid[p] != pid)
			continue;
		if (D->ctl->pool[p].state == POOL_BUSY)
			return false; /* it served an instance: that instance crashed (the caller's business) */
		fprintf(stderr, "serpensd: pool process %d (pid %d) died waiting; replacing it\n", p, (int)pid);
		D->pool_pid[p] = 0;
		D->ctl->pool[p].state = POOL_NONE;
		pool_fill(p);
		return true;
	}
	return false;
}

void pool_stop_all(void)
{
	int p, status;

	for (p = 0; p < (int)D->pool_size; p++) {
		struct sp_pool_proc *pp = &D->ctl->pool[p];

		if (!D->pool_pid[p])
			continue;
		__atomic_store_n(&pp->stop, SP_STOP_EXIT, __ATOMIC_SEQ_CST);
		st_ring(&pp->doorbell);
	}
	for (p = 0; p < (int)D->pool_size; p++) { /* all told first: they exit together */
		uint64_t t0 = mono_ns();

		if (!D->pool_pid[p])
			continue;
		while (waitpid(D->pool_pid[p], &status, WNOHANG) == 0) {
			if (mono_ns() - t0 > STOP_TIMEOUT_NS) {
				kill(D->pool_pid[p], SIGKILL);
				waitpid(D->pool_pid[p], &status, 0);
				break;
			}
			sleep_us(100);
		}
		D->pool_pid[p] = 0;
		D->ctl->pool[p].state = POOL_NONE;
	}
}
