/*
 * test_fe.c: unit test of the field engine's sequences (fe.h, fe.c): inc and
 * dec vars as TRex steps them; tuple_flow_var's (ip, port) order and its two
 * wraps (all pairs used, limit_flows reached); flow_var_rand_limit's
 * repeating draws from TRex's generator; write_mask_flow_var, trim_pkt_size
 * and negative add_value; and fe_rewind, which takes back the packets a full
 * ring refused, so that the packets built in their place carry the same
 * values and a range of new flows is neither skipped nor wrapped early.
 * No EAL: the field engine only needs DPDK's inline checksum helpers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe.h"

static int failures;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
			__LINE__, #cond); \
		failures++; \
	} \
} while (0)

#define PKT_LEN 60      /* a 64 B frame without its FCS */
#define SRC_OFF 26      /* IPv4 source address */

static uint8_t tmpl[PKT_LEN];

/* Ethernet + IPv4 (total length 46) + UDP: what profiles.churn_flows sends. */
static void make_template(void)
{
	static const uint8_t ip[20] = {
		0x45, 0, 0, 46, 0, 1, 0, 0, 64, 17, 0, 0,
		16, 128, 0, 0, 48, 0, 0, 1,
	};

	memset(tmpl, 0, sizeof(tmpl));
	tmpl[12] = 0x08;
	memcpy(tmpl + 14, ip, sizeof(ip));
	tmpl[34] = 0x04; tmpl[35] = 0x01;   /* sport 1025 */
	tmpl[37] = 12;                      /* dport 12 */
	tmpl[39] = 26;                      /* UDP length */
}

/* Compile a program from the JSON text of "vm" (single quotes for double).
 * Returns fe_compile's result, its message in err. */
static int try_compile(struct fe_prog *p, const char *text, char *err,
		       size_t errlen)
{
	char buf[2048];
	json_error_t jerr;
	json_t *vm;
	size_t i;
	int ret;

	snprintf(buf, sizeof(buf), "%s", text);
	for (i = 0; buf[i]; i++)
		if (buf[i] == '\'')
			buf[i] = '"';
	vm = json_loads(buf, 0, &jerr);
	if (vm == NULL) {
		fprintf(stderr, "bad test JSON: %s\n", jerr.text);
		exit(1);
	}
	ret = fe_compile(p, vm, tmpl, PKT_LEN, PKT_LEN, 1, err, errlen);
	json_decref(vm);
	return ret;
}

static void compile(struct fe_prog *p, const char *text)
{
	char err[320];

	if (try_compile(p, text, err, sizeof(err)) != 0) {
		fprintf(stderr, "fe_compile: %s\n", err);
		exit(1);
	}
}

/* The program is refused, and its message contains `why`. */
static void check_refused(const char *text, const char *why)
{
	struct fe_prog p;
	char err[320];

	if (try_compile(&p, text, err, sizeof(err)) == 0) {
		fprintf(stderr, "accepted, expected a refusal (%s): %s\n",
			why, text);
		failures++;
	} else if (strstr(err, why) == NULL) {
		fprintf(stderr, "refused with '%s', expected '%s'\n", err,
			why);
		failures++;
	}
}

/* Build one packet; return the value of var 0 it carries. */
static uint64_t next(struct fe_prog *p)
{
	uint8_t pkt[PKT_LEN];

	memcpy(pkt, tmpl, PKT_LEN);
	fe_run(p, pkt, PKT_LEN);
	return p->var[0].cur;
}

static uint32_t be32_at(const uint8_t *pkt, unsigned int off)
{
	uint32_t v;

	memcpy(&v, pkt + off, 4);
	return rte_be_to_cpu_32(v);
}

static uint16_t be16_at(const uint8_t *pkt, unsigned int off)
{
	uint16_t v;

	memcpy(&v, pkt + off, 2);
	return rte_be_to_cpu_16(v);
}

#define SPORT_OFF 34    /* UDP source port */

/* A tuple over ip 10.0.0.1 + [0, ips), ports 1025 + [0, ports), written to
 * IP.src and UDP.sport. */
static void tuple_prog(struct fe_prog *p, unsigned int ips,
		       unsigned int ports, unsigned int limit)
{
	char b[1024];
	const uint32_t ip0 = 10u << 24 | 1;

	snprintf(b, sizeof(b), "{'instructions': ["
		 "{'type': 'tuple_flow_var', 'name': 'tuple', 'ip_min': %u, "
		 "'ip_max': %u, 'port_min': 1025, 'port_max': %u, "
		 "'limit_flows': %u, 'flags': 0}, "
		 "{'type': 'write_flow_var', 'name': 'tuple.ip', "
		 "'pkt_offset': %d, 'add_value': 0, 'is_big_endian': true}, "
		 "{'type': 'write_flow_var', 'name': 'tuple.port', "
		 "'pkt_offset': %d, 'add_value': 0, 'is_big_endian': true}]}",
		 ip0, ip0 + ips - 1, 1025 + ports - 1, limit, SRC_OFF,
		 SPORT_OFF);
	compile(p, b);
}

/* Build one packet; its (ip offset from 10.0.0.1, port offset from 1025). */
static void next_pair(struct fe_prog *p, unsigned int *ip, unsigned int *port)
{
	uint8_t pkt[PKT_LEN];

	memcpy(pkt, tmpl, PKT_LEN);
	fe_run(p, pkt, PKT_LEN);
	*ip = be32_at(pkt, SRC_OFF) - (10u << 24 | 1);
	*port = be16_at(pkt, SPORT_OFF) - 1025u;
}

/* TRex's own example (STLVmTupleGen's docstring): 5 addresses x 4 ports,
 * limit_flows 10: the address moves first, the port when it wraps, and
 * flow 11 is flow 1 again. */
static void test_tuple_ip_first_then_port_then_limit(void)
{
	struct fe_prog p;
	unsigned int k, ip, port;

	tuple_prog(&p, 5, 4, 10);
	for (k = 0; k < 35; k++) {
		next_pair(&p, &ip, &port);
		CHECK(ip == (k % 10) % 5 && port == (k % 10) / 5);
		CHECK(p.var[2].cur == k % 10 + 1);      /* tuple.flow_limit */
	}
}

/* Without a limit the pairs run through all ips x ports, then repeat; the
 * flow number stays 0 (TRex counts it only with a limit). */
static void test_tuple_without_limit_wraps_after_every_pair(void)
{
	struct fe_prog p;
	unsigned int k, ip, port;

	tuple_prog(&p, 3, 2, 0);
	for (k = 0; k < 20; k++) {
		next_pair(&p, &ip, &port);
		CHECK(ip == k % 6 % 3 && port == k % 6 / 3);
		CHECK(p.var[2].cur == 0);
	}
}

/* A limit beyond ips x ports: the pairs wrap on their own, and the limit
 * still restarts the sequence at flow limit + 1. */
static void test_tuple_limit_larger_than_the_pairs(void)
{
	struct fe_prog p;
	unsigned int k, ip, port;

	tuple_prog(&p, 2, 2, 5);
	for (k = 0; k < 16; k++) {
		next_pair(&p, &ip, &port);
		CHECK(ip == k % 5 % 4 % 2 && port == k % 5 % 4 / 2);
	}
}

/* After a refused burst the tuple carries on from the first refused pair,
 * with and without a limit, across both wraps. */
static void test_tuple_rewind_matches_a_replay(void)
{
	static const unsigned int lim[] = { 0, 10, 7 };
	static const unsigned int n[] = { 1, 3, 9, 10, 17 };
	struct fe_prog p, q;
	unsigned int a, c, i, k, built, ip, port, ip2, port2;

	for (a = 0; a < 3; a++)
		for (i = 0; i < 5; i++)
			for (built = n[i]; built < n[i] + 12; built++) {
				tuple_prog(&p, 4, 3, lim[a]);
				tuple_prog(&q, 4, 3, lim[a]);
				for (k = 0; k < built; k++)
					next_pair(&p, &ip, &port);
				for (k = 0; k < built - n[i]; k++)
					next_pair(&q, &ip, &port);
				fe_rewind(&p, n[i]);
				for (c = 0; c < 30; c++) {
					next_pair(&p, &ip, &port);
					next_pair(&q, &ip2, &port2);
					CHECK(ip == ip2 && port == port2);
					CHECK(p.var[2].cur == q.var[2].cur);
				}
			}
}

static const char *rand_limit_prog(char *b, size_t len, unsigned int size,
				   unsigned long long lo,
				   unsigned long long hi, unsigned int limit,
				   unsigned int seed)
{
	snprintf(b, len, "{'instructions': [{'type': 'flow_var_rand_limit', "
		 "'name': 'r', 'size': %u, 'limit': %u, 'seed': %u, "
		 "'min_value': %llu, 'max_value': %llu}]}", size, limit, seed,
		 lo, hi);
	return b;
}

/* TRex's generator, written out here independently of fe.h. */
static uint32_t ref_rand16(uint32_t *s)
{
	*s = *s * 214013u + 2531011u;
	return (*s >> 16) & 0x7fffu;
}

/* The draws are TRex's (seed 7, 2-byte var: min + rand16 % range), and the
 * same `limit` values come again and again. */
static void test_rand_limit_repeats_trex_draws(void)
{
	struct fe_prog p;
	uint64_t first[5];
	uint32_t seed = 7;
	char b[512];
	int i, k;

	compile(&p, rand_limit_prog(b, sizeof(b), 2, 100, 1099, 5, 7));
	for (i = 0; i < 5; i++) {
		first[i] = next(&p);
		CHECK(first[i] == 100u + ref_rand16(&seed) % 1000u);
	}
	for (k = 0; k < 4; k++)
		for (i = 0; i < 5; i++)
			CHECK(next(&p) == first[i]);
}

/* 4- and 8-byte vars take 2 and 4 draws per value; rewinding puts the
 * generator back, across the cycle's restart too. */
static void test_rand_limit_rewind_matches_a_replay(void)
{
	static const unsigned int sizes[] = { 1, 2, 4, 8 };
	struct fe_prog p, q;
	unsigned int i, n, built, k;
	char b[512];
	uint64_t x;

	for (i = 0; i < 4; i++)
		for (n = 1; n < 9; n += 3)
			for (built = n; built < n + 9; built++) {
				rand_limit_prog(b, sizeof(b), sizes[i], 3, 200,
						6, 1234);
				compile(&p, b);
				compile(&q, b);
				for (k = 0; k < built; k++)
					next(&p);
				for (k = 0; k < built - n; k++)
					next(&q);
				fe_rewind(&p, n);
				for (k = 0; k < 20; k++) {
					x = next(&p);
					CHECK(x == next(&q));
					CHECK(x >= 3 && x <= 200);
				}
			}
}

/* TRex's STLVmWrMaskFlowVar example 2: a 2-byte var shifted left by 8 into
 * the high byte of a 2-byte field, the low byte kept; and a right shift
 * into one bit, little endian, with a negative add. */
static void test_write_mask_merges_under_the_mask(void)
{
	uint8_t pkt[PKT_LEN];
	struct fe_prog p;
	char b[1024];

	snprintf(b, sizeof(b), "{'instructions': ["
		 "{'type': 'flow_var', 'name': 'v', 'size': 2, 'op': 'inc', "
		 "'init_value': 18, 'min_value': 0, 'max_value': 256, "
		 "'step': 1}, "
		 "{'type': 'write_mask_flow_var', 'name': 'v', 'pkt_offset': 10, "
		 "'pkt_cast_size': 2, 'mask': 65280, 'shift': 8, "
		 "'add_value': 0, 'is_big_endian': true}, "
		 "{'type': 'write_mask_flow_var', 'name': 'v', 'pkt_offset': 40, "
		 "'pkt_cast_size': 4, 'mask': 1, 'shift': -1, "
		 "'add_value': -2, 'is_big_endian': false}]}");
	compile(&p, b);
	memcpy(pkt, tmpl, PKT_LEN);
	pkt[10] = 0xaa;
	pkt[11] = 0xbb;
	memset(pkt + 40, 0xff, 4);
	fe_run(&p, pkt, PKT_LEN);
	CHECK(p.var[0].cur == 18);
	CHECK(pkt[10] == 18 && pkt[11] == 0xbb);
	/* (18 - 2) >> 1 = 8: bit 0 is 0, the other 31 bits stay 1 */
	CHECK(pkt[40] == 0xfe && pkt[41] == 0xff && pkt[43] == 0xff);
}

/* trim_pkt_size: the length is the var's value (TRex's udp_inc_len
 * pattern, with the IP length written as var - 14). */
static void test_trim_sets_the_length_and_negative_add_wraps(void)
{
	uint8_t pkt[PKT_LEN];
	struct fe_prog p;
	char b[1024];
	uint16_t len;
	int i;

	snprintf(b, sizeof(b), "{'instructions': ["
		 "{'type': 'flow_var', 'name': 'l', 'size': 2, 'op': 'inc', "
		 "'init_value': 42, 'min_value': 42, 'max_value': %d, "
		 "'step': 1}, "
		 "{'type': 'trim_pkt_size', 'name': 'l'}, "
		 "{'type': 'write_flow_var', 'name': 'l', 'pkt_offset': 16, "
		 "'add_value': -14, 'is_big_endian': true}, "
		 "{'type': 'fix_checksum_ipv4', 'pkt_offset': 14}]}", PKT_LEN);
	compile(&p, b);
	for (i = 0; i < 25; i++) {
		memcpy(pkt, tmpl, PKT_LEN);
		len = fe_run(&p, pkt, PKT_LEN);
		CHECK(len == 42 + i % 19);
		CHECK(be16_at(pkt, 16) == len - 14);
	}
}

static void test_unsupported_or_bad_programs_are_refused(void)
{
	check_refused("{'instructions': [{'type': 'tuple_flow_var', 'name': "
		      "'t', 'ip_min': 1, 'ip_max': 2, 'port_min': 1, "
		      "'port_max': 2, 'limit_flows': 0, 'flags': 1}]}",
		      "flags': 1 is not supported");
	check_refused("{'instructions': [{'type': 'tuple_flow_var', 'name': "
		      "'t', 'ip_min': 5, 'ip_max': 2, 'port_min': 1, "
		      "'port_max': 2, 'limit_flows': 0, 'flags': 0}]}",
		      "ip_min <= ip_max");
	check_refused("{'instructions': [{'type': 'flow_var_rand_limit', "
		      "'name': 'r', 'size': 1, 'limit': 0, 'seed': 1, "
		      "'min_value': 0, 'max_value': 9}]}", "limit': must be 1..255");
	check_refused("{'instructions': [{'type': 'flow_var', 'name': 'l', "
		      "'size': 4, 'op': 'inc', 'init_value': 20, "
		      "'min_value': 20, 'max_value': 50, 'step': 1}, "
		      "{'type': 'trim_pkt_size', 'name': 'l'}]}", "2-byte");
	check_refused("{'instructions': [{'type': 'flow_var', 'name': 'l', "
		      "'size': 2, 'op': 'inc', 'init_value': 20, "
		      "'min_value': 20, 'max_value': 61, 'step': 1}, "
		      "{'type': 'trim_pkt_size', 'name': 'l'}]}",
		      "within 14..60");
	check_refused("{'instructions': [{'type': 'flow_var', 'name': 'v', "
		      "'size': 8, 'op': 'inc', 'init_value': 0, "
		      "'min_value': 0, 'max_value': 5, 'step': 1}, "
		      "{'type': 'write_mask_flow_var', 'name': 'v', "
		      "'pkt_offset': 0, 'pkt_cast_size': 1, 'mask': 255, "
		      "'shift': 0, 'add_value': 0, 'is_big_endian': true}]}",
		      "8-byte");
	check_refused("{'instructions': [{'type': 'nonsense'}]}",
		      "tuple_flow_var");
}

static const char *var_prog(char *buf, size_t len, const char *op,
			    unsigned long long lo, unsigned long long hi,
			    unsigned long long init, unsigned long long step,
			    unsigned int size)
{
	snprintf(buf, len, "{'instructions': [{'type': 'flow_var', 'name': 'v', "
		 "'size': %u, 'op': '%s', 'init_value': %llu, 'min_value': %llu, "
		 "'max_value': %llu, 'step': %llu}]}", size, op, init, lo, hi,
		 step);
	return buf;
}

static void test_inc_rewind_repeats_the_refused_values(void)
{
	struct fe_prog p;
	char b[512];
	int i;

	compile(&p, var_prog(b, sizeof(b), "inc", 10, 20, 10, 1, 4));
	for (i = 0; i < 5; i++)
		CHECK(next(&p) == 10u + (unsigned int)i);
	fe_rewind(&p, 2);           /* 13 and 14 were refused */
	CHECK(next(&p) == 13);
	CHECK(next(&p) == 14);
	CHECK(next(&p) == 15);
}

static void test_inc_rewind_across_the_wrap_with_a_step(void)
{
	struct fe_prog p;
	char b[512];

	/* TRex: step 3 on [1, 10] from 9 gives 9, 2, 5 (the overshoot carries) */
	compile(&p, var_prog(b, sizeof(b), "inc", 1, 10, 9, 3, 1));
	CHECK(next(&p) == 9);
	CHECK(next(&p) == 2);
	CHECK(next(&p) == 5);
	fe_rewind(&p, 2);
	CHECK(next(&p) == 2);
	CHECK(next(&p) == 5);
}

static void test_dec_rewind_steps_forward(void)
{
	struct fe_prog p;
	char b[512];

	compile(&p, var_prog(b, sizeof(b), "dec", 0, 9, 1, 1, 2));
	CHECK(next(&p) == 1);
	CHECK(next(&p) == 0);
	CHECK(next(&p) == 9);
	CHECK(next(&p) == 8);
	fe_rewind(&p, 3);
	CHECK(next(&p) == 0);
	CHECK(next(&p) == 9);
}

/* Rewinding n equals stepping back n times, also for n beyond the range and
 * for 8-byte vars with a large range and step (no overflow). */
static void test_rewind_matches_stepping_back_one_by_one(void)
{
	static const unsigned long long n[] = { 0, 1, 7, 11, 1000, 123457 };
	struct fe_prog p, q;
	struct fe_var v;
	char b[512];
	unsigned long long k;
	unsigned int i;

	compile(&p, var_prog(b, sizeof(b), "inc", 5, 1ull << 62,
			     (1ull << 61) + 12345, (1ull << 61) + 3, 8));
	for (i = 0; i < sizeof(n) / sizeof(n[0]); i++) {
		q = p;
		v = q.var[0];
		fe_rewind(&q, n[i]);
		for (k = 0; k < n[i]; k++)
			fe_var_dec(&v);
		CHECK(q.var[0].cur == v.cur);
	}
	compile(&p, var_prog(b, sizeof(b), "dec", 0, 10, 4, 3, 1));
	q = p;
	v = q.var[0];
	fe_rewind(&q, 1000);
	for (k = 0; k < 1000; k++)
		fe_var_inc(&v);
	CHECK(q.var[0].cur == v.cur);
}

static void test_random_vars_are_left_alone(void)
{
	struct fe_prog p;
	uint64_t cur;
	char b[512];

	compile(&p, var_prog(b, sizeof(b), "random", 0, 1000, 0, 1, 2));
	next(&p);
	cur = p.var[0].cur;
	fe_rewind(&p, 5);
	CHECK(p.var[0].cur == cur);
}

/* The churn stream end to end: packets 0..4 built, 3..4 refused, rebuilt:
 * the source addresses on the wire are consecutive, none skipped. */
static void test_churn_sources_stay_consecutive_after_a_refusal(void)
{
	const uint32_t first = 16u << 24 | 128u << 16;
	uint8_t pkt[PKT_LEN];
	struct fe_prog p;
	uint32_t src, sent[8];
	char b[1024];
	int i, n = 0;

	snprintf(b, sizeof(b), "{'instructions': ["
		 "{'type': 'flow_var', 'name': 'churn', 'size': 4, 'op': 'inc', "
		 "'init_value': %u, 'min_value': %u, 'max_value': %u, 'step': 1}, "
		 "{'type': 'write_flow_var', 'name': 'churn', 'pkt_offset': %d, "
		 "'add_value': 0, 'is_big_endian': true}, "
		 "{'type': 'fix_checksum_ipv4', 'pkt_offset': 14}]}",
		 first, first, first + 99, SRC_OFF);
	compile(&p, b);
	for (i = 0; i < 5; i++) {
		memcpy(pkt, tmpl, PKT_LEN);
		fe_run(&p, pkt, PKT_LEN);
		memcpy(&src, pkt + SRC_OFF, 4);
		if (i < 3)              /* the PMD took 3 of the burst of 5 */
			sent[n++] = rte_be_to_cpu_32(src);
		CHECK(rte_ipv4_cksum((struct rte_ipv4_hdr *)(pkt + 14)) == 0 ||
		      rte_ipv4_cksum((struct rte_ipv4_hdr *)(pkt + 14)) == 0xffff);
	}
	fe_rewind(&p, 2);
	for (i = 0; i < 5; i++) {
		memcpy(pkt, tmpl, PKT_LEN);
		fe_run(&p, pkt, PKT_LEN);
		memcpy(&src, pkt + SRC_OFF, 4);
		sent[n++] = rte_be_to_cpu_32(src);
	}
	for (i = 0; i < n; i++)
		CHECK(sent[i] == first + (uint32_t)i);
}

int main(void)
{
	make_template();
	test_inc_rewind_repeats_the_refused_values();
	test_inc_rewind_across_the_wrap_with_a_step();
	test_dec_rewind_steps_forward();
	test_rewind_matches_stepping_back_one_by_one();
	test_random_vars_are_left_alone();
	test_churn_sources_stay_consecutive_after_a_refusal();
	test_tuple_ip_first_then_port_then_limit();
	test_tuple_without_limit_wraps_after_every_pair();
	test_tuple_limit_larger_than_the_pairs();
	test_tuple_rewind_matches_a_replay();
	test_rand_limit_repeats_trex_draws();
	test_rand_limit_rewind_matches_a_replay();
	test_write_mask_merges_under_the_mask();
	test_trim_sets_the_length_and_negative_add_wraps();
	test_unsupported_or_bad_programs_are_refused();
	if (failures) {
		fprintf(stderr, "test_fe: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_fe: ok\n");
	return 0;
}
