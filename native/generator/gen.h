/*
 * gen.h: state of one serpens-gen run, shared by main.c (set-up),
 * traffic.c (the TX/RX loop) and gen_report.c (the report).
 */
#ifndef SERPENS_GEN_H
#define SERPENS_GEN_H

#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_mempool.h>

#include "lat_trace.h"
#include "loopstat.h"
#include "pcap.h"
#include "stream.h"

#define GEN_VERSION "serpens-gen 0.1"
#define GEN_MAX_BURST 512
#define GEN_RX_BURST 64
#define GEN_RX_ROUNDS 4         /* rx bursts per loop iteration, at most */
/* RX polling before the trial starts. Long enough for the platform, which
 * populates its own mapping of the memif region when the link comes up
 * (memif_region.h) while we populate ours, to finish before our clock
 * starts: both take ~50 ms here, from the same moment, on separate cores. */
#define GEN_PREARM_MS 20
#define GEN_FULL_BACKOFF_NS 2000 /* leave a full TX ring alone this long */
#define GEN_CATCHUP_US 200      /* default --catchup-us (docs/generator.md) */
#define GEN_FLUSH_MAX_US 10000  /* end-of-trial top-up: give up after this */
#define GEN_SLEEP_MARGIN_US 50  /* wake this early from an idle sleep: with
				 * 1 ns timer slack nanosleep overshoots by
				 * 13-20 us (median), 30-75 us (p99) here */

/* Exit codes the Python driver relies on. */
#define GEN_EXIT_USAGE 2        /* bad arguments or unsupported streams */
#define GEN_EXIT_LINK 3         /* the port never came up */
#define GEN_EXIT_LINK_LOST 4    /* link went down mid-trial (report written) */

struct gen_opts {
	const char *streams;
	const char *report;
	const char *capture;
	const char *latency_trace; /* --latency-trace FILE, or NULL */
	uint64_t latency_trace_max;
	double duration_s;
	double mult;
	double link_timeout_s;
	double catchup_us;        /* catch-up bound per stream (pace.h) */
	double idle_sleep_us;     /* sleep when the next packet is this far
				   * away and nothing is in flight; 0: never */
	uint64_t settle_ms;
	uint64_t capture_count;
	uint64_t tsc_hz;          /* TSC frequency to use; 0: DPDK's */
	uint16_t port;
	uint16_t burst;
};

/* --tsc-hz bounds: 100 MHz .. 100 GHz, beyond any TSC there is */
#define GEN_MIN_TSC_HZ 100000000ull
#define GEN_MAX_TSC_HZ 100000000000ull

struct gen {
	struct gen_opts o;
	struct stream_set set;
	struct rte_mempool *pool;
	struct rte_mempool *jumbo_pool; /* for streams over GEN_STD_PKT, or NULL */
	uint64_t hz;
	uint64_t tsc_start;       /* traffic start */
	uint64_t tsc_stop;        /* TX stopped (end of schedule or signal) */
	uint64_t tsc_done;        /* settle finished */
	uint64_t wall_start_ns;   /* CLOCK_REALTIME at tsc_start (pcap) */
	double ns_per_tsc;
	uint64_t full_backoff;    /* GEN_FULL_BACKOFF_NS in TSC ticks */
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t rx_stale;        /* received before the trial started */
	uint64_t dut_rx_full;
	uint64_t alloc_fail;
	uint64_t backlog_max;     /* most packets owed (all streams) at once */
	uint64_t flush_packets;   /* sent by the end-of-trial top-up */
	double flush_us;          /* how long the top-up took */
	uint64_t idle_sleeps;     /* idle sleeps taken ... */
	uint64_t idle_slept;      /* ... and their TSC ticks */
	int64_t prefault_bytes;   /* memif region populated; -1: not found */
	double prefault_ms;
	int interrupted;          /* TX stopped early (signal or link lost) */
	int link_lost;
	struct pcap_writer cap;
	uint64_t cap_left;
	struct lat_trace trace;   /* --latency-trace (lat_trace.h) */
	struct rte_eth_stats eth;
	struct loopstat stalls;
};

/* prefault.c: populate the pages of the memif shared-memory region before
 * the trial, so that the first pass through the rings does not fault. */
void memif_prefault(struct gen *g);

/* traffic.c: send for o.duration_s (or until sig_quit), then settle. */
void traffic_run(struct gen *g);

/* gen_report.c: write the JSON report (rte_exit on failure) and print the
 * one-line summary on stdout. */
void gen_report(struct gen *g);

#endif
