/*
 * gproxy.c: serpens-gproxy, the global proxy of the global-proxy chaining mode (Fission's router, paper
 * Sec. II-B4 and Fig. 13: "a global proxy between every two NFs").
 *
 *   serpens-gproxy [EAL args] -- --dir PATH [--hold N] [--burst N] [--poll]
 *
 * Its own DPDK primary (--in-memory or its own --file-prefix), connected to serpensd by one memif link
 * (port 0, the client; serpensd is the server). serpensd sends every packet that needs an instance of its
 * next NF over the link with a wire header (serpens/gproxy_wire.h: SFC, hop, flow hash); the proxy picks
 * an instance of that (SFC, hop) among the READY ones the directory lists (gp_dir.h) — bucket = flow hash
 * mod 256, buckets dealt round-robin over the instances, as serpensd's Router does, so a flow sticks to
 * one instance while the set is unchanged — writes it into the header and sends the packet back.
 *
 * No instance ready: the packet waits in the pair's hold buffer (gp_hold.h) and the pair's `wanted`
 * counter in the directory grows, which makes serpensd start one; when serpensd publishes it, the held
 * packets go back first, in arrival order (counted as delivered after hold). A full buffer drops, counted.
 *
 * Sharing the core (default): the proxy sleeps on the directory's doorbell futex and serpensd wakes it
 * after sending it packets (its wake rule: wake_batch or flush_us), with --colocate waiting on `done`
 * until the proxy has drained the link and gone back to sleep — the protocol of serpensd's instances
 * (native/serpens/runtime.c), so two busy loops never share a core. --poll: busy-poll a core of its own.
 *
 * Stops on SIGINT/SIGTERM or when serpensd sets the directory's `stop`. Prints "READY" on stdout once
 * the link is up.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "args.h"
#include "eal_files.h"
#include "gp_dir.h"
#include "gp_hold.h"
#include "memif_region.h"
#include "port.h"
#include "serpens/gproxy_wire.h"
#include "sig.h"

#define GP_MAX_BURST 256
#define GP_POOL_MBUFS 32767
#define GP_POOL_CACHE 256
#define GP_OUTQ 8192 /* packets routed but not yet accepted by the link (power of two) */
#define GP_BUCKETS 256
#define GP_SLEEP_NS (100 * 1000 * 1000L) /* re-check stop at least this often */
#define GP_RETRY_NS (1000 * 1000L)       /* with a backlog: look again after 1 ms even if nobody rings */

struct gproxy {
	const char *dir_path;
	uint32_t hold_cap;
	uint16_t burst;
	int poll;
	struct gp_dir *dir;
	struct gp_proxy_stats *st;
	struct rte_mempool *pool;
	uint32_t seq;                                   /* the directory seq the routes were copied at */
	struct gp_route routes[GP_MAX_SFCS][GP_MAX_POS]; /* the proxy's copy */
	int release_pending;                            /* held packets with a route wait for room in outq */
	struct gp_holds holds;
	struct rte_mbuf *outq[GP_OUTQ];
	uint32_t out_head, out_count;
};

static struct gproxy G;

static void usage_exit(const char *why)
{
	fprintf(stderr, "serpens-gproxy: %s\nusage: serpens-gproxy [EAL args] -- --dir PATH [--hold N] "
		"[--burst N] [--poll]\n", why);
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'}, {"hold", required_argument, NULL, 'h'},
		{"burst", required_argument, NULL, 'b'}, {"poll", no_argument, NULL, 'p'},
		{NULL, 0, NULL, 0}};
	uint64_t v;
	int opt;

	G.hold_cap = 1024;
	G.burst = 32;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd': G.dir_path = optarg; break;
		case 'h':
			if (arg_u64(optarg, 1, 1u << 20, &v))
				usage_exit("--hold must be 1..1048576 packets per (SFC, position)");
			G.hold_cap = (uint32_t)v;
			break;
		case 'b':
			if (arg_u64(optarg, 1, GP_MAX_BURST, &v))
				usage_exit("--burst must be 1..256");
			G.burst = (uint16_t)v;
			break;
		case 'p': G.poll = 1; break;
		default: usage_exit("unknown option");
		}
	}
	if (optind < argc)
		usage_exit("unexpected argument");
	if (!G.dir_path)
		usage_exit("--dir is required (serpensd's gproxy directory file)");
}

/* ---------------------------------------------------------------------------------------------- */
/* the output queue: packets back to serpensd, in the order they were routed                       */

static inline int out_push(struct rte_mbuf *m, unsigned int sfc, unsigned int pos)
{
	if (unlikely(G.out_count == GP_OUTQ)) {
		rte_pktmbuf_free(m);
		G.st->link_full++;
		G.st->pair[sfc][pos].link_full++;
		return -1;
	}
	G.outq[(G.out_head + G.out_count) & (GP_OUTQ - 1)] = m;
	G.out_count++;
	return 0;
}

/* Send what the link accepts; returns how many went. */
static unsigned int out_flush(void)
{
	unsigned int total = 0;
	uint16_t n, sent;

	while (G.out_count) {
		n = (uint16_t)RTE_MIN(G.out_count, GP_OUTQ - G.out_head);
		n = RTE_MIN(n, (uint16_t)GP_MAX_BURST);
		sent = rte_eth_tx_burst(0, 0, &G.outq[G.out_head], n);
		G.out_head = (G.out_head + sent) & (GP_OUTQ - 1);
		G.out_count -= sent;
		total += sent;
		if (sent < n)
			break; /* the link is full: serpensd has to drain it first */
	}
	G.st->tx += total;
	return total;
}

/* ---------------------------------------------------------------------------------------------- */
/* routing                                                                                          */

static inline int choose(unsigned int sfc, unsigned int pos, uint32_t flow)
{
	const struct gp_route *r = &G.routes[sfc][pos];

	return r->n ? r->slot[(flow & (GP_BUCKETS - 1)) % r->n] : GP_SLOT_NONE;
}

/* Send a pair's held packets back with an instance each, oldest first, as far as outq has room. */
static void release_held(unsigned int sfc, unsigned int pos, uint64_t now)
{
	struct gp_pair_stats *ps = &G.st->pair[sfc][pos];
	void *m[GP_MAX_BURST];
	unsigned int n, i, room;
	uint64_t waited;

	if (gp_hold_count(&G.holds, sfc, pos) == 0 || G.routes[sfc][pos].n == 0)
		return;
	waited = (now - G.holds.h[sfc][pos].since_tsc) * 1000000000ull / rte_get_tsc_hz();
	if (waited > G.st->hold_wait_max_ns)
		G.st->hold_wait_max_ns = waited;
	for (;;) {
		room = GP_OUTQ - G.out_count;
		if (room == 0) {
			G.release_pending = 1;
			return;
		}
		n = gp_hold_pop(&G.holds, sfc, pos, m, RTE_MIN(room, (unsigned int)GP_MAX_BURST));
		if (n == 0)
			return;
		for (i = 0; i < n; i++) {
			struct rte_mbuf *mb = m[i];
			struct gp_wire_hdr *h = rte_pktmbuf_mtod(mb, struct gp_wire_hdr *);

			h->slot = (int8_t)choose(sfc, pos, h->flow);
			out_push(mb, sfc, pos);
		}
		ps->delivered_after_hold += n;
		ps->routed += n;
		G.st->delivered_after_hold += n;
		G.st->held_now -= n;
	}
}

static void release_all(uint64_t now)
{
	unsigned int s, p;

	G.release_pending = 0;
	if (G.holds.total == 0)
		return;
	for (s = 0; s < GP_MAX_SFCS; s++)
		for (p = 0; p < GP_MAX_POS; p++)
			release_held(s, p, now);
}

/* serpensd changed the routes: take a copy, then deliver what waited for the new instances. */
static void reload(uint64_t now)
{
	G.seq = gp_dir_snapshot(G.dir, G.routes);
	G.st->dir_reloads++;
	release_all(now);
}

static void hold(struct rte_mbuf *m, unsigned int sfc, unsigned int pos, uint64_t now)
{
	struct gp_pair_stats *ps = &G.st->pair[sfc][pos];

	/* one writer (us); serpensd's control thread reads it to start an instance */
	__atomic_store_n(&G.dir->wanted[sfc][pos], G.dir->wanted[sfc][pos] + 1, __ATOMIC_RELEASE);
	if (gp_hold_push(&G.holds, sfc, pos, m, now) != 0) {
		rte_pktmbuf_free(m);
		ps->hold_dropped++;
		G.st->hold_dropped++;
		return;
	}
	ps->held++;
	G.st->held++;
	G.st->held_now++;
}

static void route_burst(struct rte_mbuf **m, unsigned int nb, uint64_t now)
{
	unsigned int i;

	G.st->rx += nb;
	for (i = 0; i < nb; i++) {
		struct gp_wire_hdr *h = rte_pktmbuf_mtod(m[i], struct gp_wire_hdr *);
		unsigned int sfc, pos;

		if (unlikely(rte_pktmbuf_data_len(m[i]) < sizeof(*h) || h->magic != GP_WIRE_MAGIC ||
			     h->version != GP_WIRE_VERSION || h->sfc >= GP_MAX_SFCS || h->hop >= GP_MAX_POS)) {
			rte_pktmbuf_free(m[i]);
			G.st->bad_header++;
			continue;
		}
		sfc = h->sfc;
		pos = h->hop;
		if (pos == 0 && h->returns == 0)
			G.st->rx_entering++;
		/* a pair with packets still held keeps its order: new ones queue behind them */
		if (G.routes[sfc][pos].n == 0 || gp_hold_count(&G.holds, sfc, pos) != 0) {
			hold(m[i], sfc, pos, now);
			continue;
		}
		h->slot = (int8_t)choose(sfc, pos, h->flow);
		G.st->pair[sfc][pos].routed++;
		out_push(m[i], sfc, pos);
	}
}

/* One pass: new routes, the link's rx, sending back. Returns packets received + sent (0: nothing to do). */
static unsigned int pass(void)
{
	struct rte_mbuf *m[GP_MAX_BURST];
	uint64_t t0 = rte_rdtsc();
	unsigned int nb, sent;

	if (unlikely(gp_dir_seq(G.dir) != G.seq))
		reload(t0);
	else if (unlikely(G.release_pending))
		release_all(t0);
	nb = G.out_count + G.burst <= GP_OUTQ ? rte_eth_rx_burst(0, 0, m, G.burst) : 0;
	if (nb)
		route_burst(m, nb, t0);
	sent = out_flush();
	if (nb || sent) {
		G.st->busy_cycles += rte_rdtsc() - t0;
		G.st->busy_packets += nb;
	}
	return nb + sent;
}

static inline int should_stop(void)
{
	return sig_quit || __atomic_load_n(&G.dir->stop, __ATOMIC_ACQUIRE);
}

/* Sleep on the doorbell unless work appeared. Dekker-style with gp_dir_ring(): publish `sleeping`, look
 * for work once more (a receive: a memif queue cannot be peeked), then tell a waiting serpensd we are
 * done and wait. */
static void sleep_until_rung(void)
{
	uint32_t bell = __atomic_load_n(&G.dir->doorbell, __ATOMIC_ACQUIRE);

	__atomic_store_n(&G.dir->backlog, G.out_count, __ATOMIC_RELEASE);
	__atomic_store_n(&G.dir->sleeping, 1, __ATOMIC_SEQ_CST);
	if (pass() || gp_dir_seq(G.dir) != G.seq || should_stop()) {
		__atomic_store_n(&G.dir->sleeping, 0, __ATOMIC_SEQ_CST);
		return;
	}
	__atomic_fetch_add(&G.dir->done, 1, __ATOMIC_SEQ_CST);
	gp_dir_futex_wake(&G.dir->done, 1);
	G.st->sleeps++;
	gp_dir_futex_wait(&G.dir->doorbell, bell, G.out_count ? GP_RETRY_NS : GP_SLEEP_NS);
	G.st->wakeups++;
	__atomic_store_n(&G.dir->sleeping, 0, __ATOMIC_SEQ_CST);
}

static void main_loop(void)
{
	reload(rte_rdtsc()); /* the routes serpensd published before we attached */
	while (likely(!should_stop())) {
		if (pass())
			continue;
		__atomic_store_n(&G.dir->backlog, G.out_count, __ATOMIC_RELAXED);
		if (!G.poll)
			sleep_until_rung();
	}
	/* serpensd may wait on `done` for us: let it go */
	__atomic_fetch_add(&G.dir->done, 1, __ATOMIC_SEQ_CST);
	gp_dir_futex_wake(&G.dir->done, 1);
}

static void free_everything(void)
{
	void *m[GP_MAX_BURST];
	unsigned int s, p, n;

	for (s = 0; s < GP_MAX_SFCS; s++)
		for (p = 0; p < GP_MAX_POS; p++)
			while ((n = gp_hold_pop(&G.holds, s, p, m, GP_MAX_BURST)) > 0)
				rte_pktmbuf_free_bulk((struct rte_mbuf **)m, n);
	gp_holds_fini(&G.holds);
	while (G.out_count) {
		rte_pktmbuf_free(G.outq[G.out_head]);
		G.out_head = (G.out_head + 1) & (GP_OUTQ - 1);
		G.out_count--;
	}
}

int main(int argc, char **argv)
{
	static struct eal_files files;
	char err[512];
	int ret;

	rte_openlog_stream(stderr); /* stdout carries only READY */
	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "EAL initialisation failed: %s\n", rte_strerror(rte_errno));
	eal_files_arm(&files);
	sig_install(0);
	parse_args(argc - ret, argv + ret);
	G.dir = gp_dir_open(G.dir_path, err, sizeof(err));
	if (!G.dir)
		rte_exit(EXIT_FAILURE, "%s\n", err);
	G.st = &G.dir->stats;
	gp_holds_init(&G.holds, G.hold_cap);
	G.pool = port_pool_create("gproxy_mbufs", GP_POOL_MBUFS, GP_POOL_CACHE);
	port_configure(0, G.pool);
	ret = port_start(0, 10.0); /* a memif client fails to start until serpensd's server socket exists */
	if (ret != 0)
		rte_exit(EXIT_FAILURE, "port 0 (the link to serpensd): start failed: %s\n", rte_strerror(-ret));
	ret = port_wait_link(0, 10.0);
	if (ret <= 0)
		rte_exit(EXIT_FAILURE, "the link to serpensd did not come up%s\n", ret < 0 ? " (interrupted)" : "");
	memif_regions_populate(); /* our mapping of the new region, before packets fault it in page by page */
	eal_files_collect(&files);
	G.dir->proxy_attach_tsc = rte_rdtsc();
	__atomic_store_n(&G.dir->proxy_pid, (int32_t)getpid(), __ATOMIC_RELEASE);
	printf("READY\n");
	fflush(stdout);
	main_loop();
	free_everything();
	__atomic_store_n(&G.dir->proxy_pid, 0, __ATOMIC_RELEASE);
	port_shutdown(0);
	gp_dir_close(G.dir);
	eal_files_finish(&files); /* not rte_eal_cleanup(): see eal_files.h */
	return 0;
}
