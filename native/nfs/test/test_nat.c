/*
 * test_nat.c: the NAT module (argv[1]) on a State Manager region in ordinary memory — source rewrite
 * with checksums that verify from scratch, the reverse direction translated back, one port per flow,
 * trigger() pulling free ports from another instance, drop when the pool is truly exhausted.
 */
#include <arpa/inet.h>
#include <string.h>

#include "nftest.h"

#define EXT "198.18.1.1"

static const struct sp_nf *nat;

/* Everything but the rewritten address and port (source, or destination if dst) and the two checksums
 * came out as it went in: other header fields, the payload, the latency signature. */
static bool only_translated(const struct nft_frame *now, const struct nft_frame *before, bool dst)
{
	struct nft_frame want = *before;
	uint32_t ip_off = 14 + (dst ? 16 : 12), port_off = 34 + (dst ? 2 : 0);
	uint32_t csum_off = 34 + (now->data[14 + 9] == SP_PROTO_TCP ? 16 : 6);

	memcpy(want.data + ip_off, now->data + ip_off, 4);
	memcpy(want.data + port_off, now->data + port_off, 2);
	memcpy(want.data + 24, now->data + 24, 2);
	memcpy(want.data + csum_off, now->data + csum_off, 2);
	return now->pkt.len == before->pkt.len && memcmp(want.data, now->data, sizeof(want.data)) == 0;
}

static void test_nat_rewrites_source_and_translates_replies_back(void)
{
	static const char *const args[] = {"external_ip", EXT, "ports", "2000-2999", NULL};
	struct nft_frame f, orig, reply;
	int slot;

	CHECK(nft_deploy(nat, "nat1", args) == 0);
	slot = nft_start(nat, "nat1", args);
	CHECK(slot >= 0);

	/* UDP with a real checksum */
	nft_udp(&f, "16.0.0.1", 1025, "48.0.0.1", 12, 60, true);
	orig = f;
	CHECK(nft_run(nat, slot, &f.pkt) == SP_PASS);
	CHECK(nft_src_ip(&f) == nft_ip(EXT));
	CHECK(nft_sport(&f) == 2000); /* the first item of the pool */
	CHECK(nft_dst_ip(&f) == nft_ip("48.0.0.1") && nft_dport(&f) == 12);
	CHECK(nft_l4_csum(&f) != 0);
	CHECK(nft_checksums_ok(&f));
	CHECK(only_translated(&f, &orig, false));

	/* the same flow again keeps its mapping */
	nft_udp(&f, "16.0.0.1", 1025, "48.0.0.1", 12, 128, true);
	CHECK(nft_run(nat, slot, &f.pkt) == SP_PASS);
	CHECK(nft_src_ip(&f) == nft_ip(EXT) && nft_sport(&f) == 2000 && nft_checksums_ok(&f));

	/* UDP checksum 0 ("none", what the harness's load sends) stays 0; the IP checksum is fixed */
	nft_udp(&f, "16.0.0.2", 1025, "48.0.0.1", 12, 60, false);
	orig = f;
	CHECK(nft_run(nat, slot, &f.pkt) == SP_PASS);
	CHECK(nft_sport(&f) == 2001 && nft_l4_csum(&f) == 0 && nft_checksums_ok(&f));
	CHECK(only_translated(&f, &orig, false));

	/* TCP */
	nft_tcp(&f, "16.0.0.3", 40000, "48.0.0.1", 80, 74);
	orig = f;
	CHECK(nft_run(nat, slot, &f.pkt) == SP_PASS);
	CHECK(nft_src_ip(&f) == nft_ip(EXT) && nft_sport(&f) == 2002 && nft_checksums_ok(&f));
	CHECK(only_translated(&f, &orig, false));

	/* replies to the external address go back to the inside host, checksums still right */
	nft_udp(&reply, "48.0.0.1", 12, EXT, 2000, 60, true);
	orig = reply;
	CHECK(nft_run(nat, slot, &reply.pkt) == SP_PASS);
	CHECK(only_translated(&reply, &orig, true));
	CHECK(nft_dst_ip(&reply) == nft_ip("16.0.0.1") && nft_dport(&reply) == 1025);
	CHECK(nft_src_ip(&reply) == nft_ip("48.0.0.1") && nft_sport(&reply) == 12);
	CHECK(nft_checksums_ok(&reply));
	nft_tcp(&reply, "48.0.0.1", 80, EXT, 2002, 74);
	orig = reply;
	CHECK(nft_run(nat, slot, &reply.pkt) == SP_PASS);
	CHECK(only_translated(&reply, &orig, true));
	CHECK(nft_dst_ip(&reply) == nft_ip("16.0.0.3") && nft_dport(&reply) == 40000);
	CHECK(nft_checksums_ok(&reply));

	/* unknown inbound: a port never handed out, a mapped port from another remote end */
	nft_udp(&reply, "48.0.0.1", 12, EXT, 2500, 60, true);
	CHECK(nft_run(nat, slot, &reply.pkt) == SP_DROP);
	nft_udp(&reply, "48.0.0.9", 12, EXT, 2000, 60, true);
	CHECK(nft_run(nat, slot, &reply.pkt) == SP_DROP);

	/* a reply arriving at another instance finds the per-flow state in shared memory */
	{
		int other = nft_start(nat, "nat1", args);

		CHECK(other >= 0);
		nft_udp(&reply, "48.0.0.1", 12, EXT, 2001, 60, false);
		CHECK(nft_run(nat, other, &reply.pkt) == SP_PASS);
		CHECK(nft_dst_ip(&reply) == nft_ip("16.0.0.2") && nft_dport(&reply) == 1025);
		CHECK(nft_l4_csum(&reply) == 0 && nft_checksums_ok(&reply));
		nft_stop(other);
	}

	/* not IPv4: passes untouched; IPv4 that cannot be translated by port: dropped */
	nft_arp(&f);
	orig = f;
	CHECK(nft_run(nat, slot, &f.pkt) == SP_PASS && memcmp(f.data, orig.data, 60) == 0);
	nft_udp(&f, "16.0.0.4", 1, "48.0.0.1", 1, 60, false);
	f.data[14 + 9] = 1; /* ICMP */
	CHECK(nft_run(nat, slot, &f.pkt) == SP_DROP);
	nft_udp(&f, "16.0.0.4", 1025, "48.0.0.1", 12, 60, false);
	f.data[14 + 6] = 0x20; /* more fragments */
	CHECK(nft_run(nat, slot, &f.pkt) == SP_DROP);
	nft_stop(slot);
}

static void test_nat_never_gives_two_flows_the_same_port(void)
{
	static const char *const args[] = {"external_ip", EXT, "ports", "10000-10999", NULL};
	static uint8_t used[1000];
	struct nft_frame f;
	char src[32];
	int slot, i, distinct = 0;

	CHECK(nft_deploy(nat, "nat2", args) == 0);
	slot = nft_start(nat, "nat2", args);
	CHECK(slot >= 0);
	for (i = 0; i < 1000; i++) {
		snprintf(src, sizeof(src), "16.0.%d.%d", i / 250, 1 + i % 250);
		nft_udp(&f, src, (uint16_t)(1025 + i % 3), "48.0.0.1", 12, 60, false);
		CHECK(nft_run(nat, slot, &f.pkt) == SP_PASS);
		CHECK(nft_sport(&f) >= 10000 && nft_sport(&f) <= 10999);
		if (nft_sport(&f) >= 10000 && nft_sport(&f) <= 10999 && !used[nft_sport(&f) - 10000]++)
			distinct++;
	}
	CHECK(distinct == 1000);
	nft_udp(&f, "16.0.9.9", 1025, "48.0.0.1", 12, 60, false); /* the 1001st flow: no port left */
	CHECK(nft_run(nat, slot, &f.pkt) == SP_DROP);
	nft_stop(slot);
}

static void test_nat_spreads_flows_over_several_external_addresses(void)
{
	static const char *const args[] = {"external_ip", "198.18.1.1,198.18.1.2", "ports", "5000-5001",
					   "cluster_id", "3", NULL};
	struct nft_frame f;
	uint32_t pairs[4];
	int slot, i, j;

	CHECK(nft_deploy(nat, "nat3", args) == 0);
	slot = nft_start(nat, "nat3", args);
	CHECK(slot >= 0);
	for (i = 0; i < 4; i++) {
		nft_udp(&f, "16.0.0.1", (uint16_t)(1025 + i), "48.0.0.1", 12, 60, true);
		CHECK(nft_run(nat, slot, &f.pkt) == SP_PASS && nft_checksums_ok(&f));
		pairs[i] = (ntohl(nft_src_ip(&f)) & 0xff) << 16 | nft_sport(&f);
		for (j = 0; j < i; j++)
			CHECK(pairs[j] != pairs[i]);
	}
	CHECK(pairs[0] == (1u << 16 | 5000) && pairs[3] == (2u << 16 | 5001));
	nft_udp(&f, "16.0.0.1", 2000, "48.0.0.1", 12, 60, true);
	CHECK(nft_run(nat, slot, &f.pkt) == SP_DROP);
	nft_udp(&f, "48.0.0.1", 12, "198.18.1.2", 5001, 60, true);
	CHECK(nft_run(nat, slot, &f.pkt) == SP_PASS);
	CHECK(nft_dst_ip(&f) == nft_ip("16.0.0.1") && nft_dport(&f) == 1028 && nft_checksums_ok(&f));
	nft_stop(slot);
}

/* Two instances split a 4-port pool 2/2. Instance a opens flows until it drops: past its own 2 ports,
 * trigger() must pull b's free ports over. Then nothing is left anywhere: both drop new flows, while
 * mapped flows keep passing. */
static void test_nat_triggers_redistribution_then_drops_when_exhausted(void)
{
	static const char *const args[] = {"external_ip", EXT, "ports", "3000-3003", NULL};
	struct nft_frame f;
	uint32_t got[8];
	int a, b, i, j, n = 0, on_a = 0;

	CHECK(nft_deploy(nat, "nat4", args) == 0);
	a = nft_start(nat, "nat4", args);
	b = nft_start(nat, "nat4", args);
	CHECK(a >= 0 && b >= 0);
	for (i = 0; i < 8; i++) {
		nft_udp(&f, "16.0.0.1", (uint16_t)(1025 + i), "48.0.0.1", 12, 60, false);
		if (nft_run(nat, a, &f.pkt) != SP_PASS)
			break;
		got[n++] = nft_sport(&f);
		on_a++;
	}
	CHECK(on_a >= 3); /* more than its own share of 2: trigger() moved ports from b */
	for (i = 0; i < 8; i++) {
		nft_udp(&f, "16.0.0.2", (uint16_t)(1025 + i), "48.0.0.1", 12, 60, false);
		if (nft_run(nat, b, &f.pkt) != SP_PASS)
			break;
		got[n++] = nft_sport(&f);
	}
	CHECK(n == 4);
	for (i = 0; i < n; i++) {
		CHECK(got[i] >= 3000 && got[i] <= 3003);
		for (j = 0; j < i; j++)
			CHECK(got[i] != got[j]);
	}
	nft_udp(&f, "16.0.0.3", 1025, "48.0.0.1", 12, 60, false);
	CHECK(nft_run(nat, a, &f.pkt) == SP_DROP);
	nft_udp(&f, "16.0.0.3", 1026, "48.0.0.1", 12, 60, false);
	CHECK(nft_run(nat, b, &f.pkt) == SP_DROP);
	nft_udp(&f, "16.0.0.1", 1025, "48.0.0.1", 12, 60, false); /* mapped before exhaustion */
	CHECK(nft_run(nat, a, &f.pkt) == SP_PASS && nft_sport(&f) == got[0]);
	nft_stop(b);
	nft_stop(a);
}

static uint32_t next_rand(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 8;
}

/* Random flows, lengths and payloads, UDP with a checksum and TCP: every translated packet and its
 * translated reply verify from scratch (covers carries and the 0/0xffff corner of the incremental
 * update). */
static void test_nat_checksums_stay_correct_for_random_packets(void)
{
	static const char *const args[] = {"external_ip", "203.0.113.200", "ports", "40000-42047", NULL};
	struct nft_frame f, orig, reply;
	uint32_t rnd = 12345, i, j, len, hl, a, b;
	uint16_t sport, port;
	char src[32];
	int slot, tcp;

	CHECK(nft_deploy(nat, "nat5", args) == 0);
	slot = nft_start(nat, "nat5", args);
	CHECK(slot >= 0);
	for (i = 0; i < 2000; i++) {
		a = 1 + next_rand(&rnd) % 200;
		b = next_rand(&rnd) % 256;
		snprintf(src, sizeof(src), "%u.%u.%u.%u", a, b, next_rand(&rnd) % 256, 1 + next_rand(&rnd) % 254);
		tcp = next_rand(&rnd) % 2;
		hl = tcp ? 20 : 8;
		len = 74 + next_rand(&rnd) % 120;
		sport = (uint16_t)(1 + next_rand(&rnd) % 65535);
		if (tcp)
			nft_tcp(&f, src, sport, "48.0.0.1", 80, len);
		else
			nft_udp(&f, src, sport, "48.0.0.1", 12, len, true);
		for (j = 34 + hl; j < len; j++)
			f.data[j] = (uint8_t)next_rand(&rnd);
		nft_set_checksums(&f, true);
		orig = f;
		CHECK(nft_run(nat, slot, &f.pkt) == SP_PASS);
		CHECK(nft_src_ip(&f) == nft_ip("203.0.113.200") && nft_checksums_ok(&f));
		CHECK(only_translated(&f, &orig, false));

		port = nft_sport(&f);
		if (tcp)
			nft_tcp(&reply, "48.0.0.1", 80, "203.0.113.200", port, len);
		else
			nft_udp(&reply, "48.0.0.1", 12, "203.0.113.200", port, len, true);
		memcpy(reply.data + 34 + hl, orig.data + 34 + hl, len - 34 - hl);
		nft_set_checksums(&reply, true);
		CHECK(nft_run(nat, slot, &reply.pkt) == SP_PASS);
		CHECK(nft_dst_ip(&reply) == nft_src_ip(&orig) && nft_dport(&reply) == sport);
		CHECK(nft_checksums_ok(&reply));
	}
	nft_stop(slot);
}

/* A UDP packet whose translated checksum computes to 0 must carry 0xffff (RFC 768), never 0 ("none"). */
static void test_nat_udp_checksum_that_computes_to_zero_is_sent_as_ffff(void)
{
	static const char *const args[] = {"external_ip", EXT, "ports", "7000-7000", NULL};
	struct nft_frame f, out;
	uint16_t c;
	int slot;

	CHECK(nft_deploy(nat, "nat6", args) == 0);
	slot = nft_start(nat, "nat6", args);
	CHECK(slot >= 0);
	/* choose the payload word that makes the translated packet's one's complement sum 0xffff */
	nft_udp(&out, EXT, 7000, "48.0.0.1", 12, 60, true);
	out.data[42] = out.data[43] = 0;
	nft_set_checksums(&out, true);
	c = nft_l4_csum(&out);
	out.data[42] = (uint8_t)(c >> 8);
	out.data[43] = (uint8_t)c;
	nft_set_checksums(&out, true);
	CHECK(nft_l4_csum(&out) == 0xffff);
	/* the same payload from the inside host */
	nft_udp(&f, "16.0.0.1", 1025, "48.0.0.1", 12, 60, true);
	f.data[42] = out.data[42];
	f.data[43] = out.data[43];
	nft_set_checksums(&f, true);
	CHECK(nft_l4_csum(&f) != 0xffff);
	CHECK(nft_run(nat, slot, &f.pkt) == SP_PASS);
	CHECK(nft_sport(&f) == 7000 && nft_l4_csum(&f) == 0xffff && nft_checksums_ok(&f));
	nft_stop(slot);
}

static void test_nat_refuses_bad_arguments(void)
{
	static const char *const no_ip[] = {"ports", "1-2", NULL};
	static const char *const bad_ports[] = {"external_ip", EXT, "ports", "9-3", NULL};
	static const char *const bad_ip[] = {"external_ip", "198.18.1", NULL};

	CHECK(nft_deploy(nat, "bad1", no_ip) != 0);
	CHECK(nft_deploy(nat, "bad2", bad_ports) != 0);
	CHECK(nft_deploy(nat, "bad3", bad_ip) != 0);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s path/to/nat.so\n", argv[0]);
		return 2;
	}
	nat = nft_load(argv[1]);
	CHECK(strcmp(nat->name, "nat") == 0);
	test_nat_rewrites_source_and_translates_replies_back();
	test_nat_never_gives_two_flows_the_same_port();
	test_nat_spreads_flows_over_several_external_addresses();
	test_nat_triggers_redistribution_then_drops_when_exhausted();
	test_nat_checksums_stay_correct_for_random_packets();
	test_nat_udp_checksum_that_computes_to_zero_is_sent_as_ffff();
	test_nat_refuses_bad_arguments();
	return nft_finish("test_nat");
}
