/*
 * control.c: serpensd's control thread — deployment of NFs and SFCs (the NF Manager and the State
 * Manager's side of init), the Instance Manager (start/stop runtime processes, keep-warm, restart of
 * crashed instances, start on demand), and the JSON-lines control socket (docs/serpens-control.md).
 *
 * It runs as a DPDK control thread (off the data-plane core). It changes what the data plane sees only
 * by publishing a new routing table (one atomic pointer store) and waiting for a grace period before
 * freeing the old one or reusing an instance slot.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "chainer.h"
#include "nfm.h"
#include "serpensd.h"
#include "state_stats.h"

#define READY_TIMEOUT_NS (15ull * 1000000000ull)
#define STOP_TIMEOUT_NS (3ull * 1000000000ull)
#define LINE_MAX_BYTES (1 << 20)

static struct serpensd *D;
static int listen_fd = -1;
static pthread_t thread;
static void *nf_dl[SP_MAX_NFS];
static char nf_dir[PATH_MAX];
static uint64_t crashes[SP_MAX_SFCS];
static char crash_msg[SP_MAX_SFCS][160];

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned int us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

static uint64_t retire(int slot, bool crashed);
static json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fail(const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", buf);
}

static json_t *ok(void) { return json_pack("{s:b}", "ok", 1); }

/* ---------------------------------------------------------------------------------------------- */
/* routing                                                                                         */

static void grace_period(void)
{
	uint64_t e = __atomic_load_n(&D->dp_epoch, __ATOMIC_ACQUIRE), t0 = mono_ns();

	if (!__atomic_load_n(&D->dp_running, __ATOMIC_ACQUIRE))
		return; /* no data plane reading the table (start-up, shut-down) */
	while (__atomic_load_n(&D->dp_epoch, __ATOMIC_ACQUIRE) < e + 2 && mono_ns() - t0 < 1000000000ull)
		sleep_us(20);
}

void control_publish_routes(struct serpensd *d)
{
	struct route_table *rt = calloc(1, sizeof(*rt)), *old;
	unsigned int s, i, b, n;
	int slots[SM_MAX_INSTANCES];

	if (!rt)
		return;
	for (s = 0; s < SP_MAX_SFCS; s++) {
		if (!d->ctl->sfcs[s].used)
			continue;
		rt->sfc_id[rt->nsfc] = s;
		rt->match[rt->nsfc] = d->ctl->sfcs[s].match;
		for (i = 0, n = 0; i < SM_MAX_INSTANCES; i++)
			if (d->ctl->inst[i].state == INST_READY && d->ctl->inst[i].sfc == (int32_t)s)
				slots[n++] = (int)i;
		for (b = 0; b < RT_BUCKETS; b++)
			rt->bucket[rt->nsfc][b] = (int8_t)(n ? slots[b % n] : -1);
		rt->ninst[rt->nsfc] = (uint8_t)n;
		rt->nsfc++;
	}
	old = __atomic_exchange_n(&d->route, rt, __ATOMIC_ACQ_REL);
	grace_period();
	free(old);
	/* the proxy chainings pick instances themselves: a new generation makes them rebuild their view */
	__atomic_fetch_add(&d->ctl->delivery.gen, 1, __ATOMIC_SEQ_CST);
	if (d->delivery->quiesce)
		d->delivery->quiesce(d);
}

/* ---------------------------------------------------------------------------------------------- */
/* deployment                                                                                      */

static int find_nf(const char *name)
{
	int i;

	for (i = 0; i < SP_MAX_NFS; i++)
		if (D->ctl->nfs[i].used && strcmp(D->ctl->nfs[i].name, name) == 0)
			return i;
	return -1;
}

static int find_sfc(const char *name)
{
	int i;

	for (i = 0; i < SP_MAX_SFCS; i++)
		if (D->ctl->sfcs[i].used && strcmp(D->ctl->sfcs[i].name, name) == 0)
			return i;
	return -1;
}

/* Build the NF's image once, into a memfd that runtimes map at a fixed address (native/serpens/loader);
 * for --startup snapshot, save it to a file next to the object and keep nothing resident. */
static int build_image(int slot, struct sp_nf_desc *d, char *err, size_t errlen)
{
	int fd = nfm_image_build(d->path, d->name, SP_NF_IMAGE_BASE + (uint64_t)slot * SP_NF_IMAGE_SPAN,
				 SP_NF_IMAGE_SPAN, &d->image, NULL, err, errlen);

	if (fd < 0)
		return -1;
	d->image_fd = fd;
	d->owner_pid = (int32_t)getpid();
	if (D->starter->snapshot) {
		size_t n = strlen(d->path); /* <nf-dir>/<name>.so -> <nf-dir>/<name>.img */

		if (n < 3 || n + 2 > sizeof(d->snapshot)) {
			snprintf(err, errlen, "NF %s: its snapshot path would be too long", d->name);
			close(fd);
			return -1;
		}
		memcpy(d->snapshot, d->path, n - 3);
		memcpy(d->snapshot + n - 3, ".img", 5);
		if (nfm_snapshot_write(fd, &d->image, d->snapshot, err, errlen) != 0) {
			d->snapshot[0] = '\0';
			close(fd);
			return -1;
		}
		close(fd);
		d->image_fd = -1;
	}
	d->has_image = 1;
	return 0;
}

static json_t *deploy_nf(json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	const char *path = json_string_value(json_object_get(req, "path"));
	json_t *args = json_object_get(req, "args"), *v, *tables;
	struct sp_nf_desc *d = NULL;
	struct st_loaded loaded;
	struct st_nf view;
	const char *key;
	char err[600];
	unsigned int before;
	int i, slot = -1;
	size_t off = 0;

	if (!name || !*name || strlen(name) >= SP_NAME_LEN || strchr(name, '/') || !path)
		return fail("deploy_nf: 'name' (no '/', < %d chars) and 'path' are required", SP_NAME_LEN);
	if (find_nf(name) >= 0)
		return fail("deploy_nf: an NF named '%s' is already deployed", name);
	for (i = 0; i < SP_MAX_NFS && slot < 0; i++)
		if (!D->ctl->nfs[i].used)
			slot = i;
	if (slot < 0)
		return fail("deploy_nf: %d NFs deployed already", SP_MAX_NFS);
	d = &D->ctl->nfs[slot];
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	/* every deployment gets its own copy: two deployments of one object never share globals */
	if ((size_t)snprintf(d->path, sizeof(d->path), "%s/%s.so", nf_dir, name) >= sizeof(d->path) ||
	    nfm_copy(path, d->path, err, sizeof(err)) != 0)
		return fail("deploy_nf %s: %s", name, err);
	if (args && !json_is_object(args))
		return fail("deploy_nf %s: 'args' must be an object of strings", name);
	json_object_foreach(args, key, v) {
		char num[64];
		const char *val = json_is_string(v) ? json_string_value(v) : NULL;
		size_t kl = strlen(key) + 1, vl;

		if (!val && json_is_number(v)) {
			snprintf(num, sizeof(num), "%.17g", json_number_value(v));
			val = num;
		}
		if (!val)
			return fail("deploy_nf %s: argument '%s' must be a string or a number", name, key);
		vl = strlen(val) + 1;
		if (off + kl + vl + 1 > sizeof(d->args))
			return fail("deploy_nf %s: arguments longer than %zu bytes", name, sizeof(d->args));
		memcpy(d->args + off, key, kl);
		memcpy(d->args + off + kl, val, vl);
		off += kl + vl;
	}
	d->args[off] = '\0';
	d->args_len = (uint32_t)off;
	before = sm_table_count(D->state);
	chainer_nf_view(d, &view);
	if (nfm_deploy_init(&view, &loaded, err, sizeof(err)) != 0) {
		nf_dl[slot] = loaded.dl; /* kept when init failed: its tables may exist */
		unlink(d->path);
		return fail("deploy_nf: %s", err);
	}
	nf_dl[slot] = loaded.dl;
	if (D->starter->image && build_image(slot, d, err, sizeof(err)) != 0) {
		unlink(d->path);
		return fail("deploy_nf: %s", err); /* what the loader cannot honour is refused */
	}
	d->used = 1;
	tables = json_array();
	for (i = (int)before; i < (int)sm_table_count(D->state); i++)
		json_array_append_new(tables, json_string(sm_table_name(D->state, (unsigned int)i)));
	return json_pack("{s:b, s:o}", "ok", 1, "tables", tables);
}

static int parse_prefix(const char *s, uint32_t *net, uint32_t *mask)
{
	char buf[64], *slash;
	struct in_addr a;
	long len = 32;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		len = strtol(slash + 1, NULL, 10);
	}
	if (inet_pton(AF_INET, buf, &a) != 1 || len < 0 || len > 32)
		return -1;
	*mask = len ? htonl(~0u << (32 - len)) : 0;
	*net = a.s_addr & *mask;
	return 0;
}

/* Flatten a graph element into positions; returns -1 with err set. `tails` collects the positions whose
 * next must point at whatever comes after this element (aggregate). */
struct flat {
	struct sp_sfc_desc *s;
	char *err;
	size_t errlen;
	int tails[SP_MAX_POS];
	int ntails;
};

static int add_nf_pos(struct flat *f, const char *nf)
{
	int k = find_nf(nf), p, i;

	if (k < 0) {
		snprintf(f->err, f->errlen, "SFC %s names NF '%s', which is not deployed", f->s->name, nf);
		return -1;
	}
	if (f->s->npos >= SP_MAX_POS) {
		snprintf(f->err, f->errlen, "SFC %s: more than %d NFs", f->s->name, SP_MAX_POS);
		return -1;
	}
	p = (int)f->s->npos++;
	f->s->pos[p].nf = (uint16_t)k;
	f->s->pos[p].next_pass = SP_LABEL_END;
	for (i = 0; i < f->ntails; i++)
		f->s->pos[f->tails[i]].next_pass = (uint8_t)p;
	f->ntails = 1;
	f->tails[0] = p;
	return p;
}

static int flatten(struct flat *f, json_t *graph);

static int add_distribute(struct flat *f, json_t *el)
{
	json_t *branches = json_object_get(el, "distribute"), *b;
	const char *sel = json_string_value(json_object_get(el, "selector")), *dot;
	int up, tails[SP_MAX_POS], nt = 0, i, start;
	size_t bi;

	if (!json_is_array(branches) || json_array_size(branches) == 0 ||
	    json_array_size(branches) > SP_MAX_BRANCH || !sel) {
		snprintf(f->err, f->errlen, "SFC %s: distribute needs 1..%d branches and a selector \"nf.name\"",
			 f->s->name, SP_MAX_BRANCH);
		return -1;
	}
	if (f->ntails != 1) {
		snprintf(f->err, f->errlen, "SFC %s: distribute must follow exactly one NF (its verdict selects)",
			 f->s->name);
		return -1;
	}
	up = f->tails[0];
	dot = strchr(sel, '.');
	if (!dot || (size_t)(dot - sel) != strlen(D->ctl->nfs[f->s->pos[up].nf].name) ||
	    strncmp(sel, D->ctl->nfs[f->s->pos[up].nf].name, (size_t)(dot - sel)) != 0) {
		snprintf(f->err, f->errlen, "SFC %s: selector '%s' must belong to the NF before the distribute "
			 "('%s.<selector>')", f->s->name, sel, D->ctl->nfs[f->s->pos[up].nf].name);
		return -1;
	}
	snprintf(f->s->pos[up].selector, sizeof(f->s->pos[up].selector), "%s", dot + 1);
	f->s->pos[up].nbranch = (uint8_t)json_array_size(branches);
	json_array_foreach(branches, bi, b) {
		start = (int)f->s->npos;
		f->ntails = 0;
		if (json_is_string(b)) {
			if (add_nf_pos(f, json_string_value(b)) < 0)
				return -1;
		} else if (json_is_array(b) && json_array_size(b) > 0) {
			if (flatten(f, b) < 0)
				return -1;
		} else {
			snprintf(f->err, f->errlen, "SFC %s: a branch is an NF name or a list of them", f->s->name);
			return -1;
		}
		f->s->pos[up].next[bi] = (uint8_t)start;
		for (i = 0; i < f->ntails; i++)
			tails[nt++] = f->tails[i];
	}
	f->s->pos[up].next_pass = SP_LABEL_DROP; /* with a selector, next[] decides */
	memcpy(f->tails, tails, sizeof(int) * (size_t)nt);
	f->ntails = nt; /* aggregate: all branch ends lead to what follows */
	return 0;
}

static int flatten(struct flat *f, json_t *graph)
{
	json_t *el;
	size_t i;

	json_array_foreach(graph, i, el) {
		if (json_is_string(el)) {
			if (add_nf_pos(f, json_string_value(el)) < 0)
				return -1;
		} else if (json_is_object(el) && json_object_get(el, "distribute")) {
			if (add_distribute(f, el) < 0)
				return -1;
		} else if (json_is_object(el) && json_object_get(el, "aggregate")) {
			continue; /* branches aggregate implicitly into the next element */
		} else {
			snprintf(f->err, f->errlen, "SFC %s: graph element %zu is neither an NF name nor a "
				 "distribute", f->s->name, i);
			return -1;
		}
	}
	return 0;
}

static int selectors_exist(struct sp_sfc_desc *s, char *err, size_t errlen)
{
	unsigned int i;

	for (i = 0; i < s->npos; i++) {
		char sym[SP_NAME_LEN + 32];
		const sp_selector_fn *fp;

		if (!s->pos[i].selector[0])
			continue;
		snprintf(sym, sizeof(sym), "serpens_selector_%s", s->pos[i].selector);
		fp = nf_dl[s->pos[i].nf] ? dlsym(nf_dl[s->pos[i].nf], sym) : NULL;
		if (!fp || !*fp) {
			snprintf(err, errlen, "SFC %s: NF %s defines no selector '%s' (SP_SELECTOR)", s->name,
				 D->ctl->nfs[s->pos[i].nf].name, s->pos[i].selector);
			return -1;
		}
	}
	return 0;
}

/* The flattened label graph, for the reply: [{"nf": name, "next": [..] or "next_pass": n}, ...]. */
static json_t *positions_json(const struct sp_sfc_desc *s)
{
	json_t *out = json_array();
	unsigned int i, b;

	for (i = 0; i < s->npos; i++) {
		const struct sp_pos *p = &s->pos[i];
		json_t *o = json_pack("{s:s}", "nf", D->ctl->nfs[p->nf].name);

		if (p->selector[0]) {
			json_t *next = json_array();

			for (b = 0; b < p->nbranch; b++)
				json_array_append_new(next, json_integer(p->next[b]));
			json_object_set_new(o, "selector", json_string(p->selector));
			json_object_set_new(o, "next", next);
		} else {
			json_object_set_new(o, "next_pass", p->next_pass == SP_LABEL_END ? json_string("end")
							    : json_integer(p->next_pass));
		}
		json_array_append_new(out, o);
	}
	return out;
}

static int zygote_launch(int sfc, char *err, size_t errlen);

static json_t *deploy_sfc(json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	json_t *graph = json_object_get(req, "graph"), *match = json_object_get(req, "match"), *v;
	struct sp_sfc_desc tmp;
	struct flat f;
	char err[512];
	int i, slot = -1;

	if (!name || !*name || strlen(name) >= SP_NAME_LEN)
		return fail("deploy_sfc: 'name' is required (< %d chars)", SP_NAME_LEN);
	if (find_sfc(name) >= 0)
		return fail("deploy_sfc: an SFC named '%s' exists already", name);
	if (!json_is_array(graph) || json_array_size(graph) == 0)
		return fail("deploy_sfc %s: 'graph' must be a non-empty list", name);
	memset(&tmp, 0, sizeof(tmp));
	snprintf(tmp.name, sizeof(tmp.name), "%s", name);
	if (match && !json_is_object(match))
		return fail("deploy_sfc %s: 'match' must be an object", name);
	if ((v = json_object_get(match, "dst")) &&
	    (!json_is_string(v) || parse_prefix(json_string_value(v), &tmp.match.dst, &tmp.match.dst_mask)))
		return fail("deploy_sfc %s: match.dst must be an IPv4 prefix like 48.0.0.0/8", name);
	if ((v = json_object_get(match, "src")) &&
	    (!json_is_string(v) || parse_prefix(json_string_value(v), &tmp.match.src, &tmp.match.src_mask)))
		return fail("deploy_sfc %s: match.src must be an IPv4 prefix", name);
	if ((v = json_object_get(match, "proto")))
		tmp.match.proto = (uint8_t)json_integer_value(v);
	if ((v = json_object_get(match, "dport")))
		tmp.match.dport = htons((uint16_t)json_integer_value(v));
	f = (struct flat){.s = &tmp, .err = err, .errlen = sizeof(err)};
	if (flatten(&f, graph) != 0 || selectors_exist(&tmp, err, sizeof(err)) != 0)
		return fail("deploy_sfc: %s", err);
	for (i = 0; i < SP_MAX_SFCS && slot < 0; i++)
		if (!D->ctl->sfcs[i].used)
			slot = i;
	if (slot < 0)
		return fail("deploy_sfc: %d SFCs deployed already", SP_MAX_SFCS);
	tmp.used = 1;
	D->ctl->sfcs[slot] = tmp;
	if (D->starter->resident == ST_RES_ZYGOTE && zygote_launch(slot, err, sizeof(err)) != 0) {
		D->ctl->sfcs[slot].used = 0;
		return fail("deploy_sfc: %s", err);
	}
	control_publish_routes(D);
	return json_pack("{s:b, s:i, s:o}", "ok", 1, "sfc", slot, "positions", positions_json(&tmp));
}

/* ---------------------------------------------------------------------------------------------- */
/* Instance Manager                                                                                */

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

/* Packets an instance slot leaves in its rings are dropped; with per-NF chaining they count as the hop's
 * `stranded` (delivery.h: every drop attributed to a hop). */
static void drain_slot(int slot, bool rx, bool tx)
{
	struct sp_instance *in = &D->ctl->inst[slot];
	uint64_t n = (rx ? drain_ring(D->rx[slot]) : 0) + (tx ? drain_ring(D->tx[slot]) : 0);

	if (n && D->delivery->per_nf && in->sfc >= 0 && in->sfc < SP_MAX_SFCS && in->position >= 0 &&
	    in->position < SP_MAX_POS)
		__atomic_fetch_add(&D->ctl->delivery.hop[in->sfc][in->position].stranded, n, __ATOMIC_RELAXED);
}

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

/* Fork and exec a runtime for instance slot `slot`: a pool process (load, serpens: the starter's prepare),
 * the instance itself (exec, snapshot: its start), or — a start beyond the pool — a cold runtime that
 * loads the NFs the way the method does. */
static pid_t spawn_runtime(int slot, bool pooled)
{
	char slot_s[16], *tail[] = {"-s", slot_s, pooled ? "-p" : NULL, NULL};
	/* a distinct lcore id per slot, on the instance CPU: per-lcore state in shared memory (mempool
	 * caches) must never be used by two processes under one id, even when they share a CPU */
	struct st_start st = {.spawn = runtime_spawn(), .lcore_id = SP_INSTANCE_LCORE0 + (unsigned int)slot,
			      .tail = tail};
	pid_t pid;

	snprintf(slot_s, sizeof(slot_s), "%d", slot);
	if (pooled)
		pid = D->starter->prepare(&st);
	else if (D->starter->resident == ST_RES_NONE)
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
static bool slot_exited(int slot, int *status)
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
static void slot_kill(int slot, int *status)
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
static int zygote_launch(int sfc, char *err, size_t errlen)
{
	struct sp_zygote *z = &D->ctl->zygote[sfc];
	char sfc_s[16], *tail[] = {"-z", sfc_s, NULL};
	struct st_start st = {.spawn = runtime_spawn(), .lcore_id = SP_ZYGOTE_LCORE0 + (unsigned int)sfc,
			      .tail = tail};
	uint64_t t0 = mono_ns();
	int status;
	pid_t pid;

	snprintf(sfc_s, sizeof(sfc_s), "%d", sfc);
	z->error[0] = '\0';
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

static void zygote_stop(int sfc)
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

static bool is_pool_slot(int slot) { return slot < (int)D->pool_size; }

/* Launch the pooled runtime of one slot and wait until it waits (EAL initialised, no SFC). */
static int pool_fill(int slot)
{
	struct sp_instance *in = &D->ctl->inst[slot];
	uint64_t t0 = mono_ns();
	int status;

	in->stop = 0;
	in->error[0] = '\0';
	in->state = INST_FREE;
	if (spawn_runtime(slot, true) < 0)
		return -1;
	while (__atomic_load_n(&in->state, __ATOMIC_ACQUIRE) != INST_POOLED) {
		if (waitpid(D->pid[slot], &status, WNOHANG) == D->pid[slot] || mono_ns() - t0 > READY_TIMEOUT_NS) {
			kill(D->pid[slot], SIGKILL);
			waitpid(D->pid[slot], &status, 0);
			fprintf(stderr, "serpensd: pooled runtime for slot %d did not start: %s\n", slot,
				in->error[0] ? in->error : "exited or timed out");
			D->pid[slot] = 0;
			in->state = INST_FREE;
			return -1;
		}
		sleep_us(50);
	}
	return 0;
}

int control_fill_pool(struct serpensd *d)
{
	unsigned int i;

	D = d;
	for (i = 0; i < d->pool_size; i++)
		if (pool_fill((int)i) != 0)
			return -1;
	return 0;
}

/* Claim an instance slot: a pooled one if any waits, else one without a pooled runtime. */
static int claim_slot(bool *pooled)
{
	int i;

	for (i = 0; i < (int)D->pool_size; i++)
		if (D->ctl->inst[i].state == INST_POOLED && sm_instance_claim_at(D->state, i) == i) {
			*pooled = true;
			return i;
		}
	for (i = (int)D->pool_size; i < SM_MAX_INSTANCES; i++)
		if (D->ctl->inst[i].state == INST_FREE && sm_instance_claim_at(D->state, i) == i) {
			*pooled = false;
			return i;
		}
	return -1;
}

/* Start one instance of SFC `sfc` running position `pos` (-1: the whole SFC). */
static json_t *start_one(int sfc, int pos)
{
	struct sp_instance *in;
	uint64_t t0 = mono_ns();
	bool pooled = false, forked = D->starter->resident == ST_RES_ZYGOTE;
	char zerr[400];
	int slot, status;
	pid_t pid;

	if (sfc < 0 || sfc >= SP_MAX_SFCS || !D->ctl->sfcs[sfc].used)
		return fail("start_instance: no SFC with id %d", sfc);
	if (forked && !D->zygote_pid[sfc] && zygote_launch(sfc, zerr, sizeof(zerr)) != 0)
		return fail("start_instance: %s", zerr); /* its zygote died: a new one first */
	slot = claim_slot(&pooled); /* splits global/write state for it */
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
	in->exit_status = 0;
	in->exited = 0;
	in->exited_status = 0;
	D->forked[slot] = forked;
	__atomic_store_n(&in->state, INST_STARTING, __ATOMIC_RELEASE);
	if (pooled) { /* wake the waiting runtime: it loads the SFC's NFs and reports ready */
		struct st_start st = {.doorbell = &in->doorbell};

		D->starter->start(&st);
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
		pid = spawn_runtime(slot, false);
		if (pid < 0) {
			in->state = INST_FREE;
			sm_instance_release(D->state, slot);
			return fail("start_instance: fork failed: %s", strerror(errno));
		}
	}
	while (__atomic_load_n(&in->state, __ATOMIC_ACQUIRE) == INST_STARTING) {
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
		bool back_in_pool = in->state == INST_POOLED;

		snprintf(why, sizeof(why), "%s", in->error[0] ? in->error : "the runtime exited");
		if (!back_in_pool) {
			if (slot_exited(slot, &status))
				in->exit_status = status;
			in->state = INST_FREE;
			D->pid[slot] = 0;
		}
		sm_instance_release(D->state, slot);
		if (!back_in_pool && is_pool_slot(slot))
			pool_fill(slot);
		return fail("start_instance %s: %s", D->ctl->sfcs[sfc].name, why);
	}
	D->startup_ns[slot] = mono_ns() - t0;
	if (forked)
		pid = D->pid[slot] = in->pid; /* written by the child before it said ready */
	in->last_pkt_tsc = rte_rdtsc();
	control_publish_routes(D);
	return json_pack("{s:b, s:i, s:i, s:f, s:b, s:s, s:s}", "ok", 1, "instance", slot, "pid", (int)pid,
			 "startup_us", (double)D->startup_ns[slot] / 1e3, "pooled", pooled, "startup", D->starter->name,
			 "loader", in->loader);
}

/* start_instance: one instance of the whole SFC, or — with per-NF chaining — an instance set, one per
 * position, in position order. The reply keeps the one-instance fields (the set's first slot and pid,
 * startup_us of the whole set, pooled if all were) and adds the set: "instances" and "positions". A set
 * that cannot be completed is taken down again. */
static json_t *start_instance(int sfc)
{
	json_t *rep, *one, *slots, *positions;
	uint64_t t0 = mono_ns();
	bool pooled = true;
	unsigned int p, npos;

	if (!D->delivery->per_nf)
		return start_one(sfc, -1);
	if (sfc < 0 || sfc >= SP_MAX_SFCS || !D->ctl->sfcs[sfc].used)
		return fail("start_instance: no SFC with id %d", sfc);
	npos = D->ctl->sfcs[sfc].npos;
	slots = json_array();
	positions = json_array();
	rep = NULL;
	for (p = 0; p < npos; p++) {
		one = start_one(sfc, (int)p);
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
	json_object_set_new(rep, "startup_us", json_real((double)(mono_ns() - t0) / 1e3));
	json_object_set_new(rep, "pooled", json_boolean(pooled));
	json_object_set_new(rep, "instances", slots);
	json_object_set_new(rep, "positions", positions);
	return rep;
}

/* Take a slot out of service: out of the routing table, stop the process (a pooled one goes back to the
 * pool) or reap it, let the data plane send what it produced, merge its state back. */
static uint64_t retire(int slot, bool crashed)
{
	struct sp_instance *in = &D->ctl->inst[slot];
	bool pooled = is_pool_slot(slot) && !crashed;
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
			if (pooled && __atomic_load_n(&in->state, __ATOMIC_ACQUIRE) == INST_POOLED)
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
	sm_instance_release(D->state, slot);
	if (!pooled) {
		D->pid[slot] = 0;
		in->pid = 0;
		__atomic_store_n(&in->state, INST_FREE, __ATOMIC_RELEASE);
		if (is_pool_slot(slot))
			pool_fill(slot); /* keep the pool full */
	}
	return processed;
}

static json_t *stop_instance(int slot)
{
	if (slot < 0 || slot >= SM_MAX_INSTANCES || D->ctl->inst[slot].state != INST_READY)
		return fail("stop_instance: no running instance in slot %d", slot);
	return json_pack("{s:b, s:I}", "ok", 1, "drained", (json_int_t)retire(slot, false));
}

void control_stop_all(struct serpensd *d)
{
	int i, status;

	(void)d;
	if (!D)
		return;
	for (i = 0; i < SM_MAX_INSTANCES; i++)
		if (D->ctl->inst[i].state == INST_READY)
			retire(i, false);
	for (i = 0; i < (int)D->pool_size; i++) { /* empty the pool */
		struct sp_instance *in = &D->ctl->inst[i];
		uint64_t t0 = mono_ns();

		if (!D->pid[i])
			continue;
		__atomic_store_n(&in->stop, SP_STOP_EXIT, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&in->doorbell, 1, __ATOMIC_SEQ_CST);
		sp_futex_wake(&in->doorbell, 1);
		while (waitpid(D->pid[i], &status, WNOHANG) == 0) {
			if (mono_ns() - t0 > STOP_TIMEOUT_NS) {
				kill(D->pid[i], SIGKILL);
				waitpid(D->pid[i], &status, 0);
				break;
			}
			sleep_us(100);
		}
		D->pid[i] = 0;
		in->state = INST_FREE;
	}
	for (i = 0; i < SP_MAX_SFCS; i++)
		zygote_stop(i);
}

/* A start the control thread made on its own (a replacement, on demand) has no client to read its
 * error: the log gets it. */
static void report_failed_start(json_t *rep)
{
	if (!json_is_true(json_object_get(rep, "ok")))
		fprintf(stderr, "serpensd: %s\n", json_string_value(json_object_get(rep, "error")));
	json_decref(rep);
}

/* A ready instance's process exited: report it, merge its state, start a replacement (the same position
 * with per-NF chaining, else the whole SFC). */
static void crashed(int i, pid_t pid, int status)
{
	int sfc = D->ctl->inst[i].sfc, pos = D->ctl->inst[i].position;

	D->ctl->inst[i].exit_status = status;
	crashes[sfc]++;
	snprintf(crash_msg[sfc], sizeof(crash_msg[sfc]), "instance %d (pid %d) %s %d", i, (int)pid,
		 WIFSIGNALED(status) ? "killed by signal" : "exited with status",
		 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	fprintf(stderr, "serpensd: SFC %s: %s; restarting it, state kept\n", D->ctl->sfcs[sfc].name, crash_msg[sfc]);
	retire(i, true);
	report_failed_start(D->delivery->per_nf ? start_one(sfc, pos) : start_instance(sfc));
}

/* Periodic duties: reap crashed runtimes (report, merge state, restart), keep-warm, start on demand. */
static void tick(void)
{
	uint64_t now, hz = rte_get_tsc_hz();
	int i, status, sfc, pos;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (D->delivery->reaped && D->delivery->reaped(D, pid, status))
			continue; /* the chaining mechanism's own process (the proxy): restarted */
		for (sfc = 0; sfc < SP_MAX_SFCS; sfc++)
			if (D->zygote_pid[sfc] == pid) { /* its instances die with it; the next start makes a new one */
				fprintf(stderr, "serpensd: the zygote of SFC %s (pid %d) died\n", D->ctl->sfcs[sfc].name,
					(int)pid);
				D->zygote_pid[sfc] = 0;
				D->ctl->zygote[sfc].state = ZY_NONE;
			}
		for (i = 0; i < SM_MAX_INSTANCES; i++) {
			if (D->pid[i] == pid && D->ctl->inst[i].state == INST_POOLED) { /* died waiting */
				fprintf(stderr, "serpensd: pooled runtime of slot %d died; replacing it\n", i);
				D->pid[i] = 0;
				D->ctl->inst[i].state = INST_FREE;
				pool_fill(i);
				continue;
			}
			if (D->pid[i] == pid && D->ctl->inst[i].state == INST_READY)
				crashed(i, pid, status);
		}
	}
	for (i = 0; i < SM_MAX_INSTANCES; i++) /* forked instances: their zygote reaped them */
		if (D->forked[i] && D->ctl->inst[i].state == INST_READY && slot_exited(i, &status))
			crashed(i, D->pid[i], status);
	/* now again: a replacement started above (or a packet queued by another process since) is newer than
	 * the first reading, and must not look idle for 2^64 cycles */
	now = rte_rdtsc();
	for (i = 0; i < SM_MAX_INSTANCES; i++) {
		struct sp_instance *in = &D->ctl->inst[i];
		uint64_t last = __atomic_load_n(&in->last_pkt_tsc, __ATOMIC_RELAXED);

		if (in->state == INST_READY && D->keep_warm_s > 0 && now > last &&
		    now - last > (uint64_t)(D->keep_warm_s * (double)hz) && rte_ring_empty(D->rx[i]))
			retire(i, false); /* kept warm long enough with no packet: scale to zero */
	}
	for (sfc = 0; D->auto_start && D->delivery->per_nf && sfc < SP_MAX_SFCS; sfc++) {
		/* per-NF chaining: the proxy marks positions whose packets found no instance */
		uint64_t want = __atomic_exchange_n(&D->ctl->delivery.want_start[sfc], 0, __ATOMIC_RELAXED);

		for (pos = 0; want && D->ctl->sfcs[sfc].used && pos < (int)D->ctl->sfcs[sfc].npos; pos++) {
			bool has = false;

			if (!(want & (1ull << pos)))
				continue;
			for (i = 0; i < SM_MAX_INSTANCES; i++)
				has |= D->ctl->inst[i].state == INST_READY && D->ctl->inst[i].sfc == sfc &&
				       D->ctl->inst[i].position == pos;
			if (!has)
				json_decref(start_one(sfc, pos));
		}
	}
	for (sfc = 0; D->auto_start && !D->delivery->per_nf && sfc < SP_MAX_SFCS; sfc++) {
		bool has = false;

		if (!D->ctl->sfcs[sfc].used || !__atomic_load_n(&D->want_start[sfc], __ATOMIC_RELAXED))
			continue;
		for (i = 0; i < SM_MAX_INSTANCES; i++)
			has |= D->ctl->inst[i].state == INST_READY && D->ctl->inst[i].sfc == sfc;
		__atomic_store_n(&D->want_start[sfc], 0, __ATOMIC_RELAXED);
		if (!has)
			report_failed_start(start_instance(sfc)); /* packets arrived for an SFC with no instance */
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* stats and state inspection                                                                      */

static json_t *u64(uint64_t v) { return json_integer((json_int_t)(v > INT64_MAX ? INT64_MAX : v)); }

static uint64_t ns_of(uint64_t cycles) { return (uint64_t)((double)cycles * 1e9 / (double)D->ctl->tsc_hz); }

static json_t *stage(uint64_t busy_ns, uint64_t packets)
{
	return json_pack("{s:o, s:o}", "busy_ns", u64(busy_ns), "packets", u64(packets));
}

/* stats.stages (docs/stages.md): per stage, busy time around work and the packets it handled, cumulative
 * since serpensd started. The instance stage sums every slot's lifetime counters, so instances that were
 * stopped or replaced still count; its packets are the packets that entered an SFC's instances (with
 * per-NF chaining a packet passes several instances: their work adds up per SFC packet); `units` has each
 * running instance's own share (from zero when it started). remote_state only on the backends that have
 * a remote store; a proxy stage only with a proxy chaining (delivery.h). */
static json_t *stages(void)
{
	const struct sp_gateway_stage *g = &D->ctl->gateway;
	uint64_t work = 0, packets = 0, remote = 0;
	json_t *gw, *inst, *units = json_array(), *rep;
	char id[64];
	int i;

	for (i = 0; i < SM_MAX_INSTANCES; i++) {
		const struct sp_instance *in = &D->ctl->inst[i];

		work += in->slot_work_cycles;
		packets += in->slot_chain_packets;
		remote += in->slot_remote_ns;
		if (in->state == INST_FREE || in->state == INST_POOLED)
			continue;
		snprintf(id, sizeof(id), "%d/%d/%llu", i, (int)in->pid, (unsigned long long)in->slot_starts);
		json_array_append_new(units, json_pack("{s:s, s:i, s:i, s:o, s:o, s:o, s:o}", "id", id, "instance", i,
						       "pid", (int)in->pid, "start", u64(in->slot_starts), "busy_ns",
						       u64(ns_of(in->work_cycles)), "packets", u64(in->pkts_in),
						       "remote_ns", u64(in->work_remote_ns)));
	}
	gw = stage(ns_of(g->busy_cycles), g->packets);
	json_object_set_new(gw, "wake_ns", u64(ns_of(g->wake_cycles)));
	inst = stage(ns_of(work), packets);
	json_object_set_new(inst, "units", units);
	rep = json_pack("{s:o, s:o}", "gateway", gw, "instance", inst);
	if (D->ctl->state_backend != RS_SERPENS)
		json_object_set_new(rep, "remote_state", stage(remote, packets));
	if (D->delivery->stage)
		json_object_set_new(rep, "proxy", D->delivery->stage(D));
	return rep;
}

static json_t *stats(void)
{
	json_t *sfcs = json_array(), *insts = json_array(), *port, *rep, *o;
	struct rte_eth_stats st;
	int i;

	memset(&st, 0, sizeof(st));
	rte_eth_stats_get(0, &st);
	port = json_pack("{s:o, s:o, s:o, s:o, s:o}", "rx_packets", u64(D->port_rx), "tx_packets", u64(D->port_tx),
			 "tx_dropped", u64(D->port_tx_dropped), "imissed", u64(st.imissed), "rx_nombuf",
			 u64(st.rx_nombuf));
	for (i = 0; i < SP_MAX_SFCS; i++) {
		struct sp_sfc_desc *s = &D->ctl->sfcs[i];

		if (!s->used)
			continue;
		json_array_append_new(sfcs, json_pack("{s:i, s:s, s:o, s:o, s:o, s:o, s:I, s:s}", "sfc", i, "name",
						      s->name, "rx_packets", u64(s->rx), "tx_packets", u64(s->tx),
						      "no_instance", u64(s->no_instance), "ring_full",
						      u64(s->ring_full), "crashes", (json_int_t)crashes[i],
						      "last_crash", crash_msg[i]));
	}
	for (i = 0; i < SM_MAX_INSTANCES; i++) {
		struct sp_instance *in = &D->ctl->inst[i];
		static const char *names[] = {"free", "starting", "ready", "stopping", "dead", "pooled"};

		if (in->state == INST_FREE || in->state == INST_POOLED)
			continue;
		o = json_pack(
			"{s:i, s:i, s:s, s:s, s:i, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:f}", "instance", i, "sfc",
			in->sfc, "sfc_name", D->ctl->sfcs[in->sfc].name, "state", names[in->state % 6], "pid",
			in->pid, "alive", in->state == INST_READY && kill(in->pid, 0) == 0, "pkts_in",
			u64(in->pkts_in), "pkts_out", u64(in->pkts_out), "nf_drops", u64(in->nf_drops), "batches",
			u64(in->batches), "wakeups", u64(in->wakeups), "sleeps", u64(in->sleeps), "startup_us",
			(double)D->startup_ns[i] / 1e3, "busy_us", (double)in->busy_cycles * 1e6 / (double)rte_get_tsc_hz());
		json_object_set_new(o, "start", u64(in->slot_starts)); /* a restarted pooled slot keeps its pid */
		/* per-NF chaining: the NF it runs, and Table II's delivery time into it (docs/chaining.md) */
		json_object_set_new(o, "position", json_integer(in->position));
		json_object_set_new(o, "delivery_batches", u64(in->delivery_batches));
		json_object_set_new(o, "delivery_us", json_real(in->delivery_batches ?
				    (double)ns_of(in->delivery_cycles) / 1e3 / (double)in->delivery_batches : 0.0));
		json_object_update_new(o, state_stats_instance(in));
		json_array_append_new(insts, o);
	}
	rep = json_pack("{s:b, s:o, s:{s:o}, s:{s:o, s:o, s:o, s:o, s:o, s:o}, s:o, s:o, s:{s:I, s:I, s:I, s:s}}",
			 "ok", 1, "port", port, "gateway", "miss", u64(D->gateway_miss), "dataplane", "handoffs",
			 u64(D->handoff.handoffs), "handoff_timeouts", u64(D->handoff.timeouts), "handoff_max_us",
			 u64(D->handoff.max_ns / 1000), "loop_max_us", u64(D->loop_max_ns / 1000), "timers_max_us",
			 u64(D->timers_max_ns / 1000), "tx_max_us", u64(D->tx_max_ns / 1000), "sfcs", sfcs,
			 "instances", insts, "state",
			 "region_bytes", (json_int_t)((size_t)D->state_mb << 20), "used_bytes",
			 (json_int_t)sm_region_used(D->state), "api_errors", (json_int_t)sm_errors(D->state),
			 "last_error", sm_last_error(D->state));
	json_object_update_new(json_object_get(rep, "state"), state_stats_region(D->state, D->ctl->state_backend));
	json_object_set_new(rep, "stages", stages());
	json_object_set_new(rep, "chaining", json_string(D->delivery->name));
	if (D->delivery->stats)
		json_object_set_new(rep, "delivery", D->delivery->stats(D));
	return rep;
}

static int from_hex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = strlen(hex), i;
	unsigned int b;

	if (n % 2 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = (uint8_t)b;
	}
	return (int)(n / 2);
}

static json_t *to_hex(const void *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = p;
	char *s = malloc(2 * n + 1);
	json_t *j;
	size_t i;

	if (!s)
		return json_null();
	for (i = 0; i < n; i++) {
		s[2 * i] = digits[b[i] >> 4];
		s[2 * i + 1] = digits[b[i] & 15];
	}
	s[2 * n] = '\0';
	j = json_string(s);
	free(s);
	return j;
}

static json_t *read_state(json_t *req)
{
	const char *table = json_string_value(json_object_get(req, "table"));
	const char *hex = json_string_value(json_object_get(req, "key"));
	uint32_t flags, ks, vs;
	uint64_t count;
	uint8_t key[256], *val;
	json_t *r;
	int rc;

	if (!table || !hex || sm_table_info(D->state, table, &flags, &ks, &vs, &count) != 0)
		return fail("read_state: unknown table '%s' (tables are <nf>/<table>)", table ? table : "");
	if (from_hex(hex, key, sizeof(key)) != (int)ks)
		return fail("read_state %s: key must be %u bytes of hex", table, ks);
	val = malloc(vs);
	if (!val)
		return fail("read_state: out of memory");
	rc = sm_table_lookup(D->state, table, key, ks, val, vs);
	r = rc == 0 ? json_pack("{s:b, s:o}", "ok", 1, "value", to_hex(val, vs))
		    : fail("read_state %s: no such key", table);
	free(val);
	return r;
}

struct dump_ctx {
	json_t *entries;
	uint32_t ks, vs;
	json_int_t limit;
};

static void dump_one(const void *key, const void *value, void *ctx)
{
	struct dump_ctx *c = ctx;

	if (c->limit > 0 && (json_int_t)json_array_size(c->entries) >= c->limit)
		return;
	json_array_append_new(c->entries, json_pack("[o,o]", to_hex(key, c->ks), to_hex(value, c->vs)));
}

static json_t *dump_table(json_t *req)
{
	const char *table = json_string_value(json_object_get(req, "table"));
	struct dump_ctx c = {.entries = json_array(), .limit = json_integer_value(json_object_get(req, "limit"))};
	uint32_t flags;
	uint64_t count;

	if (!table || sm_table_info(D->state, table, &flags, &c.ks, &c.vs, &count) != 0) {
		json_decref(c.entries);
		return fail("dump_table: unknown table '%s'", table ? table : "");
	}
	sm_table_foreach(D->state, table, dump_one, &c);
	return json_pack("{s:b, s:o, s:I}", "ok", 1, "entries", c.entries, "count", (json_int_t)count);
}

static json_t *set_knobs(json_t *req)
{
	json_t *v;

	if ((v = json_object_get(req, "keep_warm_s")))
		D->keep_warm_s = json_number_value(v);
	if ((v = json_object_get(req, "wake_batch")) && json_integer_value(v) > 0)
		D->ctl->wake_batch = (uint32_t)json_integer_value(v);
	if ((v = json_object_get(req, "flush_us")))
		D->flush_us = (unsigned int)json_integer_value(v); /* takes effect at restart */
	return ok();
}

static json_t *handle(json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	json_t *v;

	if (!cmd)
		return fail("request without 'cmd'");
	if (!strcmp(cmd, "deploy_nf"))
		return deploy_nf(req);
	if (!strcmp(cmd, "deploy_sfc"))
		return deploy_sfc(req);
	if (!strcmp(cmd, "start_instance")) {
		const char *sfc = json_string_value(json_object_get(req, "sfc"));
		int id = find_sfc(sfc ? sfc : "");

		if (id < 0)
			return fail("start_instance: no SFC named '%s' is deployed", sfc ? sfc : "");
		return start_instance(id);
	}
	if (!strcmp(cmd, "stop_instance")) {
		v = json_object_get(req, "instance");
		return stop_instance(json_is_integer(v) ? (int)json_integer_value(v) : -1);
	}
	if (!strcmp(cmd, "stats"))
		return stats();
	if (!strcmp(cmd, "read_state"))
		return read_state(req);
	if (!strcmp(cmd, "dump_table"))
		return dump_table(req);
	if (!strcmp(cmd, "set"))
		return set_knobs(req);
	if (!strcmp(cmd, "shutdown")) {
		control_stop_all(D);
		D->quit = 1;
		return ok();
	}
	return fail("unknown command '%s'", cmd);
}

/* ---------------------------------------------------------------------------------------------- */
/* the socket                                                                                      */

static void serve_client(int fd)
{
	static char buf[LINE_MAX_BYTES];
	size_t have = 0;
	ssize_t n;
	char *nl;
	struct pollfd p = {.fd = fd, .events = POLLIN};

	while (!D->quit) {
		if (poll(&p, 1, 100) == 0) {
			tick();
			continue;
		}
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			return;
		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = memchr(buf, '\n', have))) {
			json_error_t jerr;
			json_t *req, *rep;
			char *out;

			*nl = '\0';
			req = json_loads(buf, 0, &jerr);
			rep = req ? handle(req) : fail("not JSON: %s", jerr.text);
			json_decref(req);
			out = json_dumps(rep, JSON_COMPACT);
			json_decref(rep);
			if (out) {
				size_t len = strlen(out);

				out[len] = '\n';
				if (write(fd, out, len + 1) < 0) {
					free(out);
					return;
				}
				free(out);
			}
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
		}
		if (have == sizeof(buf) - 1)
			return; /* a line longer than we accept */
	}
}

static void *control_main(void *arg)
{
	struct pollfd p = {.fd = listen_fd, .events = POLLIN};
	int fd;

	(void)arg;
	while (!D->quit) {
		if (poll(&p, 1, 100) <= 0) {
			tick();
			continue;
		}
		fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		serve_client(fd);
		close(fd);
	}
	return NULL;
}

int control_start(struct serpensd *d)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	D = d;
	if (d->nf_dir)
		snprintf(nf_dir, sizeof(nf_dir), "%s", d->nf_dir);
	else
		snprintf(nf_dir, sizeof(nf_dir), "/tmp/serpensd-%d-nfs", (int)getpid());
	if (mkdir(nf_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "serpensd: cannot create %s: %s\n", nf_dir, strerror(errno));
		return -1;
	}
	if (strlen(d->control_path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "serpensd: control socket path too long: %s\n", d->control_path);
		return -1;
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", d->control_path);
	unlink(d->control_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(listen_fd, 4) != 0) {
		fprintf(stderr, "serpensd: control socket %s: %s\n", d->control_path, strerror(errno));
		return -1;
	}
	control_publish_routes(d);
	return rte_ctrl_thread_create(&thread, "serpens-ctl", NULL, control_main, NULL);
}

void control_stop(struct serpensd *d)
{
	d->quit = 1;
	pthread_join(thread, NULL);
	close(listen_fd);
	unlink(d->control_path);
}

void control_cleanup(struct serpensd *d)
{
	int i;

	for (i = 0; i < SP_MAX_NFS; i++)
		if (d->ctl->nfs[i].used) {
			unlink(d->ctl->nfs[i].path);
			if (d->ctl->nfs[i].snapshot[0])
				unlink(d->ctl->nfs[i].snapshot);
		}
	rmdir(nf_dir);
}
