/*
 * gen_report.c: the JSON report of one serpens-gen trial and its one-line
 * human summary (schema in docs/generator.md).
 */
#include <stdio.h>

#include <rte_debug.h>
#include <rte_version.h>

#include "gen.h"
#include "report.h"

static json_t *stream_json(const struct gen_stream *s)
{
	json_t *o = json_object();

	report_set(o, "index", json_integer(s->index));
	report_set(o, "pps", json_real(s->pps));
	report_set(o, "packet_len", json_integer(s->len));
	report_set(o, "tx_packets", report_u64(s->tx_packets));
	report_set(o, "tx_bytes", report_u64(s->tx_bytes));
	report_set(o, "latency_pg_id",
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

static uint64_t pg_tx(const struct gen *g, uint16_t pg_id)
{
	unsigned int i;

	for (i = 0; i < g->set.n; i++)
		if (g->set.s[i].pg_id == (int)pg_id)
			return g->set.s[i].tx_packets;
	return 0;
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

static json_t *latency_json(const struct gen *g)
{
	json_t *o = json_object();
	char key[16];
	unsigned int i;

	for (i = 0; i < g->set.lat.n; i++) {
		snprintf(key, sizeof(key), "%u", g->set.lat.pg[i].pg_id);
		report_set(o, key, pg_json(g, &g->set.lat.pg[i]));
	}
	return o;
}

static void totals(const struct gen *g, uint64_t *pkts, uint64_t *bytes)
{
	unsigned int i;

	*pkts = 0;
	*bytes = 0;
	for (i = 0; i < g->set.n; i++) {
		*pkts += g->set.s[i].tx_packets;
		*bytes += g->set.s[i].tx_bytes;
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

static void add_counters(json_t *r, const struct gen *g)
{
	uint64_t txp, txb;

	totals(g, &txp, &txb);
	report_set(r, "offered_pps", json_real(streams_offered_pps(&g->set)));
	report_set(r, "tx_packets", report_u64(txp));
	report_set(r, "tx_bytes", report_u64(txb));
	report_set(r, "rx_packets", report_u64(g->rx_packets));
	report_set(r, "rx_bytes", report_u64(g->rx_bytes));
	report_set(r, "dut_rx_full", report_u64(g->dut_rx_full));
	report_set(r, "rx_nombuf", report_u64(g->eth.rx_nombuf));
	report_set(r, "imissed", report_u64(g->eth.imissed));
	report_set(r, "tx_alloc_failures", report_u64(g->alloc_fail));
	report_set(r, "rx_stale", report_u64(g->rx_stale));
	report_set(r, "loop_stalls", loopstat_json(&g->stalls));
}

static json_t *build_report(const struct gen *g)
{
	json_t *r = json_object();
	char ver[128];

	snprintf(ver, sizeof(ver), "%s / %s", rte_version(), GEN_VERSION);
	report_set(r, "generator", json_string("serpens-gen"));
	report_set(r, "version", json_string(ver));
	report_set(r, "tsc_hz", report_u64(g->hz));
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
	report_set(r, "capture", capture_json(g));
	return r;
}

static void summary(const struct gen *g)
{
	uint64_t txp, txb, lost;
	double dur = (double)(g->tsc_stop - g->tsc_start) / (double)g->hz;
	unsigned int i;

	totals(g, &txp, &txb);
	lost = txp > g->rx_packets ? txp - g->rx_packets : 0;
	printf("serpens-gen: offered %.0f pps, sent %lu in %.3f s (%.0f pps), "
	       "received %lu, dut_rx_full %lu, lost %lu (%.4f%%)%s",
	       streams_offered_pps(&g->set), (unsigned long)txp, dur,
	       dur > 0 ? (double)txp / dur : 0.0,
	       (unsigned long)g->rx_packets, (unsigned long)g->dut_rx_full,
	       (unsigned long)lost, txp ? 100.0 * (double)lost / (double)txp : 0.0,
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
