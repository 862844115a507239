/*
 * delivery_global_proxy.c: Fission's chaining behind the delivery seam (delivery.h;
 * docs/chaining-global-proxy.md). One instance per NF; every delivery — gateway to the first NF, NF to
 * the next — goes through serpens-gproxy, one proxy process for the whole deployment, reached over a
 * memif link (a second port serpensd owns as server on <run dir>/gproxy.sock). A hop thus crosses the
 * link twice: serpensd → proxy (which picks an instance of the next NF, or holds the packet while there
 * is none) → serpensd → the chosen instance's ring.
 *
 * On the link every frame carries the wire header (serpens/gproxy_wire.h), prepended here and stripped
 * when the packet comes back. The proxy learns the READY instances of every (SFC, position) from the
 * directory file (gp_dir.h), which this file rewrites whenever the control thread changes the set of
 * instances (ctl->delivery.gen); the proxy's `wanted` counters there become auto-start requests.
 *
 * Who runs what: the data plane (route/poll/transmit) owns the link port, the directory's routes and the
 * wake-ups; the control thread starts the proxy (setup), restarts it if it dies (reaped) and stops it
 * (shutdown). The proxy is a child of serpensd (its process group, so the harness ends it with serpensd)
 * on the instances' core: with --colocate it sleeps and is handed the core like an instance (hop.h); without
 * it, it busy-polls (--poll).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_branch_prediction.h>
#include <rte_dev.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "gateway.h"
#include "gp_dir.h"
#include "hop.h"
#include "memif_region.h"
#include "port.h"
#include "serpens/gproxy_wire.h"
#include "serpensd.h"

_Static_assert(GP_MAX_SFCS == SP_MAX_SFCS && GP_MAX_POS == SP_MAX_POS && GP_MAX_SLOTS == SM_MAX_INSTANCES,
	       "the directory's limits are serpensd's");
/* the directory's four wake-up words are a struct sp_sleeper, so hop.c's one wake rule serves the proxy */
_Static_assert(offsetof(struct gp_dir, sleeping) == offsetof(struct gp_dir, doorbell) + 4 &&
	       offsetof(struct gp_dir, done) == offsetof(struct gp_dir, doorbell) + 8 &&
	       offsetof(struct gp_dir, stop) == offsetof(struct gp_dir, doorbell) + 12,
	       "gp_dir's wake-up words are laid out as struct sp_sleeper");

#define LINK_VDEV "net_memif_gproxy"
#define LINK_RING_LOG2 12   /* 4096 slots each way: a hand-off's worth of packets and a pair's held ones */
#define MAX_RETURNS 4       /* a packet sent back this often (its instances keep going) is dropped */
#define PROXY_READY_S 30.0
#define LINK_RX_ROUNDS 64   /* bursts taken from the link per poll, so the loop goes round */

struct slot_dp {
	uint64_t pending_since;
	struct rte_mbuf *stage[DP_BURST];
	unsigned int nstage;
};

static struct {
	struct gp_dir *dir;
	uint16_t port;
	char dir_path[PATH_MAX];
	char sock_path[PATH_MAX];
	char vdev_args[PATH_MAX + 64];
	pid_t pid;
	/* the link, serpensd → proxy */
	struct rte_mbuf *out[DP_BURST];
	uint8_t out_sfc[DP_BURST], out_hop[DP_BURST]; /* to count a refused packet at its hop */
	unsigned int nout;
	uint64_t sent;           /* packets the link took; the proxy's stats.rx counts what it received */
	uint64_t pending_since;  /* TSC of the oldest packet the proxy has not taken yet */
	struct slot_dp S[SM_MAX_INSTANCES];
	/* the control plane the directory mirrors */
	uint64_t gen_published;  /* ctl->delivery.gen the directory's routes were built from (data plane) */
	struct gp_route routes[GP_MAX_SFCS][GP_MAX_POS];
	uint64_t wanted_seen[GP_MAX_SFCS][GP_MAX_POS];
	/* counters (data plane) */
	uint64_t to_proxy, from_proxy, returned, link_full, link_bad, no_headroom;
	uint64_t rtt_cycles, rtt_packets, rtt_max_cycles;
	uint64_t proxy_wakeups;
	struct sp_handoff_stats handoff;
	/* control thread */
	uint32_t resync;         /* a new proxy: what the dead one never received is not waited for */
	uint64_t restarts;
	int last_status;
} G;

/* ---------------------------------------------------------------------------------------------- */
/* the proxy process                                                                                */

/* The proxy busy-polls only on a core of its own: without --colocate and on another core than serpensd's
 * data plane; otherwise it sleeps between hand-offs, so two busy loops never share a core. */
static bool proxy_polls(const struct serpensd *d)
{
	return !d->ctl->colocate && d->instance_lcore != d->lcore;
}

static pid_t spawn_proxy(struct serpensd *d)
{
	char lcore[16], hold[16], vdev[PATH_MAX + 96];
	pid_t pid, parent = getpid();

	snprintf(lcore, sizeof(lcore), "%u", d->instance_lcore);
	snprintf(hold, sizeof(hold), "%u", d->gproxy_hold);
	snprintf(vdev, sizeof(vdev), "net_memif0,role=client,%s", G.vdev_args);
	pid = fork();
	if (pid == 0) {
		const char *argv[] = {d->gproxy_path, "-l", lcore, "--in-memory", "--no-pci", "--no-telemetry",
				      "--log-level=*:warning", "--vdev", vdev, "--", "--dir", G.dir_path,
				      "--hold", hold, proxy_polls(d) ? "--poll" : NULL, NULL};

		/* like a runtime, it outlives a killed serpensd by nothing */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		/* its READY must not reach the harness as serpensd's: stdout goes to serpensd's log */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execv(d->gproxy_path, (char *const *)argv);
		fprintf(stderr, "serpensd: cannot exec %s: %s\n", d->gproxy_path, strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Wait until the proxy says its link is up (it writes its pid into the directory). */
static int wait_proxy(pid_t pid)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	double waited = 0;
	int status;

	while (waited < PROXY_READY_S) {
		if (__atomic_load_n(&G.dir->proxy_pid, __ATOMIC_ACQUIRE) == pid)
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "serpensd: serpens-gproxy exited (status 0x%x) before its link was up\n",
				status);
			return -1;
		}
		nanosleep(&ts, NULL);
		waited += 0.005;
	}
	fprintf(stderr, "serpensd: serpens-gproxy did not bring its link up within %.0f s\n", PROXY_READY_S);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static int gp_setup(struct serpensd *d)
{
	char dir[PATH_MAX], *slash;
	int ret;

	if (!d->gproxy_path) {
		fprintf(stderr, "serpensd: --chaining global-proxy needs --gproxy PATH (serpens-gproxy)\n");
		return -1;
	}
	/* the run directory is the control socket's */
	snprintf(dir, sizeof(dir), "%s", d->control_path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	if (snprintf(G.dir_path, sizeof(G.dir_path), "%s/gproxy.dir", dir) >= (int)sizeof(G.dir_path) ||
	    snprintf(G.sock_path, sizeof(G.sock_path), "%s/gproxy.sock", dir) >= (int)sizeof(G.sock_path)) {
		fprintf(stderr, "serpensd: run directory path too long for the gproxy files\n");
		return -1;
	}
	G.dir = gp_dir_create(G.dir_path, rte_get_tsc_hz());
	if (!G.dir) {
		fprintf(stderr, "serpensd: cannot create the gproxy directory %s: %s\n", G.dir_path, strerror(errno));
		return -1;
	}
	unlink(G.sock_path);
	snprintf(G.vdev_args, sizeof(G.vdev_args), "socket=%s,id=0,rsize=%d", G.sock_path, LINK_RING_LOG2);
	{
		char devargs[PATH_MAX + 128];

		/* hot-plugged, so the generator's port stays port 0 whatever the EAL arguments */
		snprintf(devargs, sizeof(devargs), "%s,role=server,%s", LINK_VDEV, G.vdev_args);
		ret = rte_dev_probe(devargs);
	}
	if (ret != 0 || rte_eth_dev_get_port_by_name(LINK_VDEV, &G.port) != 0) {
		fprintf(stderr, "serpensd: cannot create the proxy link (%s on %s): %s\n", LINK_VDEV, G.sock_path,
			rte_strerror(-ret));
		return -1;
	}
	port_configure(G.port, d->pool);
	ret = port_start(G.port, 0);
	if (ret != 0) {
		fprintf(stderr, "serpensd: the proxy link did not start: %s\n", rte_strerror(-ret));
		return -1;
	}
	G.pid = spawn_proxy(d);
	if (G.pid < 0 || wait_proxy(G.pid) != 0)
		return -1;
	if (port_wait_link(G.port, 10.0) != 1) {
		fprintf(stderr, "serpensd: the proxy link is not up on serpensd's side\n");
		return -1;
	}
	memif_regions_populate(); /* the proxy created a new region: map it now, not page by page later */
	return 0;
}

static bool gp_reaped(struct serpensd *d, pid_t pid, int status)
{
	if (pid != G.pid || pid <= 0)
		return false;
	G.last_status = status;
	G.pid = 0;
	if (d->quit)
		return true;
	/* Fission's router is a service: it comes back. Packets it held or had in flight are lost; the
	 * link counts what it refuses meanwhile. */
	fprintf(stderr, "serpensd: serpens-gproxy (pid %d) exited (status 0x%x); restarting it\n", pid, status);
	__atomic_store_n(&G.dir->proxy_pid, 0, __ATOMIC_RELEASE);
	/* it may have died asleep: nobody is there to hand the core to until the new one sleeps itself */
	__atomic_store_n(&G.dir->sleeping, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&G.resync, 1, __ATOMIC_RELEASE);
	G.restarts++;
	G.pid = spawn_proxy(d);
	return true;
}

static void gp_shutdown(struct serpensd *d)
{
	struct timespec ts = {0, 10 * 1000 * 1000};
	int i, status;

	(void)d;
	if (G.dir && G.pid > 0) {
		__atomic_store_n(&G.dir->stop, 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&G.dir->doorbell, 1, __ATOMIC_SEQ_CST);
		gp_dir_futex_wake(&G.dir->doorbell, 1);
		for (i = 0; i < 300 && waitpid(G.pid, &status, WNOHANG) != G.pid; i++)
			nanosleep(&ts, NULL);
		if (i == 300) {
			fprintf(stderr, "serpensd: serpens-gproxy did not stop within 3 s; killing it\n");
			kill(G.pid, SIGKILL);
			waitpid(G.pid, &status, 0);
		}
		G.pid = 0;
	}
	if (G.dir) {
		port_shutdown(G.port);
		unlink(G.dir_path);
		unlink(G.sock_path);
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* the data plane                                                                                   */

static void link_flush(struct serpensd *d)
{
	unsigned int i;
	uint16_t sent;

	if (!G.nout)
		return;
	sent = rte_eth_tx_burst(G.port, 0, G.out, (uint16_t)G.nout);
	if (unlikely(sent < G.nout)) { /* the link is full (or down: the proxy restarts): a drop at the hop */
		for (i = sent; i < G.nout; i++)
			d->ctl->delivery.hop[G.out_sfc[i]][G.out_hop[i]].ring_full++;
		rte_pktmbuf_free_bulk(G.out + sent, G.nout - sent);
		G.link_full += G.nout - sent;
	}
	if (sent && G.sent == __atomic_load_n(&G.dir->stats.rx, __ATOMIC_RELAXED))
		G.pending_since = rte_rdtsc(); /* the proxy had taken everything: these are the oldest now */
	G.sent += sent;
	G.to_proxy += sent;
	G.nout = 0;
}

/* Send a packet to the proxy for an instance of (sfc, hop). */
static void to_proxy(struct serpensd *d, struct rte_mbuf *m, unsigned int sfc, unsigned int hop, uint32_t flow,
		     uint64_t stamp, uint8_t returns)
{
	struct gp_wire_hdr *h = (struct gp_wire_hdr *)rte_pktmbuf_prepend(m, sizeof(*h));

	if (unlikely(!h)) {
		rte_pktmbuf_free(m);
		d->ctl->delivery.hop[sfc][hop].ring_full++;
		G.no_headroom++;
		return;
	}
	*h = (struct gp_wire_hdr){.magic = GP_WIRE_MAGIC, .version = GP_WIRE_VERSION, .sfc = (uint8_t)sfc,
				  .hop = (uint8_t)hop, .slot = GP_SLOT_NONE, .returns = returns, .flow = flow,
				  .tsc = rte_rdtsc(), .stamp = stamp};
	G.out_sfc[G.nout] = (uint8_t)sfc;
	G.out_hop[G.nout] = (uint8_t)hop;
	G.out[G.nout++] = m;
	if (G.nout == DP_BURST)
		link_flush(d);
}

/* (a) the gateway: classify, hash the flow, and send every packet to the proxy for its first NF. */
static void gp_route(struct serpensd *d, struct rte_mbuf **m, unsigned int nb)
{
	const struct route_table *rt = __atomic_load_n(&d->route, __ATOMIC_ACQUIRE);
	struct pkt_key k;
	unsigned int i;
	int si;

	for (i = 0; i < nb; i++) {
		si = gw_admit(d, rt, m[i], &k);
		if (si < 0)
			continue;
		to_proxy(d, m[i], rt->sfc_id[si], 0, gw_flow_hash(&k), 0, 0);
	}
	link_flush(d);
}

/* The control thread changed the set of instances: rewrite the routes that changed. Returns true if
 * any did: the proxy is then woken at once, so that packets it holds for a new instance go out now. */
static bool publish_routes(struct serpensd *d)
{
	uint64_t gen = __atomic_load_n(&d->ctl->delivery.gen, __ATOMIC_ACQUIRE);
	struct gp_route now[GP_MAX_SFCS][GP_MAX_POS];
	unsigned int i, s, p;
	bool changed = false;

	if (gen == G.gen_published)
		return false;
	memset(now, 0, sizeof(now));
	for (i = 0; i < sp_slots_hi(d->ctl); i++) {
		const struct sp_instance *in = &d->ctl->inst[i];
		struct gp_route *r;

		if (__atomic_load_n(&in->state, __ATOMIC_ACQUIRE) != INST_READY || in->position < 0 ||
		    in->sfc < 0 || in->sfc >= GP_MAX_SFCS || in->position >= GP_MAX_POS)
			continue;
		r = &now[in->sfc][in->position];
		r->slot[r->n++] = (int8_t)i;
	}
	for (s = 0; s < GP_MAX_SFCS; s++)
		for (p = 0; p < GP_MAX_POS; p++) {
			if (now[s][p].n == G.routes[s][p].n &&
			    !memcmp(now[s][p].slot, G.routes[s][p].slot, now[s][p].n))
				continue;
			gp_dir_set_route(G.dir, s, p, now[s][p].slot, now[s][p].n);
			G.routes[s][p] = now[s][p];
			changed = true;
		}
	__atomic_store_n(&G.gen_published, gen, __ATOMIC_RELEASE);
	return changed;
}

/* The proxy holds packets for a position without instances: ask the control thread to start one. */
static void forward_wanted(struct serpensd *d)
{
	unsigned int s, p;
	uint64_t w;

	for (s = 0; s < GP_MAX_SFCS; s++) {
		if (!d->ctl->sfcs[s].used)
			continue;
		for (p = 0; p < d->ctl->sfcs[s].npos && p < GP_MAX_POS; p++) {
			w = __atomic_load_n(&G.dir->wanted[s][p], __ATOMIC_ACQUIRE);
			if (w == G.wanted_seen[s][p])
				continue;
			G.wanted_seen[s][p] = w;
			__atomic_fetch_or(&d->ctl->delivery.want_start[s], 1ull << p, __ATOMIC_RELEASE);
		}
	}
}

static void flush_stage(struct serpensd *d, unsigned int slot)
{
	struct slot_dp *s = &G.S[slot];
	struct sp_instance *in = &d->ctl->inst[slot];
	unsigned int n;

	if (!s->nstage)
		return;
	n = sp_hop_enqueue(d->rx[slot], s->stage, s->nstage, &s->pending_since);
	d->ctl->delivery.hop[in->sfc][in->position].in += n;
	if (n < s->nstage) {
		rte_pktmbuf_free_bulk(s->stage + n, s->nstage - n);
		d->ctl->delivery.hop[in->sfc][in->position].ring_full += s->nstage - n;
	}
	in->enq += n;
	in->last_pkt_tsc = rte_rdtsc();
	s->nstage = 0;
}

/* A packet back from the proxy: strip the header and queue it on the instance the proxy chose; if that
 * instance left meanwhile, back to the proxy (a few times at most). */
static void from_proxy(struct serpensd *d, struct rte_mbuf *m, uint64_t now)
{
	struct gp_wire_hdr h;
	struct sp_instance *in;
	struct sp_chain_tag *tag;

	if (unlikely(rte_pktmbuf_data_len(m) < sizeof(h))) {
		rte_pktmbuf_free(m);
		G.link_bad++;
		return;
	}
	memcpy(&h, rte_pktmbuf_mtod(m, void *), sizeof(h));
	if (unlikely(h.magic != GP_WIRE_MAGIC || h.version != GP_WIRE_VERSION || h.sfc >= SP_MAX_SFCS ||
		     h.hop >= SP_MAX_POS)) {
		rte_pktmbuf_free(m);
		G.link_bad++;
		return;
	}
	G.from_proxy++;
	if (now > h.tsc) {
		G.rtt_cycles += now - h.tsc;
		G.rtt_packets++;
		if (now - h.tsc > G.rtt_max_cycles)
			G.rtt_max_cycles = now - h.tsc;
	}
	rte_pktmbuf_adj(m, sizeof(h));
	in = h.slot >= 0 && h.slot < SM_MAX_INSTANCES ? &d->ctl->inst[h.slot] : NULL;
	if (unlikely(!in || __atomic_load_n(&in->state, __ATOMIC_ACQUIRE) != INST_READY || in->sfc != h.sfc ||
		     in->position != h.hop)) {
		if (h.returns >= MAX_RETURNS) {
			rte_pktmbuf_free(m);
			d->ctl->delivery.hop[h.sfc][h.hop].no_instance++;
			return;
		}
		G.returned++;
		to_proxy(d, m, h.sfc, h.hop, h.flow, h.stamp, (uint8_t)(h.returns + 1));
		return;
	}
	/* the chain tag the instance reads and writes (chain_tag.h): the mbuf that crossed is a new one */
	tag = sp_chain_tag(m, d->tag_off);
	tag->hash = h.flow;
	tag->sfc = h.sfc;
	tag->label = h.hop;
	tag->stamp = h.stamp;
	G.S[h.slot].stage[G.S[h.slot].nstage++] = m;
	if (G.S[h.slot].nstage == DP_BURST)
		flush_stage(d, (unsigned int)h.slot);
}

static uint64_t proxy_work(const void *arg)
{
	(void)arg;
	return __atomic_load_n(&G.dir->stats.busy_cycles, __ATOMIC_RELAXED);
}

static uint64_t slot_work(const void *arg)
{
	return __atomic_load_n(&((const struct sp_instance *)arg)->slot_work_cycles, __ATOMIC_RELAXED);
}

/* (b) publish routes and wanted positions; wake the proxy when its packets are due (hop.h's rule) — with
 * --colocate it runs now, in our place — take what it sent back to the chosen instances' rings and wake
 * those that are due. */
static uint64_t gp_poll(struct serpensd *d, uint64_t now, uint64_t flush_tsc)
{
	struct rte_mbuf *m[DP_BURST];
	uint64_t cost = 0, waiting;
	unsigned int i, r;
	bool kick;
	uint16_t nb;

	kick = publish_routes(d);
	forward_wanted(d);
	link_flush(d);
	if (unlikely(!__atomic_load_n(&G.dir->proxy_pid, __ATOMIC_ACQUIRE)))
		goto from_link; /* restarting: its link is down, nothing to wake */
	if (unlikely(__atomic_load_n(&G.resync, __ATOMIC_ACQUIRE))) {
		G.sent = __atomic_load_n(&G.dir->stats.rx, __ATOMIC_ACQUIRE);
		__atomic_store_n(&G.resync, 0, __ATOMIC_RELEASE);
	}
	waiting = G.sent - __atomic_load_n(&G.dir->stats.rx, __ATOMIC_ACQUIRE);
	if (kick || sp_hop_due((unsigned int)RTE_MIN(waiting, (uint64_t)UINT32_MAX), G.pending_since, now,
		       d->ctl->wake_batch, flush_tsc) ||
	    __atomic_load_n(&G.dir->backlog, __ATOMIC_ACQUIRE)) {
		/* the link's ring is memif's, not an rte_ring: order our writes to it before reading `sleeping` */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (sp_hop_wake((struct sp_sleeper *)&G.dir->doorbell, d->ctl->colocate, proxy_work, NULL,
				&G.handoff, &cost)) {
			G.proxy_wakeups++;
			G.pending_since = now;
		}
	}
from_link:
	now = rte_rdtsc();
	for (r = 0; r < LINK_RX_ROUNDS; r++) {
		nb = rte_eth_rx_burst(G.port, 0, m, DP_BURST);
		for (i = 0; i < nb; i++)
			from_proxy(d, m[i], now);
		if (nb < DP_BURST)
			break;
	}
	for (i = 0; i < sp_slots_hi(d->ctl); i++)
		flush_stage(d, i);
	link_flush(d); /* packets sent back for another choice */
	for (i = 0; i < sp_slots_hi(d->ctl); i++) {
		struct sp_instance *in = &d->ctl->inst[i];

		if (in->state != INST_READY)
			continue;
		if (!sp_hop_due(rte_ring_count(d->rx[i]), G.S[i].pending_since, now, d->ctl->wake_batch, flush_tsc))
			continue;
		if (!sp_hop_wake(&in->sl, d->ctl->colocate, slot_work, in, &d->handoff, &cost))
			continue;
		in->wakeups++;
		G.S[i].pending_since = now;
	}
	return cost;
}

/* (c) what the instances produced: at the end of the SFC out of port 0, else to the proxy for the next NF. */
static unsigned int gp_transmit(struct serpensd *d)
{
	struct rte_mbuf *m[DP_BURST], *out[DP_BURST];
	unsigned int i, j, n, nout, taken = 0;
	uint16_t sent;

	for (i = 0; i < sp_slots_hi(d->ctl); i++) {
		struct sp_instance *in = &d->ctl->inst[i];

		if (in->state == INST_FREE || in->position < 0)
			continue;
		while ((n = rte_ring_sc_dequeue_burst(d->tx[i], (void **)m, DP_BURST, NULL)) > 0) {
			struct sp_hop_stats *exit_hop = &d->ctl->delivery.hop[in->sfc][SP_MAX_POS];

			taken += n;
			d->ctl->delivery.hop[in->sfc][in->position].out += n;
			nout = 0;
			for (j = 0; j < n; j++) {
				struct sp_chain_tag *tag = sp_chain_tag(m[j], d->tag_off);

				if (tag->label == SP_LABEL_END || tag->label >= d->ctl->sfcs[in->sfc].npos)
					out[nout++] = m[j];
				else
					to_proxy(d, m[j], (unsigned int)in->sfc, tag->label, tag->hash,
						 tag->stamp ? tag->stamp : rte_rdtsc(), 0);
			}
			exit_hop->in += nout;
			sent = nout ? rte_eth_tx_burst(0, 0, out, (uint16_t)nout) : 0;
			if (unlikely(sent < nout)) { /* the port's drop, counted as such (delivery.h) */
				rte_pktmbuf_free_bulk(out + sent, nout - sent);
				d->port_tx_dropped += nout - sent;
			}
			d->port_tx += sent;
			d->ctl->sfcs[in->sfc].tx += sent;
		}
	}
	link_flush(d);
	return taken;
}

/* ---------------------------------------------------------------------------------------------- */
/* control thread                                                                                   */

/* serpensd drains the instances' tx rings itself on every loop */
static void gp_collect(struct serpensd *d)
{
	(void)d;
}

/* The data plane checks an instance's state before every enqueue and republishes the directory when
 * the generation moved: once it has done so and gone round its loop twice, a slot that left the ready
 * set gets nothing more (packets the proxy still routes to it come back and are sent to it again). */
static void gp_quiesce(struct serpensd *d)
{
	uint64_t gen = __atomic_load_n(&d->ctl->delivery.gen, __ATOMIC_ACQUIRE), e0;
	struct timespec ts = {0, 100 * 1000};
	int i;

	for (i = 0; i < 20000 && __atomic_load_n(&d->dp_running, __ATOMIC_ACQUIRE) &&
		    __atomic_load_n(&G.gen_published, __ATOMIC_ACQUIRE) < gen; i++)
		nanosleep(&ts, NULL);
	e0 = __atomic_load_n(&d->dp_epoch, __ATOMIC_ACQUIRE);
	for (i = 0; i < 20000 && __atomic_load_n(&d->dp_running, __ATOMIC_ACQUIRE) &&
		    __atomic_load_n(&d->dp_epoch, __ATOMIC_ACQUIRE) < e0 + 2; i++)
		nanosleep(&ts, NULL);
}

static json_t *u64(uint64_t v) { return json_integer((json_int_t)(v > INT64_MAX ? INT64_MAX : v)); }

static double us_of(const struct serpensd *d, uint64_t cycles)
{
	return (double)cycles * 1e6 / (double)d->ctl->tsc_hz;
}

/* One hop of stats.delivery.sfcs[].hops, in local-proxy's shape (docs/chaining.md). Drops at the proxy
 * are the hop's: a full hold buffer is `no_instance` (no instance, and no room to wait for one), a full
 * output queue `ring_full`; `held` is what the proxy holds for the hop right now. */
static json_t *hop_json(struct serpensd *d, unsigned int s, unsigned int k, uint64_t *drops)
{
	const struct sp_hop_stats *x = &d->ctl->delivery.hop[s][k];
	const struct gp_pair_stats *ps = &G.dir->stats.pair[s][k];
	uint64_t no_instance = x->no_instance + ps->hold_dropped, ring_full = x->ring_full + ps->link_full;

	*drops += x->nf_drops + no_instance + ring_full + x->stranded;
	return json_pack("{s:i, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:o, s:o, s:o}", "position", k, "nf",
			 d->ctl->nfs[d->ctl->sfcs[s].pos[k].nf].name, "in", u64(x->in), "out", u64(x->out),
			 "nf_drops", u64(x->nf_drops), "no_instance", u64(no_instance), "ring_full", u64(ring_full),
			 "stranded", u64(x->stranded), "delivery_batches", u64(x->delivery_batches), "delivery_us",
			 x->delivery_batches ? us_of(d, x->delivery_cycles) / (double)x->delivery_batches : 0.0,
			 "held", u64(ps->held - ps->delivered_after_hold), "delivered_after_hold",
			 u64(ps->delivered_after_hold), "routed", u64(ps->routed));
}

/* stats.delivery: per SFC every hop (as local-proxy's), the proxy process and the link. */
static json_t *gp_stats(struct serpensd *d)
{
	const struct sp_delivery_shared *ds = &d->ctl->delivery;
	const struct gp_proxy_stats *st = &G.dir->stats;
	json_t *sfcs = json_array(), *rep, *p, *l;
	uint64_t dc = 0, db = 0;
	int32_t pid = __atomic_load_n(&G.dir->proxy_pid, __ATOMIC_ACQUIRE);
	unsigned int s, k;

	for (s = 0; s < SP_MAX_SFCS; s++) {
		const struct sp_sfc_desc *sd = &d->ctl->sfcs[s];
		json_t *hops = json_array();
		uint64_t drops = 0;

		if (!sd->used)
			continue;
		for (k = 0; k < sd->npos; k++) {
			json_array_append_new(hops, hop_json(d, s, k, &drops));
			dc += ds->hop[s][k].delivery_cycles;
			db += ds->hop[s][k].delivery_batches;
		}
		drops += ds->hop[s][SP_MAX_POS].ring_full;
		json_array_append_new(hops, json_pack("{s:s, s:o, s:o}", "position", "end", "in",
						      u64(ds->hop[s][SP_MAX_POS].in), "ring_full",
						      u64(ds->hop[s][SP_MAX_POS].ring_full)));
		json_array_append_new(sfcs, json_pack("{s:i, s:s, s:o, s:o}", "sfc", s, "name", sd->name, "hops",
						      hops, "drops", u64(drops)));
	}
	rep = json_pack("{s:s, s:o, s:f, s:o, s:o}", "mode", "global-proxy", "generation", u64(ds->gen),
			"delivery_us", db ? us_of(d, dc) / (double)db : 0.0, "delivery_batches", u64(db), "sfcs", sfcs);
	/* where the proxy runs (the harness records it in the sidecar) and what it did */
	p = json_pack("{s:i, s:b, s:i, s:b, s:s, s:s, s:o}", "pid", (int)pid, "alive",
		      pid > 0 && kill(pid, 0) == 0, "lcore", (int)d->instance_lcore, "polls", proxy_polls(d),
		      "link", G.sock_path, "directory", G.dir_path, "hold_capacity", u64(d->gproxy_hold));
	json_object_update_new(p, json_pack(
		"{s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "rx", u64(st->rx),
		"tx", u64(st->tx), "held", u64(st->held), "delivered_after_hold", u64(st->delivered_after_hold),
		"hold_dropped", u64(st->hold_dropped), "held_now", u64(st->held_now), "hold_wait_max_us",
		(double)st->hold_wait_max_ns / 1e3, "bad_header", u64(st->bad_header), "link_full",
		u64(st->link_full), "sleeps", u64(st->sleeps), "wakeups", u64(st->wakeups), "dir_reloads",
		u64(st->dir_reloads), "handoffs", u64(G.handoff.handoffs), "handoff_timeouts",
		u64(G.handoff.timeouts), "handoff_max_us", u64(G.handoff.max_ns / 1000), "restarts",
		u64(G.restarts)));
	l = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:f}", "to_proxy", u64(G.to_proxy), "from_proxy",
		      u64(G.from_proxy), "returned", u64(G.returned), "link_full", u64(G.link_full), "bad_header",
		      u64(G.link_bad), "no_headroom", u64(G.no_headroom), "round_trip_mean_us",
		      G.rtt_packets ? us_of(d, G.rtt_cycles) / (double)G.rtt_packets : 0.0, "round_trip_max_us",
		      us_of(d, G.rtt_max_cycles));
	json_object_set_new(rep, "proxy", p);
	json_object_set_new(rep, "link", l);
	return rep;
}

/* stats.stages.proxy (docs/stages.md): the proxy's own busy time and the packets that entered their SFC
 * through it; one unit, the proxy. Its time on serpensd's side of the link (prepending, sending, receiving, stripping) is the
 * gateway stage's, as the local proxy's ring operations there are. */
static json_t *gp_stage(struct serpensd *d)
{
	const struct gp_proxy_stats *st = &G.dir->stats;
	uint64_t busy = (uint64_t)(us_of(d, __atomic_load_n(&st->busy_cycles, __ATOMIC_RELAXED)) * 1e3);
	/* per SFC packet, like every stage, though the proxy handles each packet once per hop */
	uint64_t packets = __atomic_load_n(&st->rx_entering, __ATOMIC_RELAXED);
	int32_t pid = __atomic_load_n(&G.dir->proxy_pid, __ATOMIC_ACQUIRE);
	char id[64];

	snprintf(id, sizeof(id), "gproxy/%d/%llu", (int)pid, (unsigned long long)G.restarts);
	return json_pack("{s:o, s:o, s:o, s:[{s:s, s:i, s:o, s:o}]}", "busy_ns", u64(busy), "packets", u64(packets),
			 "wake_ns", u64(0), "units", "id", id, "pid", (int)pid, "busy_ns", u64(busy), "packets",
			 u64(packets));
}

const struct sp_delivery_ops sp_delivery_global_proxy = {
	.name = "global-proxy",
	.mode = SP_CHAIN_GLOBAL_PROXY,
	.per_nf = true,
	.setup = gp_setup,
	.route = gp_route,
	.poll = gp_poll,
	.transmit = gp_transmit,
	.reaped = gp_reaped,
	.collect = gp_collect,
	.quiesce = gp_quiesce,
	.stats = gp_stats,
	.stage = gp_stage,
	.shutdown = gp_shutdown,
};
