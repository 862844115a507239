/*
 * test_synthetic.c: the synthetic NF (argv[1]) — a per-flow|write value of the configured size, read
 * and written on every packet, the same state seen by whichever instance gets the flow next.
 */
#include <errno.h>
#include <string.h>

#include "nftest.h"

static const struct sp_nf *syn;

/* Every u64 word of the flow's state equals want. */
static void check_state(const char *table, const char *src, uint16_t sport, uint32_t size, uint64_t want)
{
	uint64_t state[1024];
	struct nft_frame f;
	struct sp_flow key;
	uint32_t i;

	nft_udp(&f, src, sport, "48.0.0.1", 12, 60, false);
	CHECK(sp_flow_of(&f.pkt, &key) == 0);
	memset(state, 0xee, sizeof(state));
	CHECK(sm_table_lookup(nft_region(), table, &key, sizeof(key), state, size) == 0);
	for (i = 0; i < size / 8; i++)
		CHECK(state[i] == want);
}

static void feed(int slot, const char *src, uint16_t sport, int n)
{
	struct nft_frame f, orig;

	while (n-- > 0) {
		nft_udp(&f, src, sport, "48.0.0.1", 12, 60, false);
		orig = f;
		CHECK(nft_run(syn, slot, &f.pkt) == SP_PASS);
		CHECK(memcmp(f.data, orig.data, sizeof(f.data)) == 0);
	}
}

static void test_synthetic_keeps_state_of_the_configured_size(void)
{
	static const char *const args[] = {"state_size", "200", "flows", "64", NULL};
	static const char *const dflt[] = {NULL};
	uint32_t flags, ksize, vsize;
	uint64_t count;
	int a, b;

	CHECK(nft_deploy(syn, "syn1", args) == 0);
	CHECK(sm_table_info(nft_region(), "syn1/synth_flows", &flags, &ksize, &vsize, &count) == 0);
	CHECK(flags == (SP_PER_FLOW | SP_WRITE) && ksize == sizeof(struct sp_flow) && vsize == 200);
	a = nft_start(syn, "syn1", args);
	b = nft_start(syn, "syn1", args);
	CHECK(a >= 0 && b >= 0);
	feed(a, "16.0.0.1", 1025, 3);
	feed(a, "16.0.0.2", 1025, 1);
	check_state("syn1/synth_flows", "16.0.0.1", 1025, 200, 3);
	check_state("syn1/synth_flows", "16.0.0.2", 1025, 200, 1);
	feed(b, "16.0.0.1", 1025, 2); /* the flow moves to another instance: its state is already there */
	check_state("syn1/synth_flows", "16.0.0.1", 1025, 200, 5);
	CHECK(sm_table_info(nft_region(), "syn1/synth_flows", &flags, &ksize, &vsize, &count) == 0 &&
	      count == 2);
	nft_stop(b);
	nft_stop(a);

	CHECK(nft_deploy(syn, "syn2", dflt) == 0);
	CHECK(sm_table_info(nft_region(), "syn2/synth_flows", &flags, &ksize, &vsize, &count) == 0 &&
	      vsize == 64);
	a = nft_start(syn, "syn2", dflt);
	CHECK(a >= 0);
	feed(a, "16.0.0.1", 1025, 4);
	check_state("syn2/synth_flows", "16.0.0.1", 1025, 64, 4);
	nft_stop(a);
}

static void test_synthetic_refuses_bad_sizes(void)
{
	static const char *const odd[] = {"state_size", "12", NULL};
	static const char *const zero[] = {"state_size", "0", NULL};
	static const char *const huge[] = {"state_size", "1048576", NULL};

	CHECK(nft_deploy(syn, "bad1", odd) == -EINVAL);
	CHECK(nft_deploy(syn, "bad2", zero) == -EINVAL);
	CHECK(nft_deploy(syn, "bad3", huge) == -EINVAL);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s path/to/synthetic.so\n", argv[0]);
		return 2;
	}
	syn = nft_load(argv[1]);
	CHECK(strcmp(syn->name, "synthetic") == 0);
	test_synthetic_keeps_state_of_the_configured_size();
	test_synthetic_refuses_bad_sizes();
	return nft_finish("test_synthetic");
}
