/*
 * main.c: serpens-gen, the harness's built-in DPDK traffic generator.
 *
 *   serpens-gen [EAL args] -- --streams FILE --duration SEC --report FILE
 *       [--mult X] [--port N] [--settle-ms MS] [--link-timeout-s S]
 *       [--capture FILE] [--capture-count N] [--burst N] [--catchup-us US]
 *       [--idle-sleep-us US] [--tsc-hz HZ]
 *       [--latency-trace FILE] [--latency-trace-max N]
 *
 * Why: the harness measures NF platforms with TRex-style STL streams; this
 * program runs those streams over a DPDK port (normally a memif client
 * facing serpens-wire or serpensd) on one lcore, measures latency with
 * in-packet TSC stamps, and writes a JSON report the Python driver reads.
 * Structure follows DPDK's l2fwd: EAL init, parse arguments, set up the
 * port, wait for the link, one main loop, clean up.
 *
 * Exit codes: 0 report written (also after SIGINT/SIGTERM, with
 * "interrupted": true); 2 bad arguments or unsupported streams; 3 the link
 * never came up; 4 the link went down during the trial (report written,
 * "link_lost": true); 1 anything else.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_debug.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>

#include "args.h"
#include "eal_files.h"
#include "gen.h"
#include "port.h"
#include "sig.h"

#define GEN_POOL_MBUFS 16383
#define GEN_POOL_CACHE 512
/* Jumbo frames are built in mbufs of their own size: one segment per
 * packet, so the field engine's offsets need no segment walk. In copy mode
 * the PMD frees them as soon as it has copied them, so a few bursts' worth
 * is enough; 4095 x ~9.7 KB = 40 MB of hugepages, only when a stream needs
 * it. */
#define GEN_JUMBO_MBUFS 4095
#define GEN_JUMBO_CACHE 256

static void usage(const char *prg)
{
	fprintf(stderr,
		"usage: %s [EAL args] -- --streams FILE --duration SEC "
		"--report FILE\n"
		"         [--mult X] [--port N] [--settle-ms MS] "
		"[--link-timeout-s S]\n"
		"         [--capture FILE] [--capture-count N] [--burst N] "
		"[--catchup-us US]\n"
		"         [--idle-sleep-us US] [--tsc-hz HZ]\n"
		"         [--latency-trace FILE] [--latency-trace-max N]\n",
		prg);
}

enum {
	OPT_STREAMS = 256, OPT_DURATION, OPT_REPORT, OPT_MULT, OPT_PORT,
	OPT_SETTLE, OPT_LINK_TIMEOUT, OPT_CAPTURE, OPT_CAPTURE_COUNT,
	OPT_BURST, OPT_CATCHUP, OPT_IDLE_SLEEP, OPT_TSC_HZ, OPT_TRACE,
	OPT_TRACE_MAX,
};

static const struct option gen_long_opts[] = {
	{ "streams", required_argument, NULL, OPT_STREAMS },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "report", required_argument, NULL, OPT_REPORT },
	{ "mult", required_argument, NULL, OPT_MULT },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "settle-ms", required_argument, NULL, OPT_SETTLE },
	{ "link-timeout-s", required_argument, NULL, OPT_LINK_TIMEOUT },
	{ "capture", required_argument, NULL, OPT_CAPTURE },
	{ "capture-count", required_argument, NULL, OPT_CAPTURE_COUNT },
	{ "burst", required_argument, NULL, OPT_BURST },
	{ "catchup-us", required_argument, NULL, OPT_CATCHUP },
	{ "idle-sleep-us", required_argument, NULL, OPT_IDLE_SLEEP },
	{ "tsc-hz", required_argument, NULL, OPT_TSC_HZ },
	{ "latency-trace", required_argument, NULL, OPT_TRACE },
	{ "latency-trace-max", required_argument, NULL, OPT_TRACE_MAX },
	{ NULL, 0, NULL, 0 },
};

static void bad_arg(const char *prg, const char *what, const char *val)
{
	usage(prg);
	rte_exit(GEN_EXIT_USAGE, "invalid %s: '%s'\n", what, val ? val : "");
}

/* Numeric options; returns 0 if opt was one of them. */
static int parse_number(struct gen_opts *o, int opt, const char *prg)
{
	uint64_t v;

	switch (opt) {
	case OPT_DURATION:
		if (arg_double(optarg, 1e-3, 1e6, &o->duration_s))
			bad_arg(prg, "--duration (0.001..1000000 s)", optarg);
		return 0;
	case OPT_MULT:
		if (arg_double(optarg, 1e-9, 1e9, &o->mult))
			bad_arg(prg, "--mult (> 0)", optarg);
		return 0;
	case OPT_LINK_TIMEOUT:
		if (arg_double(optarg, 0, 1e6, &o->link_timeout_s))
			bad_arg(prg, "--link-timeout-s", optarg);
		return 0;
	case OPT_PORT:
		if (arg_u64(optarg, 0, RTE_MAX_ETHPORTS - 1, &v))
			bad_arg(prg, "--port", optarg);
		o->port = (uint16_t)v;
		return 0;
	case OPT_SETTLE:
		if (arg_u64(optarg, 0, 600000, &o->settle_ms))
			bad_arg(prg, "--settle-ms", optarg);
		return 0;
	case OPT_CAPTURE_COUNT:
		if (arg_u64(optarg, 0, UINT32_MAX, &o->capture_count))
			bad_arg(prg, "--capture-count", optarg);
		return 0;
	case OPT_CATCHUP:
		if (arg_double(optarg, 0, 1e6, &o->catchup_us))
			bad_arg(prg, "--catchup-us (0..1000000)", optarg);
		return 0;
	case OPT_IDLE_SLEEP:
		if (arg_double(optarg, 0, 1e6, &o->idle_sleep_us) ||
		    (o->idle_sleep_us > 0 &&
		     o->idle_sleep_us < 2 * GEN_SLEEP_MARGIN_US))
			bad_arg(prg, "--idle-sleep-us (0, or 100..1000000)",
				optarg);
		return 0;
	case OPT_BURST:
		if (arg_u64(optarg, 1, GEN_MAX_BURST, &v))
			bad_arg(prg, "--burst (1..512)", optarg);
		o->burst = (uint16_t)v;
		return 0;
	case OPT_TSC_HZ:
		if (arg_u64(optarg, GEN_MIN_TSC_HZ, GEN_MAX_TSC_HZ, &o->tsc_hz))
			bad_arg(prg, "--tsc-hz (1e8..1e11)", optarg);
		return 0;
	case OPT_TRACE_MAX:
		if (arg_u64(optarg, 1, LAT_TRACE_MAX_LIMIT,
			    &o->latency_trace_max))
			bad_arg(prg, "--latency-trace-max (1..268435456)",
				optarg);
		return 0;
	}
	return -1;
}

static void parse_args(struct gen_opts *o, int argc, char **argv)
{
	const char *prg = argv[0];
	int opt;

	o->mult = 1.0;
	o->link_timeout_s = 10.0;
	o->settle_ms = 100;
	o->capture_count = 1000;
	o->burst = 32;
	o->catchup_us = GEN_CATCHUP_US;
	o->latency_trace_max = LAT_TRACE_MAX_DEFAULT;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", gen_long_opts, NULL)) != -1) {
		if (opt == OPT_STREAMS)
			o->streams = optarg;
		else if (opt == OPT_REPORT)
			o->report = optarg;
		else if (opt == OPT_CAPTURE)
			o->capture = optarg;
		else if (opt == OPT_TRACE)
			o->latency_trace = optarg;
		else if (parse_number(o, opt, prg) != 0)
			bad_arg(prg, "option", argv[optind - 1]);
	}
	if (optind < argc)
		bad_arg(prg, "extra argument", argv[optind]);
	if (!o->streams || !o->report || o->duration_s <= 0) {
		usage(prg);
		rte_exit(GEN_EXIT_USAGE, "--streams, --duration and --report "
			 "are required\n");
	}
}

static void load_streams(struct gen *g)
{
	char err[512];

	if (streams_load(g->o.streams, g->o.mult, &g->set, err,
			 sizeof(err)) != 0)
		rte_exit(GEN_EXIT_USAGE, "streams file %s: %s\n",
			 g->o.streams, err);
}

/* Streams whose frames fit a default mbuf use the main pool; longer ones a
 * pool whose data room holds the longest frame. */
static void assign_pools(struct gen *g)
{
	uint16_t max = streams_max_len(&g->set);
	unsigned int i;

	if (max > GEN_STD_PKT)
		g->jumbo_pool = port_pool_create_sized("gen_jumbo",
						       GEN_JUMBO_MBUFS,
						       GEN_JUMBO_CACHE,
						       RTE_ALIGN_CEIL(max, 64));
	for (i = 0; i < g->set.n; i++)
		g->set.s[i].pool = g->set.s[i].len > GEN_STD_PKT ?
			g->jumbo_pool : g->pool;
}

static void open_capture(struct gen *g)
{
	if (g->o.capture == NULL)
		return;
	if (pcap_open(&g->cap, g->o.capture) != 0)
		rte_exit(EXIT_FAILURE, "cannot create capture file %s: %s\n",
			 g->o.capture, strerror(errno));
	g->cap_left = g->o.capture_count;
}

/*
 * --latency-trace: room for every latency packet the schedule can send (a
 * stream sends at most ceil(pps x duration) packets), but no more than
 * --latency-trace-max records of each kind; the mapping is faulted in here,
 * before the trial, so that recording a packet never faults.
 */
static void open_trace(struct gen *g)
{
	const struct gen_stream *s;
	double need = 0.0;
	uint64_t cap;
	char err[512];
	unsigned int i;

	if (g->o.latency_trace == NULL)
		return;
	for (i = 0; i < g->set.n; i++) {
		s = &g->set.s[i];
		if (s->lat >= 0)
			need += ceil(s->pps * g->o.duration_s) + 1.0;
	}
	cap = need < (double)g->o.latency_trace_max ?
		(uint64_t)need : g->o.latency_trace_max;
	if (lat_trace_alloc(&g->trace, cap, err, sizeof(err)) != 0)
		rte_exit(EXIT_FAILURE, "latency trace: %s\n", err);
	g->set.lat.trace = &g->trace;
	for (i = 0; i < g->set.n; i++)
		if (g->set.s[i].lat >= 0)
			g->set.s[i].ltx.trace = &g->trace;
}

static void write_trace(struct gen *g)
{
	char err[512];

	if (g->o.latency_trace == NULL)
		return;
	if (lat_trace_write(&g->trace, g->o.latency_trace, g->hz,
			    g->tsc_start, err, sizeof(err)) != 0)
		rte_exit(EXIT_FAILURE, "cannot write the latency trace: %s\n",
			 err);
}

static void bring_up_port(struct gen *g)
{
	int ret;

	port_configure(g->o.port, g->pool);
	ret = port_start(g->o.port, g->o.link_timeout_s);
	if (ret == -EINTR)
		rte_exit(GEN_EXIT_LINK, "interrupted before the link came up\n");
	if (ret != 0)
		rte_exit(GEN_EXIT_LINK, "port %u did not start (%s): memif link "
			 "did not come up: is the peer (serpens-wire/serpensd) "
			 "running with the same socket?\n", g->o.port,
			 rte_strerror(-ret));
	ret = port_wait_link(g->o.port, g->o.link_timeout_s);
	if (ret < 0)
		rte_exit(GEN_EXIT_LINK, "interrupted before the link came up\n");
	if (ret == 0)
		rte_exit(GEN_EXIT_LINK, "port %u: memif link did not come up "
			 "within %.1f s: is the peer (serpens-wire/serpensd) "
			 "running with the same socket?\n", g->o.port,
			 g->o.link_timeout_s);
}

int main(int argc, char **argv)
{
	static struct eal_files files;
	static struct gen g;
	int ret;

	/* DPDK logs to stderr: stdout carries only the summary line. */
	rte_openlog_stream(stderr);
	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "EAL initialisation failed: %s\n",
			 rte_strerror(rte_errno));
	eal_files_arm(&files);
	sig_install(0);
	parse_args(&g.o, argc - ret, argv + ret);
	load_streams(&g);
	port_check_valid(g.o.port);
	/*
	 * Every rate and latency is TSC ticks over this. Without x86's precise
	 * sources (CPUID 0x15, an MSR: not in most VMs) DPDK estimates it over a
	 * sleep and rounds it to 10 MHz, 0.2 % off here; the harness passes the
	 * kernel's calibration instead (docs/reliability.md).
	 */
	g.hz = g.o.tsc_hz ? g.o.tsc_hz : rte_get_tsc_hz();
	g.pool = port_pool_create("gen_pool", GEN_POOL_MBUFS, GEN_POOL_CACHE);
	assign_pools(&g);
	open_capture(&g);
	open_trace(&g);
	bring_up_port(&g);
	traffic_run(&g);
	write_trace(&g);
	port_stats(g.o.port, &g.eth);
	if (pcap_close(&g.cap) != 0)
		RTE_LOG(WARNING, USER1, "capture file %s: close failed\n",
			g.o.capture);
	gen_report(&g);
	port_shutdown(g.o.port);
	streams_free(&g.set);
	lat_trace_free(&g.trace);
	eal_files_finish(&files); /* not rte_eal_cleanup(): see eal_files.h */
	return g.link_lost ? GEN_EXIT_LINK_LOST : 0;
}
