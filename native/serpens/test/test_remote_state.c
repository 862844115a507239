/*
 * test_remote_state.c: the three state backends (serpens, fission, snf) behind one NF API, with the real
 * NF modules, against a real redis-server (with_redis.sh starts one and sets REDIS_PORT).
 *
 *   test_remote_state BACKEND nat.so mon.so fw.so
 *
 * One process plays serpensd (deploy, claim/release: the State Manager's remote hooks) and two runtime
 * instances (slots switched with sm_set_instance), running batches the way the Chainer does: begin
 * (prefetch), packet + handler per packet, end (write-back). The outputs must be the same on every
 * backend; on fission/snf the remote counters must show one round trip before and one after a batch once
 * the key derivations are learned. On fission, a Redis that stops answering makes a batch fail within
 * the command timeout, and an unreachable one fails fast at connect.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "nftest.h"
#include "remote_state.h"
#include "serpens/state_ops.h"

#define NAT_PORTS 16
#define NFLOWS 10

static enum rs_backend backend;
static struct rs_stats stats;
static const struct sp_nf *nat, *mon, *fw;
static const char *const nat_args[] = {"external_ip", "198.18.1.1", "ports", "1024-1039", NULL, NULL};
static const char *const fw_args[] = {"blacklist", "17,16.0.0.3,1025,48.0.0.1,12", NULL, NULL};
static jmp_buf fatal_jmp;
static char fatal_msg[600];
static int expect_fatal;

static void on_fatal(const char *msg)
{
	snprintf(fatal_msg, sizeof(fatal_msg), "%s", msg);
	if (expect_fatal)
		longjmp(fatal_jmp, 1);
	fprintf(stderr, "unexpected fatal: %s\n", msg);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One batch of one NF on instance slot, as the Chainer runs it. */
static void run_batch(int slot, const struct sp_nf *nf, const char *name, struct nft_frame *f, unsigned int n,
		      int *verdict)
{
	struct sp_pkt pkts[64];
	unsigned int i;

	sm_set_instance(slot);
	sm_batch_begin(nft_region(), slot);
	for (i = 0; i < n; i++)
		pkts[i] = f[i].pkt;
	if (sp_batch_hooks)
		sp_batch_hooks->begin(name, pkts, n);
	for (i = 0; i < n; i++) {
		if (sp_batch_hooks)
			sp_batch_hooks->packet(&f[i].pkt);
		verdict[i] = nf->handler(&f[i].pkt);
	}
	if (sp_batch_hooks)
		sp_batch_hooks->end();
	sm_batch_end(nft_region(), slot);
}

static int start(void)
{
	int slot = sm_instance_claim(nft_region());

	CHECK(slot >= 0);
	sm_set_instance(slot);
	sm_set_phase_deploy(false);
	sm_set_nf("nat", nat_args);
	CHECK(sm_nf_init(nat) == 0);
	sm_set_nf("mon", NULL);
	CHECK(sm_nf_init(mon) == 0);
	sm_set_nf("fw", fw_args);
	CHECK(sm_nf_init(fw) == 0);
	return slot;
}

static void flows(struct nft_frame *f, unsigned int n, unsigned int first)
{
	char src[32];
	unsigned int i;

	for (i = 0; i < n; i++) {
		snprintf(src, sizeof(src), "16.0.%u.%u", (first + i) / 250, (first + i) % 250 + 1);
		nft_udp(&f[i], src, 1025, "48.0.0.1", 12, 60, false);
	}
}

static uint64_t pool_free(void)
{
	uint8_t v[SP_POOL_SIZE(NAT_PORTS)];
	uint32_t cid = 0;

	CHECK(sm_table_lookup(nft_region(), "nat/nat_pool", &cid, 4, v, sizeof(v)) == 0);
	return ((struct sp_pool *)v)->nfree;
}

static void test_nat_two_instances(int a, int b)
{
	struct nft_frame fa[NFLOWS], fb[NFLOWS], again[NFLOWS];
	int va[NFLOWS], vb[NFLOWS], vagain[NFLOWS], passed = 0, used[65536] = {0}, dup = 0;
	uint16_t port_a[NFLOWS];
	struct rs_stats before;
	unsigned int i;

	flows(fa, NFLOWS, 0);
	flows(fb, NFLOWS, 100);
	run_batch(a, nat, "nat", fa, NFLOWS, va);   /* 8 own ports, then trigger: half of b's */
	run_batch(b, nat, "nat", fb, NFLOWS, vb);   /* b starved: triggers to get a's leftovers */
	for (i = 0; i < NFLOWS; i++) {
		if (va[i] == SP_PASS) {
			passed++;
			dup += used[nft_sport(&fa[i])]++ > 0;
			CHECK(nft_src_ip(&fa[i]) == nft_ip("198.18.1.1"));
		}
		if (vb[i] == SP_PASS) {
			passed++;
			dup += used[nft_sport(&fb[i])]++ > 0;
		}
		port_a[i] = nft_sport(&fa[i]);
		if (getenv("RS_DEBUG"))
			fprintf(stderr, "flow %u: a %d %u, b %d %u\n", i, va[i], nft_sport(&fa[i]), vb[i], nft_sport(&fb[i]));
	}
	for (i = 0; i < NFLOWS; i++)
		CHECK(va[i] == SP_PASS); /* a ran out of its half and got b's through trigger */
	CHECK(vb[0] == SP_PASS && vb[4] == SP_PASS); /* b, starved after 4, got one back through trigger */
	CHECK(vb[NFLOWS - 1] == SP_DROP);            /* ... and then the pool was exhausted everywhere */
	CHECK(passed + pool_free() == NAT_PORTS);    /* every port either handed out or free, ... */
	CHECK(dup == 0);                             /* ... and none handed out twice */
	fprintf(stderr, "nat: %d flows mapped, %llu ports free\n", passed, (unsigned long long)pool_free());
	/* the same flows again on a: the same ports, and (remote) served by the prefetch */
	flows(again, NFLOWS, 0);
	before = stats;
	run_batch(a, nat, "nat", again, NFLOWS, vagain);
	for (i = 0; i < NFLOWS; i++)
		CHECK(vagain[i] == SP_PASS && nft_sport(&again[i]) == port_a[i]);
	if (backend == RS_FISSION) {
		CHECK(stats.misses == before.misses);
		CHECK(stats.round_trips - before.round_trips == 1); /* prefetch; nothing changed: no write-back */
	}
}

static void test_mon_and_fw(int a, int b)
{
	struct nft_frame f[8];
	int v[8], round;
	uint8_t val[16];
	uint64_t c[2];
	uint32_t host;
	unsigned int i;
	struct rs_stats before;

	for (round = 0; round < 4; round++) {
		flows(f, 8, 0);
		before = stats;
		run_batch(round % 2 ? b : a, mon, "mon", f, 8, v);
		for (i = 0; i < 8; i++)
			CHECK(v[i] == SP_PASS);
		if (backend != RS_SERPENS && round >= 2) { /* learned: one round trip each way */
			CHECK(stats.misses == before.misses);
			CHECK(stats.round_trips - before.round_trips == 2);
			CHECK(stats.batches - before.batches == 1);
		}
		run_batch(round % 2 ? b : a, fw, "fw", f, 8, v);
		for (i = 0; i < 8; i++)
			CHECK(v[i] == (i == 2 ? SP_DROP : SP_PASS)); /* 16.0.0.3 is blacklisted */
	}
	for (i = 0; i < 8; i++) {
		host = nft_src_ip(&f[i]);
		CHECK(sm_table_lookup(nft_region(), "mon/mon_hosts", &host, 4, val, 16) == 0);
		memcpy(c, val, 16);
		CHECK(c[0] == 4 && c[1] == 4 * 60);
	}
}

static void test_scale_in(int a, int b)
{
	uint8_t val[16];
	uint64_t c[2];
	uint32_t host = nft_ip("16.0.0.1");
	uint64_t free0 = pool_free();

	sm_instance_release(nft_region(), a); /* merge a's sub-states back */
	CHECK(pool_free() == free0);
	CHECK(sm_table_lookup(nft_region(), "mon/mon_hosts", &host, 4, val, 16) == 0);
	memcpy(c, val, 16);
	CHECK(c[0] == 4 && c[1] == 240);
	sm_instance_release(nft_region(), b);
	CHECK(pool_free() == free0);
	CHECK(sm_table_lookup(nft_region(), "mon/mon_hosts", &host, 4, val, 16) == 0);
	memcpy(c, val, 16);
	CHECK(c[0] == 4);
}

static void test_backend_placement(void)
{
	bool remote_flow = sm_table_is_remote(nft_region(), "nat/nat_map");
	bool remote_pool = sm_table_is_remote(nft_region(), "nat/nat_pool");

	CHECK(remote_flow == (backend == RS_FISSION));
	CHECK(remote_pool == (backend != RS_SERPENS));
}

/* Redis stops answering mid-run (CLIENT PAUSE from another client): the batch fails within the command
 * timeout with a message that names Redis; an unreachable Redis fails fast at connect. */
static void test_failures(int port)
{
	redisContext *admin = redisConnect("127.0.0.1", port);
	struct nft_frame f[4];
	int v[4], slot;
	volatile double t0;
	char err[600];
	redisReply *r;

	CHECK(admin && !admin->err);
	slot = start();
	flows(f, 4, 200);
	r = redisCommand(admin, "CLIENT PAUSE 2500 ALL");
	CHECK(r && r->type == REDIS_REPLY_STATUS);
	freeReplyObject(r);
	expect_fatal = 1;
	t0 = now_s();
	if (setjmp(fatal_jmp) == 0) {
		run_batch(slot, mon, "mon", f, 4, v);
		CHECK(!"a batch against a paused Redis completed");
	}
	expect_fatal = 0;
	sm_batch_end(nft_region(), slot);
	CHECK(now_s() - t0 < 2.0);
	CHECK(strstr(fatal_msg, "Redis") != NULL);
	fprintf(stderr, "fatal after %.2f s: %s\n", now_s() - t0, fatal_msg);
	r = redisCommand(admin, "CLIENT UNPAUSE");
	freeReplyObject(r);
	redisFree(admin);

	rs_forget();
	{
		struct rs_config c = {.backend = RS_FISSION, .host = "127.0.0.1", .port = 1, .timeout_ms = 1000};

		rs_setup(&c);
	}
	t0 = now_s();
	CHECK(rs_ping(err, sizeof(err)) != 0);
	CHECK(now_s() - t0 < 1.5);
	CHECK(strstr(err, "cannot connect") != NULL);
}

int main(int argc, char **argv)
{
	const char *port_s = getenv("REDIS_PORT");
	int a, b, port = port_s ? atoi(port_s) : 0, bk;

	if (argc != 5 || (bk = rs_backend_parse(argv[1])) < 0) {
		fprintf(stderr, "usage: test_remote_state serpens|fission|snf nat.so mon.so fw.so\n");
		return 2;
	}
	backend = (enum rs_backend)bk;
	if (backend != RS_SERPENS && !port) {
		fprintf(stderr, "REDIS_PORT not set (run through with_redis.sh)\n");
		return 77;
	}
	nft_region();
	{
		struct rs_config c = {.backend = backend, .host = "127.0.0.1", .port = port, .timeout_ms = 1000,
				      .stats = &stats, .fatal = on_fatal, .manager = 1};
		CHECK(rs_setup(&c) == 0);
	}
	/* one module each; the test dlopens three, so nft_load's "module" is only used for selectors */
	nat = nft_load(argv[2]);
	mon = nft_load(argv[3]);
	fw = nft_load(argv[4]);
	CHECK(nft_deploy(nat, "nat", nat_args) == 0);
	CHECK(nft_deploy(mon, "mon", NULL) == 0);
	CHECK(nft_deploy(fw, "fw", fw_args) == 0);
	test_backend_placement();
	a = start();
	b = start();
	test_nat_two_instances(a, b);
	test_mon_and_fw(a, b);
	test_scale_in(a, b);
	if (backend != RS_SERPENS)
		fprintf(stderr, "%s: %llu batches, %llu round trips, %llu ops, %llu misses, %.1f us remote per batch\n",
			argv[1], (unsigned long long)stats.batches, (unsigned long long)stats.round_trips,
			(unsigned long long)stats.ops, (unsigned long long)stats.misses,
			stats.batches ? (double)stats.ns / 1e3 / (double)stats.batches : 0.0);
	if (backend == RS_FISSION)
		test_failures(port);
	return nft_finish(argv[1]);
}
