/*
 * test_fw.c: the FW module (argv[1]) — drops exactly the blacklisted flows (exact rules and wildcard
 * rules), passes the others untouched, marks suspicious flows with verdict 1 for the selector, and
 * enforces a whitelist.
 */
#include <errno.h>
#include <string.h>

#include "nftest.h"

static const struct sp_nf *fw;

/* Run the FW on a UDP flow to 48.0.0.1:12 from src:sport; the frame must come out unchanged. */
static int udp_verdict(int slot, const char *src, uint16_t sport)
{
	struct nft_frame f, orig;
	int v;

	nft_udp(&f, src, sport, "48.0.0.1", 12, 60, false);
	orig = f;
	v = nft_run(fw, slot, &f.pkt);
	CHECK(memcmp(f.data, orig.data, sizeof(f.data)) == 0 && f.pkt.len == orig.pkt.len);
	return v;
}

static int tcp_verdict(int slot, const char *src, const char *dst, uint16_t dport)
{
	struct nft_frame f;

	nft_tcp(&f, src, 40000, dst, dport, 74);
	return nft_run(fw, slot, &f.pkt);
}

static void test_fw_drops_exactly_blacklisted_flows_and_marks_suspicious(void)
{
	static const char *const args[] = {
		"blacklist", "17,16.0.0.5,*,48.0.0.1,12; 6,*,*,*,22 ;17,16.0.0.7,1025,48.0.0.1,12;",
		"suspicious", "17,16.0.0.9,1025,48.0.0.1,12;udp,16.0.1.0/24,*,*,*;17,16.0.0.5,1025,48.0.0.1,12",
		NULL};
	uint32_t flags, ksize, vsize;
	uint64_t count;
	char src[32];
	int slot, i, v;
	sp_selector_fn sel = nft_selector("suspicious");

	CHECK(nft_deploy(fw, "fw1", args) == 0);
	/* the three exact rules are hashed in the per-flow|read table (paper Table III); 16.0.0.5:1025 is
	 * also on a wildcard blacklist rule, which still wins */
	CHECK(sm_table_info(nft_region(), "fw1/fw_exact", &flags, &ksize, &vsize, &count) == 0);
	CHECK(flags == (SP_PER_FLOW | SP_READ) && ksize == sizeof(struct sp_flow) && count == 3);
	slot = nft_start(fw, "fw1", args);
	CHECK(slot >= 0);

	for (i = 1; i <= 20; i++) {
		snprintf(src, sizeof(src), "16.0.0.%d", i);
		v = udp_verdict(slot, src, 1025);
		if (i == 5 || i == 7)
			CHECK(v == SP_DROP);
		else if (i == 9)
			CHECK(v == 1);
		else
			CHECK(v == SP_PASS);
	}
	CHECK(udp_verdict(slot, "16.0.0.5", 3000) == SP_DROP);  /* wildcard source port */
	CHECK(udp_verdict(slot, "16.0.0.7", 1026) == SP_PASS);  /* exact rule: another port is another flow */
	CHECK(udp_verdict(slot, "16.0.0.9", 1026) == SP_PASS);
	CHECK(udp_verdict(slot, "16.0.1.77", 999) == 1);        /* prefix rule */
	CHECK(udp_verdict(slot, "16.0.2.77", 999) == SP_PASS);
	CHECK(udp_verdict(slot, "16.255.0.1", 1024) == SP_PASS); /* the latency stream */
	CHECK(tcp_verdict(slot, "16.0.0.1", "48.0.0.1", 22) == SP_DROP);
	CHECK(tcp_verdict(slot, "10.1.2.3", "192.0.2.1", 22) == SP_DROP);
	CHECK(tcp_verdict(slot, "16.0.0.1", "48.0.0.1", 80) == SP_PASS);
	{
		struct nft_frame f;

		nft_udp(&f, "16.0.0.1", 1025, "48.0.0.1", 22, 60, false); /* UDP to 22: the TCP rule misses */
		CHECK(nft_run(fw, slot, &f.pkt) == SP_PASS);
		nft_arp(&f); /* no whitelist: not IPv4 passes */
		CHECK(nft_run(fw, slot, &f.pkt) == SP_PASS);
	}

	CHECK(sel != NULL);
	if (sel != NULL)
		CHECK(sel(1) == 0 && sel(SP_PASS) == 1);
	nft_stop(slot);
}

static void test_fw_whitelist_passes_only_listed_flows(void)
{
	static const char *const args[] = {"whitelist", "17,16.0.0.1,1025,48.0.0.1,12;17,16.0.2.0/24,*,*,12",
					   "blacklist", "17,16.0.2.7,*,*,*", NULL};
	static const char *const allow[] = {"whitelist", "17,16.0.0.1,1025,48.0.0.1,12", "mode", "allow",
					    "blacklist", "17,16.0.0.2,*,*,*", NULL};
	struct nft_frame f;
	int slot;

	CHECK(nft_deploy(fw, "fw2", args) == 0);
	slot = nft_start(fw, "fw2", args);
	CHECK(slot >= 0);
	CHECK(udp_verdict(slot, "16.0.0.1", 1025) == SP_PASS);
	CHECK(udp_verdict(slot, "16.0.0.1", 1026) == SP_DROP);
	CHECK(udp_verdict(slot, "16.0.0.2", 1025) == SP_DROP);
	CHECK(udp_verdict(slot, "16.0.2.3", 7) == SP_PASS);
	CHECK(udp_verdict(slot, "16.0.2.7", 7) == SP_DROP); /* blacklist beats whitelist */
	nft_arp(&f);
	CHECK(nft_run(fw, slot, &f.pkt) == SP_DROP); /* default deny covers non-IPv4 */
	nft_stop(slot);

	CHECK(nft_deploy(fw, "fw3", allow) == 0);
	slot = nft_start(fw, "fw3", allow);
	CHECK(slot >= 0);
	CHECK(udp_verdict(slot, "16.0.0.1", 1025) == SP_PASS);
	CHECK(udp_verdict(slot, "16.0.0.3", 1025) == SP_PASS);
	CHECK(udp_verdict(slot, "16.0.0.2", 1025) == SP_DROP);
	nft_stop(slot);
}

static void test_fw_without_rules_passes_everything(void)
{
	static const char *const none[] = {NULL};
	int slot;

	CHECK(nft_deploy(fw, "fw4", none) == 0);
	slot = nft_start(fw, "fw4", none);
	CHECK(slot >= 0);
	CHECK(udp_verdict(slot, "16.0.0.1", 1025) == SP_PASS);
	CHECK(tcp_verdict(slot, "16.0.0.1", "48.0.0.1", 22) == SP_PASS);
	nft_stop(slot);
}

static void test_fw_refuses_bad_rules(void)
{
	static const char *const a[] = {"blacklist", "17,16.0.0.5,*,48.0.0.1", NULL};
	static const char *const b[] = {"blacklist", "17,16.0.0.500,*,48.0.0.1,12", NULL};
	static const char *const c[] = {"whitelist", "17,*,70000,*,*", NULL};
	static const char *const d[] = {"suspicious", "17,*,*,*,*,9", NULL};
	static const char *const e[] = {"mode", "maybe", NULL};

	CHECK(nft_deploy(fw, "bad1", a) == -EINVAL);
	CHECK(nft_deploy(fw, "bad2", b) == -EINVAL);
	CHECK(nft_deploy(fw, "bad3", c) == -EINVAL);
	CHECK(nft_deploy(fw, "bad4", d) == -EINVAL);
	CHECK(nft_deploy(fw, "bad5", e) == -EINVAL);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s path/to/fw.so\n", argv[0]);
		return 2;
	}
	fw = nft_load(argv[1]);
	CHECK(strcmp(fw->name, "fw") == 0);
	test_fw_drops_exactly_blacklisted_flows_and_marks_suspicious();
	test_fw_whitelist_passes_only_listed_flows();
	test_fw_without_rules_passes_everything();
	test_fw_refuses_bad_rules();
	return nft_finish("test_fw");
}
