/*
 * delivery_local_proxy.c: SAND's chaining (paper Section II-B4, Table II, Fig. 13) behind the delivery
 * seam (delivery.h) — serpensd's side of it. Every NF of an SFC runs in an instance of its own; one proxy
 * process per server (local_proxy.c, `serpens-runtime -P`) carries batches between them. serpensd:
 *
 *  - creates the proxy's two rings and starts the proxy (setup), restarts it if it dies (reaped), and
 *    stops it at shutdown;
 *  - route: the gateway classifies a packet, tags it (SFC, flow hash, next position 0, no stamp:
 *    chain_tag.h) and queues it on the proxy's rx ring; no proxy or a full ring drops and counts it in
 *    the SFC's no_instance / ring_full;
 *  - poll: wakes the proxy by the rule of every hop (hop.h) — its rx ring is due — or when the proxy's
 *    own earliest flush deadline (wake_at) has passed, or when the control thread asked (kick); with
 *    --colocate it hands the proxy its core (and the proxy hands it on to the NF instances);
 *  - transmit: sends what the proxy put on its tx ring (packets whose label reached SP_LABEL_END).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "gateway.h"
#include "hop.h"
#include "serpensd.h"

#define PROXY_READY_TIMEOUT_NS (15ull * 1000000000ull)

static struct rte_ring *prx, *ptx;
static uint64_t pending_since; /* the flush clock of the proxy's rx ring */
static struct rte_mbuf *stage[DP_BURST];
static unsigned int nstage;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Start the proxy process and wait until it is ready. 0, or -1 with a message on stderr. */
static int spawn_proxy(struct serpensd *d)
{
	struct sp_proxy *p = &d->ctl->delivery.proxy;
	char *args[] = {"-P", NULL};
	uint64_t t0 = mono_ns();
	int status;
	pid_t pid;

	memset(&p->sl, 0, sizeof(p->sl));
	p->error[0] = '\0';
	__atomic_store_n(&p->state, INST_STARTING, __ATOMIC_RELEASE);
	/* on the instances' core: the proxy hands that core to the instance it wakes */
	pid = control_spawn(d, SP_PROXY_LCORE, args);
	if (pid < 0) {
		fprintf(stderr, "serpensd: cannot fork the local proxy: %s\n", strerror(errno));
		p->state = INST_DEAD;
		return -1;
	}
	p->pid = pid;
	while (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) == INST_STARTING) {
		if (waitpid(pid, &status, WNOHANG) == pid || mono_ns() - t0 > PROXY_READY_TIMEOUT_NS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fprintf(stderr, "serpensd: the local proxy did not start: %s\n",
				p->error[0] ? p->error : "exited or timed out");
			p->state = INST_DEAD;
			p->pid = 0;
			return -1;
		}
		sp_futex_wait(&p->state, INST_STARTING, 1000 * 1000L);
	}
	return p->state == INST_READY ? 0 : -1;
}

static int lp_setup(struct serpensd *d)
{
	struct sp_proxy *p = &d->ctl->delivery.proxy;

	snprintf(p->rx_ring, sizeof(p->rx_ring), "sp_proxy_rx");
	snprintf(p->tx_ring, sizeof(p->tx_ring), "sp_proxy_tx");
	prx = rte_ring_create(p->rx_ring, RING_SIZE, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	ptx = rte_ring_create(p->tx_ring, RING_SIZE, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (!prx || !ptx) {
		fprintf(stderr, "serpensd: cannot create the proxy's rings: %s\n", rte_strerror(rte_errno));
		return -1;
	}
	return spawn_proxy(d);
}

static void flush_stage(struct serpensd *d)
{
	unsigned int k, i;

	if (!nstage)
		return;
	k = sp_hop_enqueue(prx, stage, nstage, &pending_since);
	for (i = k; i < nstage; i++) {
		d->ctl->sfcs[sp_chain_tag(stage[i], d->tag_off)->sfc].ring_full++;
		rte_pktmbuf_free(stage[i]);
	}
	nstage = 0;
}

static void lp_route(struct serpensd *d, struct rte_mbuf **m, unsigned int nb)
{
	const struct route_table *rt = __atomic_load_n(&d->route, __ATOMIC_ACQUIRE);
	bool up = __atomic_load_n(&d->ctl->delivery.proxy.state, __ATOMIC_ACQUIRE) == INST_READY;
	struct sp_chain_tag *t;
	struct pkt_key k;
	unsigned int i;
	int si;

	for (i = 0; i < nb; i++) {
		si = gw_admit(d, rt, m[i], &k);
		if (si < 0)
			continue;
		if (unlikely(!up)) { /* the proxy is restarting: nobody to deliver to */
			d->ctl->sfcs[rt->sfc_id[si]].no_instance++;
			rte_pktmbuf_free(m[i]);
			continue;
		}
		t = sp_chain_tag(m[i], d->tag_off);
		t->stamp = 0;
		t->hash = gw_flow_hash(&k);
		t->sfc = (uint16_t)rt->sfc_id[si];
		t->label = 0;
		stage[nstage++] = m[i];
		if (nstage == DP_BURST)
			flush_stage(d);
	}
	flush_stage(d);
}

/* What the proxy's hand-off contains that is not the gateway's cost: the proxy's own work and that of
 * the instances it handed the core on to. */
static uint64_t proxy_and_instances_work(const void *arg)
{
	const struct sp_ctl *ctl = arg;
	uint64_t w = __atomic_load_n(&ctl->delivery.proxy.busy_cycles, __ATOMIC_RELAXED);
	unsigned int i;

	for (i = 0; i < sp_slots_hi(ctl); i++)
		w += __atomic_load_n(&ctl->inst[i].slot_work_cycles, __ATOMIC_RELAXED);
	return w;
}

static uint64_t lp_poll(struct serpensd *d, uint64_t now, uint64_t flush_tsc)
{
	struct sp_proxy *p = &d->ctl->delivery.proxy;
	uint64_t cost = 0, at;

	if (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) != INST_READY)
		return 0;
	at = __atomic_load_n(&p->wake_at, __ATOMIC_ACQUIRE);
	if (!sp_hop_due(rte_ring_count(prx), pending_since, now, d->ctl->wake_batch, flush_tsc) &&
	    !(at && now >= at) && !__atomic_load_n(&p->kick, __ATOMIC_ACQUIRE))
		return 0;
	if (sp_hop_wake(&p->sl, d->ctl->colocate, proxy_and_instances_work, d->ctl, &d->handoff, &cost))
		pending_since = now;
	return cost;
}

static unsigned int lp_transmit(struct serpensd *d)
{
	struct rte_mbuf *m[DP_BURST];
	unsigned int n, i, taken = 0;
	uint16_t sent;

	while ((n = rte_ring_sc_dequeue_burst(ptx, (void **)m, DP_BURST, NULL)) > 0) {
		taken += n;
		sent = rte_eth_tx_burst(0, 0, m, (uint16_t)n);
		for (i = 0; i < sent; i++)
			d->ctl->sfcs[sp_chain_tag(m[i], d->tag_off)->sfc].tx++;
		if (unlikely(sent < n)) {
			rte_pktmbuf_free_bulk(m + sent, n - sent);
			d->port_tx_dropped += n - sent;
		}
		d->port_tx += sent;
	}
	return taken;
}

static bool lp_reaped(struct serpensd *d, pid_t pid, int status)
{
	struct sp_proxy *p = &d->ctl->delivery.proxy;

	if (pid != p->pid)
		return false;
	fprintf(stderr, "serpensd: the local proxy (pid %d) %s %d; restarting it\n", (int)pid,
		WIFSIGNALED(status) ? "was killed by signal" : "exited with status",
		WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	__atomic_store_n(&p->state, INST_DEAD, __ATOMIC_RELEASE);
	p->pid = 0;
	p->restarts++;
	spawn_proxy(d); /* its rings and the instances' stay: the new proxy carries on with them */
	return true;
}

/* Make the proxy run once: through serpensd's loop while it runs (so that with --colocate the core is
 * handed over as always), directly when the data plane has stopped (shutdown). */
static void lp_collect(struct serpensd *d)
{
	struct sp_proxy *p = &d->ctl->delivery.proxy;

	if (__atomic_load_n(&d->dp_running, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&p->kick, 1, __ATOMIC_RELEASE);
		return;
	}
	__atomic_fetch_add(&p->sl.doorbell, 1, __ATOMIC_SEQ_CST);
	sp_futex_wake(&p->sl.doorbell, 1);
}

/* The generation was bumped: wait until the proxy stopped using its old view — it sleeps (and will
 * rebuild before its next pass) or has rebuilt. One second at most. */
static void lp_quiesce(struct serpensd *d)
{
	struct sp_proxy *p = &d->ctl->delivery.proxy;
	uint64_t gen = __atomic_load_n(&d->ctl->delivery.gen, __ATOMIC_SEQ_CST), t0 = mono_ns();
	struct timespec ts = {.tv_nsec = 20000};

	while (__atomic_load_n(&p->state, __ATOMIC_ACQUIRE) == INST_READY &&
	       !__atomic_load_n(&p->sl.sleeping, __ATOMIC_SEQ_CST) &&
	       __atomic_load_n(&p->gen_seen, __ATOMIC_SEQ_CST) < gen && mono_ns() - t0 < 1000000000ull)
		nanosleep(&ts, NULL);
}

static void lp_shutdown(struct serpensd *d)
{
	struct sp_proxy *p = &d->ctl->delivery.proxy;
	uint64_t t0 = mono_ns();
	struct timespec ts = {.tv_nsec = 100000};
	int status;

	if (!p->pid)
		return;
	__atomic_store_n(&p->sl.stop, SP_STOP_EXIT, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&p->sl.doorbell, 1, __ATOMIC_SEQ_CST);
	sp_futex_wake(&p->sl.doorbell, 1);
	while (waitpid(p->pid, &status, WNOHANG) == 0) {
		if (mono_ns() - t0 > 3000000000ull) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &status, 0);
			break;
		}
		nanosleep(&ts, NULL);
	}
	p->pid = 0;
	p->state = INST_FREE;
}

static json_t *u64(uint64_t v) { return json_integer((json_int_t)(v > INT64_MAX ? INT64_MAX : v)); }

static double us_of(const struct serpensd *d, uint64_t cycles)
{
	return (double)cycles * 1e6 / (double)d->ctl->tsc_hz;
}

/* stats.delivery (docs/chaining.md): the proxy, and per SFC every hop's packets and drops. */
static json_t *lp_stats(struct serpensd *d)
{
	const struct sp_delivery_shared *ds = &d->ctl->delivery;
	const struct sp_proxy *p = &ds->proxy;
	static const char *states[] = {"free", "starting", "ready", "stopping", "dead", "pooled"};
	json_t *sfcs = json_array(), *rep;
	uint64_t dc = 0, db = 0;
	unsigned int s, k;

	for (s = 0; s < SP_MAX_SFCS; s++) {
		const struct sp_sfc_desc *sd = &d->ctl->sfcs[s];
		json_t *hops = json_array();
		const struct sp_hop_stats *x;
		uint64_t drops = 0;

		if (!sd->used)
			continue;
		for (k = 0; k < sd->npos; k++) {
			x = &ds->hop[s][k];
			drops += x->nf_drops + x->no_instance + x->ring_full + x->stranded;
			dc += x->delivery_cycles;
			db += x->delivery_batches;
			json_array_append_new(hops, json_pack(
				"{s:i, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:f}", "position", k, "nf",
				d->ctl->nfs[sd->pos[k].nf].name, "in", u64(x->in), "out", u64(x->out), "nf_drops",
				u64(x->nf_drops), "no_instance", u64(x->no_instance), "ring_full", u64(x->ring_full),
				"stranded", u64(x->stranded), "delivery_batches", u64(x->delivery_batches),
				"delivery_us", x->delivery_batches ? us_of(d, x->delivery_cycles) /
				(double)x->delivery_batches : 0.0));
		}
		x = &ds->hop[s][SP_MAX_POS];
		drops += x->ring_full;
		json_array_append_new(hops, json_pack("{s:s, s:o, s:o}", "position", "end", "in", u64(x->in),
						      "ring_full", u64(x->ring_full)));
		json_array_append_new(sfcs, json_pack("{s:i, s:s, s:o, s:o}", "sfc", s, "name", sd->name, "hops",
						      hops, "drops", u64(drops)));
	}
	rep = json_pack("{s:s, s:o, s:f, s:o, s:o}", "mode", "local-proxy", "generation", u64(ds->gen),
			"delivery_us", db ? us_of(d, dc) / (double)db : 0.0, "delivery_batches", u64(db), "sfcs", sfcs);
	json_object_set_new(rep, "proxy", json_pack(
		"{s:s, s:i, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}", "state", states[p->state % 6],
		"pid", (int)p->pid, "alive", p->state == INST_READY && p->pid > 0 && kill(p->pid, 0) == 0, "rx",
		u64(p->rx), "tx", u64(p->tx), "runs", u64(p->runs), "sleeps", u64(p->sleeps), "wakeups",
		u64(p->wakeups), "handoffs", u64(p->handoffs), "handoff_timeouts", u64(p->handoff_timeouts),
		"handoff_max_us", u64(p->handoff_max_ns / 1000), "restarts", u64(p->restarts), "last_error",
		p->error));
	return rep;
}

/* stats.stages.proxy (docs/stages.md): the proxy's busy time and the packets it took from the gateway;
 * one unit, the proxy. */
static json_t *lp_stage(struct serpensd *d)
{
	const struct sp_proxy *p = &d->ctl->delivery.proxy;
	uint64_t busy = (uint64_t)((double)p->busy_cycles * 1e9 / (double)d->ctl->tsc_hz);
	uint64_t wake = (uint64_t)((double)p->wake_cycles * 1e9 / (double)d->ctl->tsc_hz);
	char id[64];

	snprintf(id, sizeof(id), "proxy/%d/%llu", (int)p->pid, (unsigned long long)p->restarts);
	return json_pack("{s:o, s:o, s:o, s:[{s:s, s:i, s:o, s:o}]}", "busy_ns", u64(busy), "packets", u64(p->rx),
			 "wake_ns", u64(wake), "units", "id", id, "pid", (int)p->pid, "busy_ns", u64(busy),
			 "packets", u64(p->rx));
}

const struct sp_delivery_ops sp_delivery_local_proxy = {
	.name = "local-proxy",
	.mode = SP_CHAIN_LOCAL_PROXY,
	.per_nf = true,
	.setup = lp_setup,
	.route = lp_route,
	.poll = lp_poll,
	.transmit = lp_transmit,
	.reaped = lp_reaped,
	.collect = lp_collect,
	.quiesce = lp_quiesce,
	.stats = lp_stats,
	.stage = lp_stage,
	.shutdown = lp_shutdown,
};
