/*
 * control_stats.c: what the control socket reports. `stats`: the port, the gateway, the data plane's
 * longest gaps, per SFC and per instance counters (crashes from instance_tick.c), the state region,
 * the stages of docs/stages.md and the chaining's own counters (delivery.h); `read_state` and
 * `dump_table`: merged values of the State Manager's tables, keys and values in hex. Separate because
 * it only reads: nothing here changes a deployment, an instance or a route.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>

#include "control_int.h"
#include "server_link.h"
#include "state_stats.h"

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
		if (in->state == INST_FREE)
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

/* The pool (--startup load, serpens): its size, how many wait, and their pids (docs/serpens-control.md). */
static json_t *pool_stats(void)
{
	json_t *pids = json_array();
	unsigned int p, waiting = 0;

	for (p = 0; p < D->pool_size; p++) {
		waiting += D->ctl->pool[p].state == POOL_WAITING;
		if (D->pool_pid[p] > 0)
			json_array_append_new(pids, json_integer(D->pool_pid[p]));
	}
	return json_pack("{s:I, s:I, s:o}", "size", (json_int_t)D->pool_size, "waiting", (json_int_t)waiting,
			 "pids", pids);
}

/* Every tenant's state region (tenant_region.h) into r[]: the bytes they use and the API errors they
 * counted, added up, the newest error message, and per tenant {region bytes used, backing, errors}. */
static unsigned int tenant_regions(struct sm_region **r, json_t **tenants, uint64_t *used, uint64_t *errors,
				   const char **last)
{
	uint64_t newest = 0;
	unsigned int n = 0;
	int i;

	*tenants = json_object();
	*used = *errors = 0;
	*last = "";
	for (i = 0; i < SP_MAX_TENANTS; i++) {
		struct sm_region *x = tr_region(i);

		if (!x)
			continue;
		r[n++] = x;
		*used += sm_region_used(x);
		*errors += sm_errors(x);
		if (sm_errors(x) && sm_last_error_ns(x) >= newest) {
			newest = sm_last_error_ns(x);
			*last = sm_last_error(x);
		}
		json_object_set_new(*tenants, D->ctl->regions[i].tenant,
				    json_pack("{s:I, s:s, s:I}", "used_bytes", (json_int_t)sm_region_used(x), "backing",
					      D->ctl->regions[i].backing, "api_errors", (json_int_t)sm_errors(x)));
	}
	return n;
}

/* On a testbed port 0 may be af_packet on the host's NIC (testbed/run_sfc.py): its full-ring drops are the
 * kernel's, not the PMD's imissed (server_link_ctl.c). memif and NIC PMDs: none to read. */
static uint64_t port0_ring_drops;

static uint64_t port0_af_packet_drops(void)
{
	struct rte_eth_dev_info info;

	if (rte_eth_dev_info_get(0, &info) != 0 || !info.driver_name ||
	    strcmp(info.driver_name, "net_af_packet") != 0)
		return 0;
	return af_packet_ring_drops((int)info.if_index);
}

json_t *stats(void)
{
	json_t *sfcs = json_array(), *insts = json_array(), *port, *rep, *o, *tenants;
	struct sm_region *regions[SP_MAX_TENANTS];
	uint64_t used, errors;
	const char *last;
	unsigned int nreg;
	struct rte_eth_stats st;
	int i;

	memset(&st, 0, sizeof(st));
	rte_eth_stats_get(0, &st);
	port0_ring_drops += port0_af_packet_drops();
	port = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "rx_packets", u64(D->port_rx), "rx_bursts",
			 u64(D->rx_bursts), "tx_packets", u64(D->port_tx), "tx_dropped", u64(D->port_tx_dropped),
			 "imissed", u64(st.imissed), "rx_nombuf", u64(st.rx_nombuf), "ring_drops",
			 u64(port0_ring_drops));
	for (i = 0; i < SP_MAX_SFCS; i++) {
		struct sp_sfc_desc *s = &D->ctl->sfcs[i];

		if (!s->used)
			continue;
		json_array_append_new(sfcs, json_pack("{s:i, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:s}", "sfc", i, "name",
						      s->name, "rx_packets", u64(s->rx), "tx_packets", u64(s->tx),
						      "no_instance", u64(s->no_instance), "ring_full",
						      u64(s->ring_full), "stranded", u64(s->stranded), "crashes",
						      (json_int_t)crashes[i], "last_crash", crash_msg[i]));
	}
	for (i = 0; i < SM_MAX_INSTANCES; i++) {
		struct sp_instance *in = &D->ctl->inst[i];
		static const char *names[] = {"free", "starting", "ready", "stopping", "dead"};

		if (in->state == INST_FREE)
			continue;
		o = json_pack(
			"{s:i, s:i, s:s, s:s, s:i, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:f, s:f}", "instance", i, "sfc",
			in->sfc, "sfc_name", D->ctl->sfcs[in->sfc].name, "state", names[in->state % 5], "pid",
			in->pid, "alive", in->state == INST_READY && kill(in->pid, 0) == 0, "pkts_in",
			u64(in->pkts_in), "pkts_out", u64(in->pkts_out), "nf_drops", u64(in->nf_drops), "batches",
			u64(in->batches), "wakeups", u64(in->wakeups), "sleeps", u64(in->sleeps), "startup_us",
			(double)D->startup_ns[i] / 1e3, "busy_us", (double)in->busy_cycles * 1e6 / (double)D->ctl->tsc_hz);
		json_object_set_new(o, "start", u64(in->slot_starts)); /* a restarted pooled slot keeps its pid */
		json_object_set_new(o, "ready_tsc", u64(in->ready_tsc)); /* when it said ready (machine TSC) */
		/* per-NF chaining: the NF it runs, and Table II's delivery time into it (docs/chaining.md) */
		json_object_set_new(o, "position", json_integer(in->position));
		json_object_set_new(o, "delivery_batches", u64(in->delivery_batches));
		json_object_set_new(o, "delivery_us", json_real(in->delivery_batches ?
				    (double)ns_of(in->delivery_cycles) / 1e3 / (double)in->delivery_batches : 0.0));
		json_object_update_new(o, state_stats_instance(in));
		json_array_append_new(insts, o);
	}
	nreg = tenant_regions(regions, &tenants, &used, &errors, &last);
	rep = json_pack("{s:b, s:o, s:{s:o}, s:{s:o, s:o, s:o, s:o, s:o, s:o}, s:o, s:o, s:{s:I, s:I, s:I, s:s, s:o}}",
			 "ok", 1, "port", port, "gateway", "miss", u64(D->gateway_miss), "dataplane", "handoffs",
			 u64(D->handoff.handoffs), "handoff_timeouts", u64(D->handoff.timeouts), "handoff_max_us",
			 u64(D->handoff.max_ns / 1000), "loop_max_us", u64(D->loop_max_ns / 1000), "timers_max_us",
			 u64(D->timers_max_ns / 1000), "tx_max_us", u64(D->tx_max_ns / 1000), "sfcs", sfcs,
			 "instances", insts, "state",
			 "region_bytes", (json_int_t)((size_t)D->state_mb << 20), "used_bytes", (json_int_t)used,
			 "api_errors", (json_int_t)errors, "last_error", last, "tenants", tenants);
	json_object_update_new(json_object_get(rep, "state"), state_stats_regions(regions, nreg, D->ctl->state_backend));
	json_object_set_new(rep, "stages", stages());
	json_object_set_new(rep, "tsc_hz", u64(D->ctl->tsc_hz)); /* what the stages' ns were converted with */
	/* the instance slots (--max-instances) and 1 + the highest in use; "instances" lists the used ones only */
	json_object_set_new(rep, "max_instances", json_integer(D->ctl->max_instances));
	json_object_set_new(rep, "slots_hi", json_integer(sp_slots_hi(D->ctl)));
	json_object_set_new(rep, "chaining", json_string(D->delivery->name));
	json_object_set_new(rep, "scaling", sc_stats());
	json_object_set_new(rep, "pool", pool_stats());
	json_object_set_new(rep, "link", server_link_stats()); /* null on one server */
	if (D->delivery->stats) {
		json_t *dv = D->delivery->stats(D); /* NULL: nothing to say (consolidated without --pin-flows) */

		if (dv)
			json_object_set_new(rep, "delivery", dv);
	}
	return rep;
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

json_t *read_state(json_t *req)
{
	const char *table = json_string_value(json_object_get(req, "table"));
	const char *hex = json_string_value(json_object_get(req, "key"));
	uint32_t flags, ks, vs;
	uint64_t count;
	uint8_t key[256], *val;
	json_t *r;
	int rc;

	struct sm_region *region = table ? tr_region_of_table(table) : NULL;

	if (!region || !hex || sm_table_info(region, table, &flags, &ks, &vs, &count) != 0)
		return fail("read_state: unknown table '%s' (tables are <nf>/<table>)", table ? table : "");
	if (hex_field_decode(hex, key, sizeof(key)) != (int)ks)
		return fail("read_state %s: key must be %u bytes of hex", table, ks);
	val = malloc(vs);
	if (!val)
		return fail("read_state: out of memory");
	sm_set_region(region); /* a remote store's lookup asks the current region which instances are active */
	rc = sm_table_lookup(region, table, key, ks, val, vs);
	sm_set_region(D->state);
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

json_t *dump_table(json_t *req)
{
	const char *table = json_string_value(json_object_get(req, "table"));
	struct dump_ctx c = {.entries = NULL};
	struct sm_region *region;
	uint32_t flags;
	uint64_t count;
	json_t *err;

	/* absent: every key */
	if ((err = int_field(req, "dump_table", "limit", 1, INT32_MAX, 0, &c.limit)))
		return err;
	region = table ? tr_region_of_table(table) : NULL;
	c.entries = json_array();
	if (!region || sm_table_info(region, table, &flags, &c.ks, &c.vs, &count) != 0) {
		json_decref(c.entries);
		return fail("dump_table: unknown table '%s'", table ? table : "");
	}
	sm_set_region(region); /* as in read_state */
	sm_table_foreach(region, table, dump_one, &c);
	sm_set_region(D->state);
	return json_pack("{s:b, s:o, s:I}", "ok", 1, "entries", c.entries, "count", (json_int_t)count);
}
