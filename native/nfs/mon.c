/*
 * mon.c: the traffic Monitor of the paper's evaluation ("maintaining exhaustive flow and host
 * statistics", Section V; Table III: connection statistics per-flow/W, host statistics global/W).
 *
 *   mon_flows  per-flow|write, key struct sp_flow -> {packets, bytes} (u64 each);
 *   mon_hosts  global|write|eventual, key the source IPv4 address (u32, network byte order) ->
 *              struct sp_counters {packets, bytes}: every instance counts into its own replica and the
 *              default update() adds the replicas into the merged value.
 *
 * Arguments (all optional):
 *   flows, hosts        table capacities (default 65536 each: the harness's load uses at most 65536
 *                       source addresses, one flow each up to that many flows);
 *   update_interval_ms  how often the State Manager merges the host replicas (default 1000, 0: never,
 *                       i.e. only on scale-in/out). init calls timer(hosts, NULL, interval): a NULL key
 *                       means "every key of the table", since the hosts are not known at deployment.
 *
 * Bytes are frame bytes without the FCS (pkt->len). Every packet passes; frames that are not IPv4 are
 * not counted. When a table is full, the packet is not counted in it (logged once per process).
 */
#include <errno.h>
#include <stdlib.h>

#include "serpens/nf.h"

#define MON_DEFAULT_CAPACITY 65536
#define MON_DEFAULT_INTERVAL_MS 1000

static sp_table *flows_table, *hosts_table;
static int full_logged;

static int mon_init(void)
{
	/* Both tables hold {packets, bytes} as two u64s (the hosts' as the struct sp_counters that the
	 * default eventual hooks add up). */
	struct sp_table_opts opts = {.key_size = sizeof(struct sp_flow), .value_size = 2 * sizeof(uint64_t)};
	uint32_t n_flows, n_hosts, interval_ms;
	int rc;

	if (sp_arg_u32("flows", MON_DEFAULT_CAPACITY, 1, UINT32_MAX, &n_flows) != 0 ||
	    sp_arg_u32("hosts", MON_DEFAULT_CAPACITY, 1, UINT32_MAX, &n_hosts) != 0 ||
	    sp_arg_u32("update_interval_ms", MON_DEFAULT_INTERVAL_MS, 0, UINT32_MAX, &interval_ms) != 0)
		return -EINVAL;
	opts.capacity = n_flows;
	flows_table = sp_create_table("mon_flows", SP_PER_FLOW | SP_WRITE, &opts);
	opts.key_size = sizeof(uint32_t);
	opts.capacity = n_hosts;
	hosts_table = sp_create_table("mon_hosts", SP_GLOBAL | SP_WRITE | SP_EVENTUAL, &opts);
	if (flows_table == NULL || hosts_table == NULL)
		return -ENOMEM;
	if (interval_ms > 0) {
		rc = sp_timer(hosts_table, NULL, (uint64_t)interval_ms * 1000);
		if (rc != 0) {
			sp_log("timer(mon_hosts): %d", rc);
			return rc;
		}
	}
	return 0;
}

/* Add one packet of len bytes to key's {packets, bytes}, in place (nf.h: values may be updated through
 * the pointer get_state returns); a new key is put. */
static void count(sp_table *t, const void *key, uint32_t len)
{
	uint64_t *c = sp_get_state(t, key);
	uint64_t fresh[2] = {1, len};

	if (c != NULL) {
		c[0] += 1;
		c[1] += len;
	} else if (sp_put_state(t, key, fresh) != 0 && !full_logged) {
		full_logged = 1;
		sp_log("a statistics table is full: packets go uncounted (raise 'flows'/'hosts')");
	}
}

static int mon_handler(struct sp_pkt *pkt)
{
	struct sp_flow f;

	if (sp_flow_of(pkt, &f) != 0)
		return SP_PASS;
	count(flows_table, &f, pkt->len);
	count(hosts_table, &f.src_ip, pkt->len);
	return SP_PASS;
}

SP_NF("mon", mon_init, mon_handler);
SP_NF_ARGS("flows", "hosts", "update_interval_ms");
