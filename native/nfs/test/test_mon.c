/*
 * test_mon.c: the MON module (argv[1]) — per-flow and per-host packet/byte counts equal what was fed,
 * with a host's packets split over two instances (eventual replicas); the whole-table timer folds every
 * host's replicas into the merged value without changing the totals.
 */
#include <string.h>

#include "nftest.h"

static const struct sp_nf *mon;

struct expect {
	const char *src;
	uint16_t sport;
	int slot_index; /* which of the two instances sees this flow */
	uint32_t packets;
	uint32_t len;
};

static void test_mon_counts_flows_and_hosts_across_instances(void)
{
	static const char *const args[] = {"flows", "1024", "hosts", "256", "update_interval_ms", "10", NULL};
	/* host 16.0.0.1 has a flow on each instance, so its counters live in two replicas */
	static const struct expect flows[] = {
		{"16.0.0.1", 1025, 0, 7, 60},  {"16.0.0.1", 1026, 1, 5, 100}, {"16.0.0.2", 1025, 0, 3, 64},
		{"16.0.0.3", 1025, 1, 11, 60}, {"16.255.0.1", 1024, 0, 4, 60},
	};
	static const struct {
		const char *ip;
		uint64_t packets, bytes;
	} hosts[] = {{"16.0.0.1", 12, 7 * 60 + 5 * 100}, {"16.0.0.2", 3, 3 * 64}, {"16.0.0.3", 11, 11 * 60},
		     {"16.255.0.1", 4, 4 * 60}};
	struct sm_region *r = nft_region();
	struct nft_frame f, orig;
	struct sp_flow key;
	uint64_t got[2];
	uint32_t ip;
	int slots[2], round, k;
	unsigned int i;

	CHECK(nft_deploy(mon, "mon1", args) == 0);
	slots[0] = nft_start(mon, "mon1", args);
	slots[1] = nft_start(mon, "mon1", args);
	CHECK(slots[0] >= 0 && slots[1] >= 0);

	for (round = 0; round < 11; round++) /* interleave the flows, as a generator would */
		for (i = 0; i < sizeof(flows) / sizeof(flows[0]); i++) {
			if ((uint32_t)round >= flows[i].packets)
				continue;
			nft_udp(&f, flows[i].src, flows[i].sport, "48.0.0.1", 12, flows[i].len, false);
			orig = f;
			CHECK(nft_run(mon, slots[flows[i].slot_index], &f.pkt) == SP_PASS);
			CHECK(memcmp(f.data, orig.data, sizeof(f.data)) == 0);
		}
	nft_arp(&f); /* passes, not counted */
	CHECK(nft_run(mon, slots[0], &f.pkt) == SP_PASS);

	for (i = 0; i < sizeof(flows) / sizeof(flows[0]); i++) {
		nft_udp(&f, flows[i].src, flows[i].sport, "48.0.0.1", 12, flows[i].len, false);
		CHECK(sp_flow_of(&f.pkt, &key) == 0);
		CHECK(sm_table_lookup(r, "mon1/mon_flows", &key, sizeof(key), got, sizeof(got)) == 0);
		CHECK(got[0] == flows[i].packets && got[1] == (uint64_t)flows[i].packets * flows[i].len);
	}
	for (k = 0; k < 2; k++) { /* before the timer (replicas), then after it (merged into the base) */
		for (i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
			ip = nft_ip(hosts[i].ip);
			CHECK(sm_table_lookup(r, "mon1/mon_hosts", &ip, sizeof(ip), got, sizeof(got)) == 0);
			CHECK(got[0] == hosts[i].packets && got[1] == hosts[i].bytes);
		}
		{
			uint32_t flags, ksize, vsize;
			uint64_t count;

			CHECK(sm_table_info(r, "mon1/mon_hosts", &flags, &ksize, &vsize, &count) == 0);
			CHECK(flags == (SP_GLOBAL | SP_WRITE | SP_EVENTUAL) && count == 4);
			CHECK(sm_table_info(r, "mon1/mon_flows", &flags, &ksize, &vsize, &count) == 0);
			CHECK(flags == (SP_PER_FLOW | SP_WRITE) && count == 5);
		}
		if (k == 0)
			sm_run_timers(r, 1000000); /* the timer MON set in init, on every key */
	}
	/* the timer folded every host's replicas: each instance's replica is zero and the base alone (what
	 * the State Manager sees) holds the totals. A handle on the table, as a runtime would attach: */
	{
		struct sp_table_opts o = {.key_size = 4, .value_size = 16, .capacity = 256};
		sp_table *t;
		const uint64_t *v;

		sm_set_nf("mon1", NULL);
		t = sp_create_table("mon_hosts", SP_GLOBAL | SP_WRITE | SP_EVENTUAL, &o);
		CHECK(t != NULL);
		for (i = 0; t != NULL && i < sizeof(hosts) / sizeof(hosts[0]); i++) {
			ip = nft_ip(hosts[i].ip);
			for (k = 0; k < 2; k++) {
				sm_set_instance(slots[k]);
				v = sp_get_state(t, &ip);
				CHECK(v != NULL && v[0] == 0 && v[1] == 0);
			}
			sm_set_instance(-1);
			v = sp_get_state(t, &ip);
			CHECK(v != NULL && v[0] == hosts[i].packets && v[1] == hosts[i].bytes);
		}
	}
	nft_stop(slots[1]);
	nft_stop(slots[0]);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s path/to/mon.so\n", argv[0]);
		return 2;
	}
	mon = nft_load(argv[1]);
	CHECK(strcmp(mon->name, "mon") == 0);
	test_mon_counts_flows_and_hosts_across_instances();
	return nft_finish("test_mon");
}
