/*
 * gen_report.c: the JSON report of one serpens-gen trial and its one-line
 * human summary (schema in docs/generator.md).
 */
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_debug.h>
#include <rte_version.h>

#include "gen.h"
#include "report.h"

static json_t *stream_json(const struct gen_stream *s)
{
	json_t *o = json_object();

	report_set(o, "index", json_integer(s->index));
	report_set(o, "mode", json_string(stream_mode_name(s)));
	report_set(o, "total_packets",
		   s->total ? report_u64(s->total) : json_null());
	report_set(o, "pps", json_real(s->pps));
	report_set(o, "packet_len", json_integer(s->len));
	report_set(o, "tx_packets", report_u64(s->tx_packets));
	report_set(o, "tx_bytes", report_u64(s->tx_bytes));
	report_set(o, "intended_packets", report_u64(s->intended));
	report_set(o, "skipped_stall_packets", report_u64(s->pace.skipped_stall));
	report_set(o, "skipped_slow_packets", report_u64(s->pace.skipped_slow));
	report_set(o, "catchup_packets", report_u64(s->pace.cap));
	report_set(o, "backlog_max_packets", report_u64(s->pace.backlog_max));
	report_set(o, "latency_pg_id", s->pg_id >= 0 && !s->pg_stats ?
		   json_integer(s->pg_id) : json_null());
	report_set(o, "flow_stats_pg_id",
		   s->pg_id >= 0 ? json_integer(s->pg_id) : json_null());
	return o;
}

static json_t *streams_json(const struct gen *g)
{
	json_t *a = json_array();
	unsigned int i;

	for (i = 0; i < g->set.n; i++)
		if (json_array_append_new(a, stream_json(&g->set.s[i])) != 0)
			rte_exit(EXIT_FAILURE, "out of memory (report)\n");
	return a;
}

static const struct gen_stream *pg_stream(const struct gen *g,
					  uint16_t pg_id)
{
	unsigned int i;

	for (i = 0; i < g->set.n; i++)
		if (g->set.s[i].pg_id == (int)pg_id)
			return &g->set.s[i];
	return NULL;
}

static uint64_t pg_tx(const struct gen *g, uint16_t pg_id)
{
	const struct gen_stream *s = pg_stream(g, pg_id);

	return s ? s->tx_packets : 0;
}

static json_t *pg_json(const struct gen *g, const struct lat_pg *pg)
{
	const struct hist *h = &pg->hist;
	json_t *o = json_object();

	report_set(o, "tx_packets", report_u64(pg_tx(g, pg->pg_id)));
	report_set(o, "rx_packets", report_u64(pg->rx_packets));
	report_set(o, "out_of_order", report_u64(pg->out_of_order));
	report_set(o, "min_ns", report_u64(h->count ? h->min : 0));
	report_set(o, "max_ns", report_u64(h->max));
	report_set(o, "mean_ns", json_real(hist_mean(h)));
	report_set(o, "p50_ns", report_u64(hist_percentile(h, 0.50)));
	report_set(o, "p99_ns", report_u64(hist_percentile(h, 0.99)));
	report_set(o, "p999_ns", report_u64(hist_percentile(h, 0.999)));
	report_set(o, "buckets", report_hist_buckets(h));
	return o;
}

/* Only rule_type "latency" streams: a "stats" stream has no latency. */
static json_t *latency_json(const struct gen *g)
{
	const struct gen_stream *s;
	json_t *o = json_object();
	char key[16];
	unsigned int i;

	for (i = 0; i < g->set.lat.n; i++) {
		s = pg_stream(g, g->set.lat.pg[i].pg_id);
		if (s == NULL || s->pg_stats)
			continue;
		snprintf(key, sizeof(key), "%u", g->set.lat.pg[i].pg_id);
		report_set(o, key, pg_json(g, &g->set.lat.pg[i]));
	}
	return o;
}

/* TRex's flow_stats: per pg_id packets and bytes sent and received, for
 * both rule types (TRex counts latency streams there too). */
static json_t *flow_stats_json(const struct gen *g)
{
	const struct lat_pg *pg;
	const struct gen_stream *s;
	json_t *o = json_object(), *e;
	char key[16];
	unsigned int i;

	for (i = 0; i < g->set.lat.n; i++) {
		pg = &g->set.lat.pg[i];
		s = pg_stream(g, pg->pg_id);
		e = json_object();
		report_set(e, "rule_type", json_string(s && s->pg_stats ?
						       "stats" : "latency"));
		report_set(e, "tx_packets", report_u64(s ? s->tx_packets : 0));
		report_set(e, "tx_bytes", report_u64(s ? s->tx_bytes : 0));
		report_set(e, "rx_packets", report_u64(pg->rx_packets));
		report_set(e, "rx_bytes", report_u64(pg->rx_bytes));
		snprintf(key, sizeof(key), "%u", pg->pg_id);
		report_set(o, key, e);
	}
	return o;
}

/* Sums over the streams. */
struct totals {
	uint64_t tx_packets, tx_bytes, intended, skipped_stall, skipped_slow;
	uint64_t catchup;
};

static void totals(const struct gen *g, struct totals *t)
{
	const struct gen_stream *s;
	unsigned int i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < g->set.n; i++) {
		s = &g->set.s[i];
		t->tx_packets += s->tx_packets;
		t->tx_bytes += s->tx_bytes;
		t->intended += s->intended;
		t->skipped_stall += s->pace.skipped_stall;
		t->skipped_slow += s->pace.skipped_slow;
		t->catchup += s->pace.cap;
	}
}

static json_t *capture_json(const struct gen *g)
{
	json_t *o;

	if (g->o.capture == NULL)
		return json_null();
	o = json_object();
	report_set(o, "file", json_string(g->o.capture));
	report_set(o, "packets", report_u64(g->cap.packets));
	return o;
}

/* --latency-trace: where it is and how many records it holds; a record
 * beyond --latency-trace-max is counted in trace_overflow, never dropped
 * silently. */
static json_t *trace_json(const struct gen *g)
{
	const struct lat_trace *t = &g->trace;
	uint64_t tx = lat_trace_stored(t->n_tx, t->cap);
	uint64_t rx = lat_trace_stored(t->n_rx, t->cap);
	json_t *o;

	if (g->o.latency_trace == NULL)
		return json_null();
	o = json_object();
	report_set(o, "file", json_string(g->o.latency_trace));
	report_set(o, "max_records", report_u64(g->o.latency_trace_max));
	report_set(o, "capacity", report_u64(t->cap));
	report_set(o, "tx_records", report_u64(tx));
	report_set(o, "rx_records", report_u64(rx));
	report_set(o, "tx_overflow", report_u64(t->n_tx - tx));
	report_set(o, "rx_overflow", report_u64(t->n_rx - rx));
	report_set(o, "trace_overflow", report_u64(t->n_tx - tx +
						   t->n_rx - rx));
	return o;
}

static json_t *prefault_json(const struct gen *g)
{
	json_t *o;

	if (g->prefault_bytes < 0)
		return json_null();
	o = json_object();
	report_set(o, "bytes", json_integer(g->prefault_bytes));
	report_set(o, "ms", json_real(g->prefault_ms));
	return o;
}

static json_t *flush_json(const struct gen *g)
{
	json_t *o = json_object();

	report_set(o, "packets", report_u64(g->flush_packets));
	report_set(o, "us", json_real(g->flush_us));
	return o;
}

static json_t *idle_sleep_json(const struct gen *g)
{
	json_t *o = json_object();

	report_set(o, "threshold_us", json_real(g->o.idle_sleep_us));
	report_set(o, "count", report_u64(g->idle_sleeps));
	report_set(o, "total_ms", json_real((double)g->idle_slept * 1e3 /
					    (double)g->hz));
	return o;
}

static void add_counters(json_t *r, const struct gen *g)
{
	struct totals t;

	totals(g, &t);
	report_set(r, "offered_pps", json_real(streams_offered_pps(&g->set)));
	report_set(r, "intended_packets", report_u64(t.intended));
	report_set(r, "tx_packets", report_u64(t.tx_packets));
	report_set(r, "tx_bytes", report_u64(t.tx_bytes));
	report_set(r, "skipped_stall_packets", report_u64(t.skipped_stall));
	report_set(r, "skipped_slow_packets", report_u64(t.skipped_slow));
	report_set(r, "rx_packets", report_u64(g->rx_packets));
	report_set(r, "rx_bytes", report_u64(g->rx_bytes));
	report_set(r, "dut_rx_full", report_u64(g->dut_rx_full));
	report_set(r, "rx_nombuf", report_u64(g->eth.rx_nombuf));
	report_set(r, "imissed", report_u64(g->eth.imissed));
	report_set(r, "tx_alloc_failures", report_u64(g->alloc_fail));
	report_set(r, "rx_stale", report_u64(g->rx_stale));
	report_set(r, "loop_stalls", loopstat_json(&g->stalls));
	report_set(r, "catchup_us", json_real(g->o.catchup_us));
	report_set(r, "catchup_packets", report_u64(t.catchup));
	report_set(r, "backlog_max_packets", report_u64(g->backlog_max));
	report_set(r, "end_flush", flush_json(g));
	report_set(r, "idle_sleep", idle_sleep_json(g));
	report_set(r, "memif_prefault", prefault_json(g));
}

static json_t *build_report(const struct gen *g)
{
	json_t *r = json_object();
	char ver[128];

	snprintf(ver, sizeof(ver), "%s / %s", rte_version(), GEN_VERSION);
	report_set(r, "generator", json_string("serpens-gen"));
	report_set(r, "version", json_string(ver));
	report_set(r, "tsc_hz", report_u64(g->hz));
	report_set(r, "tsc_hz_dpdk", report_u64(rte_get_tsc_hz()));
	/* the TSC at the schedule's start: serpensd stamps its events with the
	 * same machine TSC, so the two time lines align */
	report_set(r, "tsc_start", report_u64(g->tsc_start));
	report_set(r, "duration_s", json_real((double)(g->tsc_stop -
			g->tsc_start) / (double)g->hz));
	report_set(r, "elapsed_s", json_real((double)(g->tsc_done -
			g->tsc_start) / (double)g->hz));
	report_set(r, "interrupted", json_boolean(g->interrupted));
	report_set(r, "link_lost", json_boolean(g->link_lost));
	report_set(r, "mult", json_real(g->o.mult));
	report_set(r, "burst", json_integer(g->o.burst));
	add_counters(r, g);
	report_set(r, "streams", streams_json(g));
	report_set(r, "latency", latency_json(g));
	report_set(r, "flow_stats", flow_stats_json(g));
	report_set(r, "capture", capture_json(g));
	report_set(r, "latency_trace", trace_json(g));
	return r;
}

static void summary(const struct gen *g)
{
	double dur = (double)(g->tsc_stop - g->tsc_start) / (double)g->hz;
	uint64_t lost;
	struct totals t;
	unsigned int i;

	totals(g, &t);
	lost = t.tx_packets > g->rx_packets ? t.tx_packets - g->rx_packets : 0;
	printf("serpens-gen: offered %.0f pps, sent %lu of %lu in %.3f s "
	       "(%.0f pps; skipped %lu stalled, %lu slow), received %lu, "
	       "dut_rx_full %lu, lost %lu (%.4f%%)%s",
	       streams_offered_pps(&g->set), (unsigned long)t.tx_packets,
	       (unsigned long)t.intended, dur,
	       dur > 0 ? (double)t.tx_packets / dur : 0.0,
	       (unsigned long)t.skipped_stall, (unsigned long)t.skipped_slow,
	       (unsigned long)g->rx_packets, (unsigned long)g->dut_rx_full,
	       (unsigned long)lost,
	       t.tx_packets ? 100.0 * (double)lost / (double)t.tx_packets : 0.0,
	       g->link_lost ? " [LINK LOST]" :
	       g->interrupted ? " [interrupted]" : "");
	for (i = 0; i < g->set.lat.n; i++)
		printf("; pg %u p50 %.1f us p99 %.1f us",
		       g->set.lat.pg[i].pg_id,
		       hist_percentile(&g->set.lat.pg[i].hist, 0.5) / 1e3,
		       hist_percentile(&g->set.lat.pg[i].hist, 0.99) / 1e3);
	printf("\n");
	fflush(stdout);
}

void gen_report(struct gen *g)
{
	char err[512];
	json_t *r = build_report(g);

	if (report_write_atomic(g->o.report, r, err, sizeof(err)) != 0)
		rte_exit(EXIT_FAILURE, "cannot write the report: %s\n", err);
	json_decref(r);
	summary(g);
}
