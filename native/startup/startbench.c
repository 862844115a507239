/*
 * serpens-startbench: instance startup latency and deployment memory of the startup methods of the
 * paper's Fig. 3(a) / Fig. 11 / Table IV, on one runtime and one NF object (startbench.h, worker.c,
 * docs/startup.md).
 *
 * The orchestrator is a DPDK primary. It deploys K copies of an NF (each its own file, as serpensd
 * does): init in deploy mode into a State Manager region, the shared-memory image built once into a
 * memfd (serpens) and saved to a file (snapshot). Then, per method and per number of instances N, it
 * starts N instances together, repeatedly, and writes one JSON line per instance start:
 *   ready_us         from the start request to the instance being ready (NF loaded + initialised)
 *   first_packet_us  ... to the instance having processed the packet queued with the request
 * and ends each point (method, N) with a "point" line when all its rounds ran, or a "fault" line with the
 * first failure (an instance that failed to start or to stop, a count beyond the pool); the failed
 * round's instances are stopped and the next point runs. It exits 1 if any point failed.
 * Its secondaries initialise their EAL one at a time (eal_init_lock.h: a DPDK 22.11 race otherwise fails
 * one of many started together).
 * In memory mode it sets up what each method keeps resident for K deployed NFs (a pool, a zygote or
 * pre-initialised process per NF, images) and writes the summed PSS of every process involved.
 *
 * Usage: serpens-startbench [EAL args] -- --nf PATH [options]   (--help lists them)
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_memzone.h>
#include <rte_ring.h>

#include "ctl.h"
#include "eal_files.h"
#include "eal_init_lock.h"
#include "nfm.h"
#include "startbench_int.h"

#define METHOD_NAME(m) (st_by_method((enum st_method)(m))->name)

static struct {
	const char *nf_path, *workdir, *out_path, *self, *placement;
	char methods[ST_COUNT];
	unsigned int counts[64], ncounts;
	unsigned int mem_steps[64], nmem;
	unsigned int reps, slow_reps, pool;
	bool memory;
} opt = {.placement = "any", .reps = 100, .slow_reps = 10, .pool = 100};

static struct sb_ctl *ctl;
static struct sm_region *region;
static struct rte_mempool *mbufs;
static FILE *out;
static int my_cpu;
static char prefix[256];
static struct eal_files files;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "serpens-startbench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static unsigned int parse_list(const char *s, unsigned int *v, unsigned int max, const char *what)
{
	unsigned int n = 0;
	char *end;

	while (*s) {
		unsigned long x = strtoul(s, &end, 10);

		if (end == s || x == 0 || x > 100000 || n == max)
			die("%s: expected a comma-separated list of positive integers, got '%s'", what, s);
		v[n++] = (unsigned int)x;
		s = *end == ',' ? end + 1 : end;
		if (*end && *end != ',')
			die("%s: unexpected '%s'", what, end);
	}
	return n;
}

/* ---------------------------------------------------------------------------------------------- */
/* slots and processes                                                                            */

static void send_cmd(struct sb_slot *s, uint32_t cmd)
{
	__atomic_store_n(&s->cmd, cmd, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&s->doorbell, 1, __ATOMIC_SEQ_CST);
	sp_futex_wake(&s->doorbell, 1);
}

/* Wait until the slot's state is one of the bits in `want` (1 << state); false on timeout. */
static bool wait_state(struct sb_slot *s, uint32_t want, uint64_t timeout_ns)
{
	uint64_t t0 = sb_now_ns();

	for (;;) {
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

		if (want & (1u << st))
			return true;
		if (sb_now_ns() - t0 > timeout_ns)
			return false;
		sp_futex_wait(&s->state, st, 10 * 1000 * 1000L);
	}
}

/* s as the body of a JSON string (quotes, backslashes and control characters escaped): error texts come
 * from dlerror(), the loader and the EAL, and must not break the samples file. */
static const char *json_str(const char *s, char *buf, size_t len)
{
	size_t n = 0;

	for (; *s && n + 7 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(buf + n, len - n, "\\u%04x", c);
		} else {
			buf[n++] = (char)c;
		}
	}
	buf[n] = '\0';
	return buf;
}

static const char *exit_text(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	return buf;
}

/* Wait until the instance in slot s has processed its first packet; false, with s->error set, if it
 * failed, timed out, or — a cold instance, pid > 0 — its process exited first (in its EAL init,
 * typically: the EAL's own message is on stderr just before). *reaped: that process was waited for. */
static bool wait_instance(struct sb_slot *s, pid_t pid, bool *reaped)
{
	uint64_t t0 = sb_now_ns();
	char how[64];
	int status;

	for (;;) {
		uint32_t st = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);

		if (st == SB_DONE)
			return true;
		if (st == SB_FAILED)
			return false;
		/* a cold instance never exits before it is told to stop: exiting now is its failure */
		if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
			*reaped = true;
			snprintf(s->error, sizeof(s->error), "its process exited (%s) before it was ready",
				 exit_text(status, how, sizeof(how)));
			return false;
		}
		if (sb_now_ns() - t0 > 30ull * 1000000000ull) {
			snprintf(s->error, sizeof(s->error), "not ready within 30 s");
			return false;
		}
		sp_futex_wait(&s->state, st, 10 * 1000 * 1000L);
	}
}

static const char *worker_cpus(void)
{
	static char buf[32];
	int other = my_cpu == 0 ? 1 : 0;

	if (!strcmp(opt.placement, "same"))
		snprintf(buf, sizeof(buf), "%d", my_cpu);
	else if (!strcmp(opt.placement, "other"))
		snprintf(buf, sizeof(buf), "%d", other);
	else
		snprintf(buf, sizeof(buf), "(%d,%d)", my_cpu < other ? my_cpu : other, my_cpu < other ? other : my_cpu);
	return buf;
}

/* Exec this binary as a DPDK secondary in role `role` for slot `slot` through the starter's prepare (a
 * resident) or start (a cold instance): native/serpens/startup, as serpensd does. */
static pid_t spawn(const struct sp_starter *st, bool resident, const char *role, int slot, int nf)
{
	char slot_s[16], nf_s[16], m_s[16];
	char *tail[] = {"-r", (char *)role, "-s", slot_s, "-n", nf_s, "-m", m_s, NULL};
	/* never outlive the orchestrator (a secondary in EAL init would wait for it forever) */
	struct st_spawn how = {.exe = opt.self, .file_prefix = prefix, .cpus = worker_cpus(), .log_level = "*:error",
			       .deathsig = SIGKILL};
	struct st_start req = {.spawn = &how, .lcore_id = sb_slot_lcore(slot), .tail = tail};
	pid_t pid;

	snprintf(slot_s, sizeof(slot_s), "%d", slot);
	snprintf(nf_s, sizeof(nf_s), "%d", nf);
	snprintf(m_s, sizeof(m_s), "%d", (int)st->method);
	pid = resident ? st->prepare(&req) : st->start(&req);
	if (pid < 0)
		die("fork: %s", strerror(errno));
	return pid;
}

/* Start the resident process of method `m` (pool worker, zygote, host) in `slot` and wait until it waits. */
static void spawn_resident(int m, int slot, int nf)
{
	static const char *const role[] = {[ST_RES_POOL] = "pool", [ST_RES_ZYGOTE] = "zygote", [ST_RES_HOST] = "host"};
	const struct sp_starter *st = st_by_method((enum st_method)m);
	struct sb_slot *s = &ctl->slot[slot];
	int status;
	pid_t pid;

	s->state = SB_EMPTY;
	s->cmd = SB_CMD_NONE;
	s->error[0] = '\0';
	pid = spawn(st, true, role[st->resident], slot, nf);
	s->pid = pid;
	if (!wait_state(s, 1u << SB_WAITING | 1u << SB_FAILED, 30ull * 1000000000ull) || s->state == SB_FAILED) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		die("%s process for slot %d did not come up: %s", role[st->resident], slot,
		    s->error[0] ? s->error : "timeout");
	}
}

static void stop_resident(int slot)
{
	struct sb_slot *s = &ctl->slot[slot];
	int status;

	if (s->pid <= 0)
		return;
	send_cmd(s, SB_CMD_EXIT);
	if (waitpid(s->pid, &status, 0) < 0 && errno != ECHILD)
		kill(s->pid, SIGKILL);
	s->pid = 0;
	s->state = SB_EMPTY;
}

/* ---------------------------------------------------------------------------------------------- */
/* deployment                                                                                     */

/* The NF Manager's steps (native/serpens/startup/nfm.h), as serpensd runs them: the deployment's own copy,
 * init in deploy mode through the dlopen loader, the image built once into a memfd (serpens) and saved as
 * a file (snapshot). */
static void deploy(unsigned int i)
{
	struct sb_nf *d = &ctl->nf[i];
	struct st_loaded loaded;
	struct st_nf view;
	char err[600];
	int fd;

	snprintf(d->name, sizeof(d->name), "nf%u", i);
	snprintf(d->path, sizeof(d->path), "%s/nf%u.so", opt.workdir, i);
	snprintf(d->snapshot, sizeof(d->snapshot), "%s/nf%u.img", opt.workdir, i);
	if (nfm_copy(opt.nf_path, d->path, err, sizeof(err)) != 0)
		die("%s", err);
	view = (struct st_nf){.name = d->name, .path = d->path, .cached_fd = -1};
	/* then the object is unloaded: the orchestrator keeps nothing of the NF but its state and its image */
	if (nfm_deploy_init(&view, &loaded, err, sizeof(err)) != 0)
		die("deploying %s: %s", opt.nf_path, err);
	st_unload(&loaded);
	sm_forget_local();
	fd = nfm_image_build(d->path, d->name, SB_IMAGE_BASE + (uint64_t)i * SB_IMAGE_SPAN, SB_IMAGE_SPAN, &d->image,
			     &d->image_bytes, err, sizeof(err));
	if (fd < 0)
		die("%s", err);
	if (nfm_snapshot_write(fd, &d->image, d->snapshot, err, sizeof(err)) != 0)
		die("%s", err);
	d->image_fd = fd;
	d->owner_pid = (int32_t)getpid();
}

static void setup(unsigned int nslots_needed, unsigned int nnf)
{
	const struct rte_memzone *cmz, *smz;
	size_t state_size = 64u << 20;
	unsigned int i;

	if (nslots_needed > SB_MAX_SLOTS)
		die("this run needs %u slots, at most %d", nslots_needed, SB_MAX_SLOTS);
	if (nnf > SB_MAX_NFS)
		die("at most %d deployed NFs", SB_MAX_NFS);
	cmz = rte_memzone_reserve(SB_CTL_MZ, sizeof(struct sb_ctl), SOCKET_ID_ANY, 0);
	smz = rte_memzone_reserve_aligned(SB_STATE_MZ, state_size, SOCKET_ID_ANY, 0, 4096);
	if (!cmz || !smz)
		die("cannot reserve memzones (hugepages?)");
	ctl = cmz->addr;
	memset(ctl, 0, sizeof(*ctl));
	memset(smz->addr, 0, state_size);
	region = sm_region_create(smz->addr, state_size);
	if (!region)
		die("cannot create the state region");
	sm_set_region(region);
	mbufs = rte_pktmbuf_pool_create("sb_mbufs", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (!mbufs)
		die("cannot create the mbuf pool");
	for (i = 0; i < nslots_needed; i++) {
		struct sb_slot *s = &ctl->slot[i];

		snprintf(s->rx, sizeof(s->rx), "sb_rx%u", i);
		snprintf(s->tx, sizeof(s->tx), "sb_tx%u", i);
		if (!rte_ring_create(s->rx, 4, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ) ||
		    !rte_ring_create(s->tx, 4, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ))
			die("cannot create rings");
	}
	for (i = 0; i < nnf; i++) {
		deploy(i);
		ctl->nnf = i + 1;
		if (nnf >= 50 && (i + 1) % 50 == 0)
			fprintf(stderr, "  deployed %u/%u NFs\n", i + 1, nnf);
	}
	ctl->magic = SB_MAGIC;
}

/* ---------------------------------------------------------------------------------------------- */
/* startup latency                                                                                */

/* A 64-byte UDP/IPv4 frame in the benchmarking range. */
static struct rte_mbuf *test_packet(void)
{
	static const uint8_t frame[60] = {
		0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00,                      /* Ethernet */
		0x45, 0, 0, 46, 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 1, 1, /* IPv4 */
		0x04, 0x00, 0x00, 0x35, 0, 26, 0, 0,                                       /* UDP 1024 -> 53 */
	};
	struct rte_mbuf *m = rte_pktmbuf_alloc(mbufs);
	char *p;

	if (!m || !(p = rte_pktmbuf_append(m, sizeof(frame))))
		die("cannot allocate a test packet");
	memcpy(p, frame, sizeof(frame));
	return m;
}

struct plan {
	int method;
	unsigned int n;
	int inst_base; /* slots of the started instances: inst_base .. inst_base+n-1 */
	int res_base;  /* slots of the resident processes (pool, zygotes, hosts) */
};

/* Drain a slot's rings (a failed round can leave its test packet behind; the rings hold 3). */
static void drain_rings(const struct sb_slot *s)
{
	const char *names[2] = {s->rx, s->tx};
	struct rte_mbuf *m;
	unsigned int k;

	for (k = 0; k < 2; k++) {
		struct rte_ring *r = rte_ring_lookup(names[k]);

		while (r && rte_ring_dequeue(r, (void **)&m) == 0)
			rte_pktmbuf_free(m);
	}
}

/* Stop one instance of a round: a cold instance's process must exit (it is killed after 10 s), a pool
 * worker must wait again, a forked or threaded instance must leave its slot. false if it did not. */
static bool stop_instance(struct sb_slot *s, pid_t pid, bool reaped, bool pool)
{
	uint64_t t0 = sb_now_ns();
	bool ok = true;
	int status;

	if (pid <= 0)
		return wait_state(s, pool ? 1u << SB_WAITING : 1u << SB_EMPTY, 10ull * 1000000000ull);
	while (!reaped && waitpid(pid, &status, WNOHANG) != pid) {
		if (sb_now_ns() - t0 > 10ull * 1000000000ull) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ok = false;
			break;
		}
		usleep(200);
	}
	s->state = SB_EMPTY; /* its process is gone, whatever it left in the slot */
	return ok;
}

/* Start n instances together; write one line per instance; stop them again. false, with why set to
 * the first failure, if any instance failed to start or to stop (every instance is still stopped). */
static bool one_round(const struct plan *p, unsigned int rep, char *why, size_t whylen)
{
	int m = p->method, req_cpu;
	const struct sp_starter *st = st_by_method((enum st_method)m);
	bool pool = st->resident == ST_RES_POOL, all_ok = true;
	uint64_t t_req;
	unsigned int i;
	int inst[SB_MAX_SLOTS];
	pid_t pids[SB_MAX_SLOTS];
	bool reaped[SB_MAX_SLOTS];
	char err[2 * sizeof(ctl->slot[0].error)];

	for (i = 0; i < p->n; i++) {
		/* pool methods start in the pool worker's own slot; the others in a fresh instance slot */
		int s = pool ? p->res_base + (int)i : p->inst_base + (int)i;
		struct sb_slot *sl = &ctl->slot[s];

		inst[i] = s;
		pids[i] = 0;
		reaped[i] = false;
		sl->error[0] = '\0';
		sl->t_woke = sl->t_ready = sl->t_first = 0;
		sl->cpu_woke = -1;
		sl->loader[0] = '\0';
		if (rte_ring_enqueue(rte_ring_lookup(sl->rx), test_packet()) != 0)
			die("rx ring of slot %d is full", s);
	}
	req_cpu = sched_getcpu();
	t_req = sb_now_ns();
	for (i = 0; i < p->n; i++) {
		struct sb_slot *sl = &ctl->slot[inst[i]];

		struct st_start req = {0};

		/* the request goes into the slot that receives it; the starter delivers it */
		__atomic_store_n(&sl->state, SB_STARTING, __ATOMIC_RELEASE);
		switch (st->resident) {
		case ST_RES_POOL:
			sl->method = (uint32_t)m;
			sl->nf = i;
			__atomic_store_n(&sl->cmd, SB_CMD_START, __ATOMIC_SEQ_CST);
			req.doorbell = &sl->doorbell;
			st->start(&req);
			break;
		case ST_RES_ZYGOTE:
		case ST_RES_HOST: {
			struct sb_slot *r = &ctl->slot[p->res_base + (int)i];

			r->target = inst[i];
			__atomic_store_n(&r->cmd, SB_CMD_START, __ATOMIC_SEQ_CST);
			req.doorbell = &r->doorbell;
			st->start(&req);
			break;
		}
		default: /* exec, snapshot */
			pids[i] = spawn(st, false, "cold", inst[i], (int)i);
			break;
		}
	}
	for (i = 0; i < p->n; i++) {
		struct sb_slot *sl = &ctl->slot[inst[i]];
		bool ok = wait_instance(sl, pids[i], &reaped[i]);
		struct rte_mbuf *pkt = NULL;
		int verdict = 0;

		if (ok) {
			if (rte_ring_dequeue(rte_ring_lookup(sl->tx), (void **)&pkt) != 0) {
				ok = false;
				snprintf(sl->error, sizeof(sl->error), "the first packet did not come back");
			} else {
				verdict = (int)pkt->hash.usr;
				rte_pktmbuf_free(pkt);
			}
		}
		fprintf(out,
			"{\"kind\":\"startup\",\"method\":\"%s\",\"instances\":%u,\"rep\":%u,\"instance\":%u,"
			"\"placement\":\"%s\",\"ok\":%s,\"ready_us\":%.3f,\"first_packet_us\":%.3f,\"woke_us\":%.3f,"
			"\"requester_cpu\":%d,\"instance_cpu\":%d,\"nf_verdict\":%d,\"loader\":\"%s\",\"error\":\"%s\"}\n",
			METHOD_NAME(m), p->n, rep, i, opt.placement, ok ? "true" : "false",
			ok ? (double)(sl->t_ready - t_req) / 1e3 : -1.0, ok ? (double)(sl->t_first - t_req) / 1e3 : -1.0,
			sl->t_woke ? (double)(sl->t_woke - t_req) / 1e3 : -1.0, req_cpu, sl->cpu_woke, verdict, sl->loader,
			ok ? "" : json_str(sl->error[0] ? sl->error : "failed", err, sizeof(err)));
		if (!ok && all_ok) { /* the first failure is the point's cause; the others are in their lines */
			snprintf(why, whylen, "%s instance %u (slot %d) failed: %s", METHOD_NAME(m), i, inst[i],
				 sl->error[0] ? sl->error : "failed");
			all_ok = false;
		}
	}
	fflush(out);
	/* stop: pool workers unload and wait again; forked children, threads and cold instances exit */
	for (i = 0; i < p->n; i++)
		if (!reaped[i])
			send_cmd(&ctl->slot[inst[i]], SB_CMD_STOP);
	for (i = 0; i < p->n; i++) {
		struct sb_slot *sl = &ctl->slot[inst[i]];

		if (!stop_instance(sl, pids[i], reaped[i], pool)) {
			if (all_ok)
				snprintf(why, whylen, "%s instance %u (slot %d) did not stop", METHOD_NAME(m), i, inst[i]);
			all_ok = false;
			continue; /* still running: its rings are not ours to drain */
		}
		if (!all_ok)
			drain_rings(sl);
	}
	return all_ok;
}

/* The end of one point (method, instances): a "point" line when every round ran, else a "fault" line
 * with the first failure (the round's other lines say which instances failed). Either way on stderr. */
static void point_end(int m, unsigned int n, unsigned int rounds, unsigned int reps, const char *why)
{
	char err[1300];

	if (rounds == reps) {
		fprintf(out, "{\"kind\":\"point\",\"method\":\"%s\",\"instances\":%u,\"placement\":\"%s\",\"rounds\":%u}\n",
			METHOD_NAME(m), n, opt.placement, reps);
		fprintf(stderr, "  %-8s %3u instance(s): done\n", METHOD_NAME(m), n);
	} else {
		fprintf(out,
			"{\"kind\":\"fault\",\"method\":\"%s\",\"instances\":%u,\"placement\":\"%s\",\"rep\":%u,"
			"\"status\":\"failed\",\"error\":\"%s\"}\n",
			METHOD_NAME(m), n, opt.placement, rounds, json_str(why, err, sizeof(err)));
		fprintf(stderr, "  %-8s %3u instance(s): FAILED in round %u: %s\n", METHOD_NAME(m), n, rounds, why);
	}
	fflush(out);
}

/* Every method and count; a failed point is recorded and the others still run. The number of failed
 * points. */
static unsigned int startup_runs(void)
{
	unsigned int nmax = 0, i, r, failed = 0;
	int m;

	/* a count beyond the pool cannot be started by the pool methods, nor given slots: it is a failed point
	 * (below), not a reason to measure nothing */
	for (i = 0; i < opt.ncounts; i++)
		if (opt.counts[i] > nmax && opt.counts[i] <= opt.pool)
			nmax = opt.counts[i];
	setup(opt.pool + 2 * (nmax ? nmax : 1), nmax ? nmax : 1);
	for (m = 0; m < ST_COUNT; m++) {
		struct plan p = {.method = m, .res_base = 0, .inst_base = (int)opt.pool + (int)nmax};
		unsigned int reps = (m == ST_EXEC || m == ST_SNAPSHOT || m == ST_FORK) ? opt.slow_reps : opt.reps;
		unsigned int nres = 0;

		if (!opt.methods[m])
			continue;
		/* the residents this method keeps: a pool (load, serpens), one zygote/host per NF (fork, thread) */
		if (st_by_method((enum st_method)m)->resident == ST_RES_POOL) {
			p.res_base = 0;
			nres = nmax;
			for (i = 0; i < nres; i++)
				spawn_resident(m, p.res_base + (int)i, 0);
		} else if (st_by_method((enum st_method)m)->resident != ST_RES_NONE) {
			p.res_base = (int)opt.pool;
			nres = nmax;
			for (i = 0; i < nres; i++)
				spawn_resident(m, p.res_base + (int)i, (int)i);
		}
		for (i = 0; i < opt.ncounts; i++) {
			char why[1024] = "";

			p.n = opt.counts[i];
			fprintf(stderr, "  %-8s %3u instance(s) x %u rounds\n", METHOD_NAME(m), p.n, reps);
			if (p.n > opt.pool)
				snprintf(why, sizeof(why), "%u instances: more than the pool's %u processes (--pool)", p.n,
					 opt.pool);
			for (r = 0; r < reps && !why[0]; r++)
				if (!one_round(&p, r, why, sizeof(why)))
					break; /* the point failed: its other rounds would not make it a measurement */
			point_end(m, p.n, r, reps, why);
			failed += r < reps;
		}
		for (i = 0; i < nres; i++)
			stop_resident(p.res_base + (int)i);
	}
	return failed;
}

/* ---------------------------------------------------------------------------------------------- */
/* deployment memory                                                                              */

static long pss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pss: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void memory_line(const char *method, const char *resident, unsigned int k, unsigned int nproc)
{
	long total = pss_kb(getpid()), orch = total;
	uint64_t image = 0, disk = 0;
	unsigned int i;

	for (i = 0; i < nproc; i++) {
		long kb = pss_kb(ctl->slot[i].pid);

		if (kb < 0)
			die("cannot read the PSS of pid %d", ctl->slot[i].pid);
		total += kb;
	}
	for (i = 0; i < k; i++) {
		if (!strcmp(method, "serpens"))
			image += ctl->nf[i].image_bytes; /* memfd pages: resident, mapped by no process yet */
		if (!strcmp(method, "snapshot"))
			disk += ctl->nf[i].image.size;
	}
	fprintf(out,
		"{\"kind\":\"memory\",\"method\":\"%s\",\"resident\":\"%s\",\"deployed\":%u,\"processes\":%u,"
		"\"pss_kb\":%ld,\"orchestrator_pss_kb\":%ld,\"image_kb\":%.1f,\"memory_kb\":%.1f,\"disk_kb\":%.1f}\n",
		method, resident, k, nproc + 1, total, orch, (double)image / 1024, (double)total + (double)image / 1024,
		(double)disk / 1024);
	fflush(out);
}

/* For each method, grow the deployment to every step of --memory-steps and measure. Residents:
 *   serpens        a pool of --pool processes + one image per NF (memfd)
 *   load (pool)    a pool of --pool pre-initialised processes (dlopen on demand)
 *   load (per-nf)  one pre-initialised process per deployed NF (the paper's Fig. 11(b) Load)
 *   fork           one zygote per NF (EAL + NF loaded: SAND)
 *   thread         one process per NF with the NF loaded (Photons)
 *   exec, snapshot nothing resident (the object / snapshot file on disk) */
static void memory_runs(void)
{
	unsigned int kmax = 0, i, j, have;
	int m;

	for (i = 0; i < opt.nmem; i++)
		if (opt.mem_steps[i] > kmax)
			kmax = opt.mem_steps[i];
	setup(kmax > opt.pool ? kmax : opt.pool, kmax);
	for (m = 0; m < ST_COUNT; m++) {
		const char *variants[2] = {"per-nf", NULL};

		if (!opt.methods[m])
			continue;
		if (m == ST_SERPENS)
			variants[0] = "pool";
		if (m == ST_LOAD)
			variants[1] = "pool";
		if (m == ST_EXEC || m == ST_SNAPSHOT)
			variants[0] = "none";
		for (j = 0; j < 2 && variants[j]; j++) {
			const char *v = variants[j];
			bool pool = !strcmp(v, "pool"), none = !strcmp(v, "none");

			have = 0;
			if (pool) {
				for (; have < opt.pool; have++)
					spawn_resident(m, (int)have, 0);
			}
			for (i = 0; i < opt.nmem; i++) {
				unsigned int k = opt.mem_steps[i];

				if (!pool && !none) {
					for (; have < k; have++)
						spawn_resident(m, (int)have, (int)have);
				}
				fprintf(stderr, "  memory %-8s %-6s %3u NFs deployed, %u processes\n", METHOD_NAME(m), v, k,
					have);
				memory_line(METHOD_NAME(m), v, k, have);
			}
			for (i = 0; i < have; i++)
				stop_resident((int)i);
		}
	}
}

/* ---------------------------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: serpens-startbench [EAL args] -- --nf PATH --workdir DIR [options]\n"
		"  --methods LIST      of exec,fork,load,thread,snapshot,serpens (default: all)\n"
		"  --instances LIST    numbers of instances started together (default 1)\n"
		"  --reps N            rounds per count for load, thread, serpens (default 100)\n"
		"  --slow-reps N       rounds per count for exec, fork, snapshot (default 10)\n"
		"  --pool N            pool processes (default 100)\n"
		"  --placement P       CPU of the started processes vs the requester: same, other, any\n"
		"  --memory-steps LIST measure deployment memory at these numbers of deployed NFs instead\n"
		"  --out FILE          JSON lines (default stdout)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"nf", required_argument, NULL, 'N'},        {"workdir", required_argument, NULL, 'w'},
		{"methods", required_argument, NULL, 'M'},   {"instances", required_argument, NULL, 'i'},
		{"reps", required_argument, NULL, 'R'},      {"slow-reps", required_argument, NULL, 'S'},
		{"pool", required_argument, NULL, 'P'},      {"placement", required_argument, NULL, 'p'},
		{"memory-steps", required_argument, NULL, 'k'}, {"out", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0}};
	uint64_t t_start = sb_now_ns();
	const char *role = NULL;
	int ret, c, slot = -1, nf = 0, method = 0, m;
	unsigned int failed = 0;
	char *tok, *save, lock[PATH_MAX + 32], err[PATH_MAX + 128];

	if (argc == 2 && !strcmp(argv[1], "--starters")) { /* the startup methods this binary runs, no EAL */
		st_describe(stdout);
		return 0;
	}
	/* a secondary (the orchestrator published the lock) initialises alone: eal_init_lock.h */
	ret = eal_init_serialised(argc, argv);
	if (ret < 0)
		die("EAL init failed");
	argc -= ret;
	argv += ret;
	optind = 1;
	while ((c = getopt_long(argc, argv, "r:s:n:m:", lo, NULL)) != -1) {
		switch (c) {
		case 'r': role = optarg; break;
		case 's': slot = atoi(optarg); break;
		case 'n': nf = atoi(optarg); break;
		case 'm': method = atoi(optarg); break;
		case 'N': opt.nf_path = optarg; break;
		case 'w': opt.workdir = optarg; break;
		case 'M':
			for (tok = strtok_r(optarg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (!st_by_name(tok))
					die("--methods: unknown method '%s' (%s)", tok, st_names());
				opt.methods[st_by_name(tok)->method] = 1;
			}
			break;
		case 'i': opt.ncounts = parse_list(optarg, opt.counts, 64, "--instances"); break;
		case 'R': opt.reps = (unsigned int)atoi(optarg); break;
		case 'S': opt.slow_reps = (unsigned int)atoi(optarg); break;
		case 'P': opt.pool = (unsigned int)atoi(optarg); break;
		case 'p':
			if (strcmp(optarg, "same") && strcmp(optarg, "other") && strcmp(optarg, "any"))
				die("--placement: expected same, other or any, got '%s'", optarg);
			opt.placement = optarg;
			break;
		case 'k':
			opt.nmem = parse_list(optarg, opt.mem_steps, 64, "--memory-steps");
			opt.memory = true;
			break;
		case 'o': opt.out_path = optarg; break;
		default: usage();
		}
	}
	if (role)
		return sb_worker_main(role, slot, nf, method, t_start);
	if (rte_eal_process_type() != RTE_PROC_PRIMARY)
		die("the orchestrator must be a DPDK primary");
	eal_files_arm(&files);
	if (!opt.nf_path || !opt.workdir)
		usage();
	for (m = 0; m < ST_COUNT && !opt.methods[m]; m++)
		;
	if (m == ST_COUNT)
		memset(opt.methods, 1, sizeof(opt.methods));
	if (!opt.ncounts) {
		opt.counts[0] = 1;
		opt.ncounts = 1;
	}
	if (opt.reps == 0 || opt.slow_reps == 0)
		die("--reps and --slow-reps must be at least 1");
	if (opt.pool == 0 || opt.pool > SB_MAX_SLOTS / 3)
		die("--pool must be 1..%d", SB_MAX_SLOTS / 3);
	opt.self = realpath("/proc/self/exe", NULL);
	snprintf(prefix, sizeof(prefix), "%s", strrchr(rte_eal_get_runtime_dir(), '/') + 1);
	my_cpu = sched_getcpu();
	out = opt.out_path ? fopen(opt.out_path, "a") : stdout;
	if (!out)
		die("cannot open %s: %s", opt.out_path, strerror(errno));
	if (mkdir(opt.workdir, 0755) != 0 && errno != EEXIST)
		die("cannot create %s: %s", opt.workdir, strerror(errno));
	snprintf(lock, sizeof(lock), "%s/eal-init.lock", opt.workdir);
	if (eal_init_lock_publish(lock, err, sizeof(err)) != 0)
		die("%s", err);
	signal(SIGPIPE, SIG_IGN);
	if (opt.memory)
		memory_runs();
	else
		failed = startup_runs();
	if (out != stdout)
		fclose(out);
	eal_files_finish(&files); /* not rte_eal_cleanup(): see eal_files.h */
	if (failed) {
		fprintf(stderr, "serpens-startbench: %u point(s) failed (their \"fault\" lines say why)\n", failed);
		return 1;
	}
	return 0;
}
