/*
 * main.c: serpens-wire, the simplest "platform": a DPDK forwarder that puts
 * every received packet straight back on the wire.
 *
 *   serpens-wire [EAL args] -- [--stats FILE] [--burst N] [--tsc-hz HZ]
 *
 * Why: it is the baseline every NF platform is compared with (the cost of
 * the substrate alone, no NF), and the peer serpens-gen is tested against.
 * With one port, port 0 -> port 0; with two, 0 -> 1 and 1 -> 0 (in general
 * port 2k <-> 2k+1; an odd last port loops back to itself). Busy-polls on
 * the main lcore. Runs as a DPDK primary with --file-prefix (not
 * --in-memory) because serpensd, which replaces it, runs secondaries on the
 * same substrate.
 *
 * Where its CPU goes: the forwarder is the wire's one stage ("gateway" in
 * the stats' "stages", docs/stages.md): TSC time from before a receive that
 * brought packets to after their transmit. Idle polls add nothing.
 *
 * Signals: SIGUSR1 writes a stats snapshot to --stats; SIGINT/SIGTERM write
 * the final stats and exit 0. Both writes happen in the main loop. When the
 * ports are up, exactly one line "READY" is printed on stdout (DPDK's own
 * log goes to stderr), which the Python driver waits for.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_debug.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_mbuf.h>

#include "args.h"
#include "dp_guard.h"
#include "eal_files.h"
#include "loopstat.h"
#include "memif_region.h"
#include "port.h"
#include "report.h"
#include "sig.h"

#define WIRE_MAX_PORTS 16
#define WIRE_MAX_BURST 512
#define WIRE_POOL_MBUFS_PER_PORT 16383
#define WIRE_POOL_CACHE 512

struct wire_port {
	uint16_t id;
	uint16_t peer;          /* index (in struct wire) of the egress port */
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets;
	uint64_t tx_dropped;
};

struct wire {
	const char *stats_path;
	uint16_t burst;
	unsigned int n;
	struct wire_port p[WIRE_MAX_PORTS];
	struct rte_mempool *pool;
	struct loopstat stalls;
	struct link_watch links[WIRE_MAX_PORTS];
	uint64_t busy_cycles;   /* the forwarder stage: receive .. transmit of bursts that had packets */
	uint64_t busy_packets;
	uint64_t tsc_hz;        /* --tsc-hz (the kernel's calibration), 0: DPDK's estimate */
};

static void usage_exit(const char *prg, const char *msg)
{
	fprintf(stderr, "usage: %s [EAL args] -- [--stats FILE] [--burst N] [--tsc-hz HZ]\n",
		prg);
	rte_exit(2, "%s\n", msg);
}

static void parse_args(struct wire *w, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "stats", required_argument, NULL, 's' },
		{ "burst", required_argument, NULL, 'b' },
		{ "tsc-hz", required_argument, NULL, 'z' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int opt;

	w->burst = 32;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 's') {
			w->stats_path = optarg;
		} else if (opt == 'b') {
			if (arg_u64(optarg, 1, WIRE_MAX_BURST, &v))
				usage_exit(argv[0], "invalid --burst (1..512)");
			w->burst = (uint16_t)v;
		} else if (opt == 'z') {
			/* the kernel's calibration (harness/tsc.py): the busy time it reports in ns is converted
			 * with it, not with DPDK's estimate rounded to 10 MHz */
			if (arg_u64(optarg, 100000000ull, 100000000000ull, &w->tsc_hz))
				usage_exit(argv[0], "invalid --tsc-hz (1e8..1e11 Hz)");
		} else {
			usage_exit(argv[0], "unknown option");
		}
	}
	if (optind < argc)
		usage_exit(argv[0], "unexpected argument");
}

static void setup_ports(struct wire *w)
{
	uint16_t pid;
	unsigned int i;
	int ret;

	RTE_ETH_FOREACH_DEV(pid) {
		if (w->n >= WIRE_MAX_PORTS)
			rte_exit(EXIT_FAILURE, "more than %d ports\n",
				 WIRE_MAX_PORTS);
		w->p[w->n++].id = pid;
	}
	if (w->n == 0)
		rte_exit(EXIT_FAILURE, "no ports: pass e.g. --vdev net_memif0,"
			 "role=server,socket=PATH (if you did, its probe failed: "
			 "see above, e.g. a memif socket already in use)\n");
	w->pool = port_pool_create("wire_pool",
				   WIRE_POOL_MBUFS_PER_PORT * w->n,
				   WIRE_POOL_CACHE);
	for (i = 0; i < w->n; i++) {
		w->p[i].peer = (uint16_t)((i ^ 1u) < w->n ? (i ^ 1u) : i);
		port_configure(w->p[i].id, w->pool);
		ret = port_start(w->p[i].id, 0);
		if (ret != 0)
			rte_exit(EXIT_FAILURE, "port %u: start failed: %s (for "
				 "a memif server: is the socket already in "
				 "use?)\n", w->p[i].id, rte_strerror(-ret));
	}
}

/* Receive a burst on p and send it out of its peer port. tx counters
 * belong to the port the packets leave through. The clock starts before
 * the receive but counts only when it brought packets. */
static inline void forward(struct wire *w, struct wire_port *p)
{
	struct rte_mbuf *m[WIRE_MAX_BURST];
	struct wire_port *out = &w->p[p->peer];
	uint64_t t0 = rte_rdtsc();
	uint16_t nb, sent, i;

	nb = rte_eth_rx_burst(p->id, 0, m, w->burst);
	if (nb == 0)
		return;
	p->rx_packets += nb;
	for (i = 0; i < nb; i++)
		p->rx_bytes += m[i]->pkt_len;
	sent = rte_eth_tx_burst(out->id, 0, m, nb);
	if (unlikely(sent < nb))
		rte_pktmbuf_free_bulk(m + sent, nb - sent);
	out->tx_packets += sent;
	out->tx_dropped += nb - sent;
	w->busy_cycles += rte_rdtsc() - t0;
	w->busy_packets += nb;
}

static json_t *port_json(const struct wire_port *p)
{
	struct rte_eth_stats st;
	json_t *o = json_object();

	port_stats(p->id, &st);
	report_set(o, "port", json_integer(p->id));
	report_set(o, "rx_packets", report_u64(p->rx_packets));
	report_set(o, "rx_bytes", report_u64(p->rx_bytes));
	report_set(o, "tx_packets", report_u64(p->tx_packets));
	report_set(o, "tx_dropped", report_u64(p->tx_dropped));
	report_set(o, "imissed", report_u64(st.imissed));
	report_set(o, "rx_nombuf", report_u64(st.rx_nombuf));
	return o;
}

/* {"gateway": {"busy_ns", "packets"}}: the forwarder, cumulative since start. */
static json_t *stages_json(const struct wire *w)
{
	json_t *stages = json_object(), *gw = json_object();
	double ns = (double)w->busy_cycles * 1e9 / (double)(w->tsc_hz ? w->tsc_hz : rte_get_tsc_hz());

	report_set(gw, "busy_ns", report_u64((uint64_t)ns));
	report_set(gw, "packets", report_u64(w->busy_packets));
	report_set(stages, "gateway", gw);
	return stages;
}

static json_t *stats_json(const struct wire *w)
{
	json_t *root = json_object(), *ports = json_array();
	uint64_t rx = 0, tx = 0, drop = 0;
	unsigned int i;

	for (i = 0; i < w->n; i++) {
		if (json_array_append_new(ports, port_json(&w->p[i])) != 0)
			rte_exit(EXIT_FAILURE, "out of memory (stats)\n");
		rx += w->p[i].rx_packets;
		tx += w->p[i].tx_packets;
		drop += w->p[i].tx_dropped;
	}
	report_set(root, "platform", json_string("wire"));
	report_set(root, "ports", ports);
	report_set(root, "rx_packets", report_u64(rx));
	report_set(root, "tx_packets", report_u64(tx));
	report_set(root, "tx_dropped", report_u64(drop));
	report_set(root, "loop_stalls", loopstat_json(&w->stalls));
	/* what the gateway stage's busy_ns was converted with */
	report_set(root, "tsc_hz", report_u64(w->tsc_hz ? w->tsc_hz : rte_get_tsc_hz()));
	report_set(root, "stages", stages_json(w));
	return root;
}

/* Write the stats file (if --stats was given); failures are logged, not
 * fatal: the forwarder keeps running. */
static void write_stats(const struct wire *w)
{
	char err[512];
	json_t *root;

	if (w->stats_path == NULL)
		return;
	root = stats_json(w);
	if (report_write_atomic(w->stats_path, root, err, sizeof(err)) != 0)
		RTE_LOG(ERR, USER1, "stats: %s\n", err);
	json_decref(root);
}

/* A port's link came up (a generator connected, with a new memif region):
 * map the region's pages now, before its clock starts, instead of faulting
 * them in during the first pass of the trial (memif_region.h). */
static void link_check(struct wire *w, uint64_t now)
{
	unsigned int i;
	int up = 0;

	for (i = 0; i < w->n; i++)
		up |= link_watch_came_up(&w->links[i], now);
	if (up) {
		memif_regions_populate();
		w->stalls.prev = rte_rdtsc();  /* not a stall */
	}
}

static void main_loop(struct wire *w)
{
	uint64_t now, hz = rte_get_tsc_hz();
	unsigned int i;

	loopstat_init(&w->stalls, hz, rte_rdtsc());
	for (i = 0; i < w->n; i++)
		link_watch_init(&w->links[i], w->p[i].id, hz / 1000, rte_rdtsc());
	dp_guard_arm();
	while (likely(!sig_quit)) {
		now = rte_rdtsc();
		loopstat_tick(&w->stalls, now);
		if (unlikely(now >= w->links[0].next))
			link_check(w, now);
		for (i = 0; i < w->n; i++)
			forward(w, &w->p[i]);
		dp_guard_quiescent();
		if (unlikely(sig_snapshot)) {
			sig_snapshot = 0;
			write_stats(w);
			w->stalls.prev = rte_rdtsc();  /* not a stall */
		}
	}
	dp_guard_disarm();
}

int main(int argc, char **argv)
{
	static struct eal_files files;
	static struct wire w;
	unsigned int i;
	int ret;

	/* DPDK logs to stderr: stdout carries only "READY". */
	rte_openlog_stream(stderr);
	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "EAL initialisation failed: %s\n",
			 rte_strerror(rte_errno));
	eal_files_arm(&files);
	sig_install(1);
	parse_args(&w, argc - ret, argv + ret);
	setup_ports(&w);
	eal_files_collect(&files);
	printf("READY\n");
	fflush(stdout);
	main_loop(&w);
	write_stats(&w);
	for (i = 0; i < w.n; i++)
		port_shutdown(w.p[i].id);
	eal_files_finish(&files); /* not rte_eal_cleanup(): see eal_files.h */
	return 0;
}
