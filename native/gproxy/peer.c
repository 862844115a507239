/*
 * peer.c: serpens-gproxy-peer, the other end of serpens-gproxy's link for testing the proxy on its own
 * (tests/integration/test_gproxy.py): a DPDK primary that owns the directory and the memif server, as
 * serpensd does, and is driven line by line on stdin.
 *
 *   serpens-gproxy-peer [EAL args] -- -d DIRECTORY
 *
 * Commands (one per line; every reply line ends with a newline, the last one of a command is "ok ..."):
 *   link SECONDS                 wait for the proxy's link: "ok up" / "ok down"
 *   route SFC POS [SLOT...]      publish the ready instance slots of (SFC, POS) and ring the proxy
 *   send SFC POS FLOW COUNT [bad]  send COUNT frames with a wire header (bad: a wrong magic), ring the
 *                                proxy and wait until it is done (serpensd's --colocate hand-off):
 *                                "ok sent N"
 *   recv COUNT TIMEOUT_MS        receive up to COUNT frames: one "pkt SFC HOP SLOT FLOW SEQ" each, then
 *                                "ok recv N"
 *   stats                        the proxy's counters from the directory: "ok key=value ..."
 *   pair SFC POS                 "ok routed=.. held=.. delivered_after_hold=.. hold_dropped=.. wanted=.."
 *   stop                         set the directory's stop word and ring: the proxy exits
 * SEQ is a sequence number the peer wrote into each frame's payload, so a test can check order.
 *
 * Why a separate program and not serpensd: it pins the proxy's own behaviour (instance choice, hold and
 * deliver, counters, the wake protocol) with real DPDK ports and a real memif link, before and apart from
 * serpensd's delivery seam.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "eal_files.h"
#include "gp_dir.h"
#include "port.h"
#include "serpens/gproxy_wire.h"
#include "sig.h"

#define INNER_LEN 60
#define SEQ_OFF 42 /* after Ethernet (14), IPv4 (20), UDP (8) */
#define MAX_SEND 4096

static struct gp_dir *dir;
static struct rte_mempool *pool;
static uint32_t next_seq;

static void reply_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply_ok(const char *fmt, ...)
{
	va_list ap;

	fputs("ok", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static void reply_err(const char *what)
{
	printf("error %s\n", what);
	fflush(stdout);
}

static struct rte_mbuf *frame(unsigned int sfc, unsigned int pos, uint32_t flow, int bad)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	struct gp_wire_hdr h = {.magic = bad ? 0xdead : GP_WIRE_MAGIC, .version = GP_WIRE_VERSION,
				.sfc = (uint8_t)sfc, .hop = (uint8_t)pos, .slot = GP_SLOT_NONE, .flow = flow,
				.tsc = rte_rdtsc()};
	uint8_t *d;

	if (!m)
		return NULL;
	d = (uint8_t *)rte_pktmbuf_append(m, sizeof(h) + INNER_LEN);
	if (!d) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	memset(d, 0, sizeof(h) + INNER_LEN);
	memcpy(d, &h, sizeof(h));
	d += sizeof(h);
	d[12] = 0x08; /* IPv4 */
	d[14] = 0x45;
	d[23] = 17;
	memcpy(d + SEQ_OFF, &next_seq, sizeof(next_seq));
	next_seq++;
	return m;
}

/* serpensd's --colocate hand-off: ring the proxy, then wait until it says done (or 1 s). */
static void handoff(void)
{
	uint32_t done = __atomic_load_n(&dir->done, __ATOMIC_SEQ_CST);

	if (gp_dir_ring(dir))
		gp_dir_futex_wait(&dir->done, done, 1000L * 1000 * 1000);
}

static void cmd_send(unsigned int sfc, unsigned int pos, uint32_t flow, unsigned int count, int bad)
{
	struct rte_mbuf *m[32];
	unsigned int sent = 0, n, i;
	uint16_t k;

	while (sent < count) {
		n = RTE_MIN(count - sent, 32u);
		for (i = 0; i < n; i++)
			if (!(m[i] = frame(sfc, pos, flow, bad))) {
				reply_err("out of mbufs");
				return;
			}
		k = rte_eth_tx_burst(0, 0, m, (uint16_t)n);
		if (k < n) {
			rte_pktmbuf_free_bulk(m + k, n - k);
			next_seq -= n - k;
		}
		sent += k;
		handoff();
		if (k < n)
			break;
	}
	reply_ok(" sent %u", sent);
}

static void cmd_recv(unsigned int count, unsigned int timeout_ms)
{
	uint64_t deadline = rte_rdtsc() + rte_get_tsc_hz() * timeout_ms / 1000;
	struct rte_mbuf *m[32];
	unsigned int got = 0;
	uint16_t n, i;

	while (got < count && rte_rdtsc() < deadline) {
		n = rte_eth_rx_burst(0, 0, m, (uint16_t)RTE_MIN(count - got, 32u));
		for (i = 0; i < n; i++) {
			struct gp_wire_hdr h;
			uint32_t seq = 0;

			if (rte_pktmbuf_data_len(m[i]) >= sizeof(h) + INNER_LEN) {
				memcpy(&h, rte_pktmbuf_mtod(m[i], void *), sizeof(h));
				memcpy(&seq, rte_pktmbuf_mtod_offset(m[i], uint8_t *, sizeof(h) + SEQ_OFF), 4);
				printf("pkt %u %u %d %u %u%s\n", h.sfc, h.hop, h.slot, h.flow, seq,
				       h.magic == GP_WIRE_MAGIC ? "" : " badmagic");
			} else {
				printf("pkt short %u\n", rte_pktmbuf_data_len(m[i]));
			}
			rte_pktmbuf_free(m[i]);
		}
		got += n;
		if (!n)
			rte_delay_us_sleep(100);
	}
	reply_ok(" recv %u", got);
}

static void cmd_stats(void)
{
	const struct gp_proxy_stats *s = &dir->stats;

	reply_ok(" rx=%lu tx=%lu bad_header=%lu held=%lu delivered_after_hold=%lu hold_dropped=%lu "
		 "link_full=%lu held_now=%lu sleeps=%lu wakeups=%lu dir_reloads=%lu busy_packets=%lu pid=%d",
		 s->rx, s->tx, s->bad_header, s->held, s->delivered_after_hold, s->hold_dropped, s->link_full,
		 s->held_now, s->sleeps, s->wakeups, s->dir_reloads, s->busy_packets,
		 __atomic_load_n(&dir->proxy_pid, __ATOMIC_ACQUIRE));
}

static void cmd_route(char *rest)
{
	unsigned int sfc, pos, n = 0;
	int8_t slots[GP_MAX_SLOTS];
	char *tok, *save = NULL;

	tok = strtok_r(rest, " \t\n", &save);
	if (!tok || sscanf(tok, "%u", &sfc) != 1 || !(tok = strtok_r(NULL, " \t\n", &save)) ||
	    sscanf(tok, "%u", &pos) != 1 || sfc >= GP_MAX_SFCS || pos >= GP_MAX_POS) {
		reply_err("usage: route SFC POS [SLOT...]");
		return;
	}
	while ((tok = strtok_r(NULL, " \t\n", &save)) && n < GP_MAX_SLOTS)
		slots[n++] = (int8_t)atoi(tok);
	gp_dir_set_route(dir, sfc, pos, slots, n);
	gp_dir_ring(dir);
	reply_ok(" route %u", n);
}

static void serve(void)
{
	char line[512], word[16], extra[16];
	unsigned int a, b, c, d;
	int k;

	while (!sig_quit && fgets(line, sizeof(line), stdin)) {
		extra[0] = 0;
		if (sscanf(line, "%15s", word) != 1)
			continue;
		if (!strcmp(word, "link") && sscanf(line, "%*s %u", &a) == 1) {
			k = port_wait_link(0, a);
			reply_ok(" %s", k > 0 ? "up" : "down");
		} else if (!strcmp(word, "route")) {
			cmd_route(line + 5);
		} else if (!strcmp(word, "send") &&
			   sscanf(line, "%*s %u %u %u %u %15s", &a, &b, &c, &d, extra) >= 4 && d <= MAX_SEND) {
			cmd_send(a, b, c, d, !strcmp(extra, "bad"));
		} else if (!strcmp(word, "recv") && sscanf(line, "%*s %u %u", &a, &b) == 2) {
			cmd_recv(a, b);
		} else if (!strcmp(word, "stats")) {
			cmd_stats();
		} else if (!strcmp(word, "pair") && sscanf(line, "%*s %u %u", &a, &b) == 2 && a < GP_MAX_SFCS &&
			   b < GP_MAX_POS) {
			const struct gp_pair_stats *p = &dir->stats.pair[a][b];

			reply_ok(" routed=%lu held=%lu delivered_after_hold=%lu hold_dropped=%lu link_full=%lu wanted=%lu",
				 p->routed, p->held, p->delivered_after_hold, p->hold_dropped, p->link_full,
				 __atomic_load_n(&dir->wanted[a][b], __ATOMIC_ACQUIRE));
		} else if (!strcmp(word, "stop")) {
			__atomic_store_n(&dir->stop, 1, __ATOMIC_SEQ_CST);
			__atomic_fetch_add(&dir->doorbell, 1, __ATOMIC_SEQ_CST);
			gp_dir_futex_wake(&dir->doorbell, 1);
			reply_ok(" stop");
		} else {
			reply_err("unknown command or bad arguments");
		}
	}
}

int main(int argc, char **argv)
{
	static struct eal_files files;
	const char *path = NULL;
	int ret, opt;

	rte_openlog_stream(stderr);
	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "EAL initialisation failed: %s\n", rte_strerror(rte_errno));
	eal_files_arm(&files);
	sig_install(0);
	argc -= ret;
	argv += ret;
	optind = 1;
	while ((opt = getopt(argc, argv, "d:")) != -1)
		if (opt == 'd')
			path = optarg;
	if (!path)
		rte_exit(2, "usage: serpens-gproxy-peer [EAL args] -- -d DIRECTORY\n");
	dir = gp_dir_create(path, rte_get_tsc_hz());
	if (!dir)
		rte_exit(EXIT_FAILURE, "cannot create the directory %s: %s\n", path, strerror(errno));
	pool = port_pool_create("peer_mbufs", 16383, 256);
	port_configure(0, pool);
	ret = port_start(0, 0);
	if (ret != 0)
		rte_exit(EXIT_FAILURE, "port 0: start failed: %s\n", rte_strerror(-ret));
	eal_files_collect(&files);
	printf("READY\n");
	fflush(stdout);
	serve();
	port_shutdown(0);
	gp_dir_close(dir);
	eal_files_finish(&files);
	return 0;
}
