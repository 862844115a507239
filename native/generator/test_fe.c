/*
 * test_fe.c: unit test of the field engine's sequences (fe.h, fe.c): inc and
 * dec vars as TRex steps them, and fe_rewind, which takes back the packets a
 * full ring refused, so that the packets built in their place carry the same
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

/* Compile a program from the JSON text of "vm" (single quotes for double). */
static void compile(struct fe_prog *p, const char *text)
{
	char buf[1024], err[256];
	json_error_t jerr;
	json_t *vm;
	size_t i;

	snprintf(buf, sizeof(buf), "%s", text);
	for (i = 0; buf[i]; i++)
		if (buf[i] == '\'')
			buf[i] = '"';
	vm = json_loads(buf, 0, &jerr);
	if (vm == NULL) {
		fprintf(stderr, "bad test JSON: %s\n", jerr.text);
		exit(1);
	}
	if (fe_compile(p, vm, tmpl, PKT_LEN, PKT_LEN, 1, err, sizeof(err))) {
		fprintf(stderr, "fe_compile: %s\n", err);
		exit(1);
	}
	json_decref(vm);
}

/* Build one packet; return the value of var 0 it carries. */
static uint64_t next(struct fe_prog *p)
{
	uint8_t pkt[PKT_LEN];

	memcpy(pkt, tmpl, PKT_LEN);
	fe_run(p, pkt, PKT_LEN);
	return p->var[0].cur;
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
	if (failures) {
		fprintf(stderr, "test_fe: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_fe: ok\n");
	return 0;
}
