/*
 * traffic.c: the single-lcore TX/RX loop of serpens-gen.
 *
 * Why one lcore for both directions: the latency timestamps are TSC values,
 * and a single core reads one TSC at both ends; the harness has 2 cores and
 * the other one belongs to the device under test.
 *
 * Pacing (pace.h): for each stream, due = (now - start) * pps / tsc_hz
 * packets should have left by now; each iteration sends min(owed, burst).
 * After its own stall the generator owes at most --catchup-us worth of a
 * stream's packets (at least one burst); the rest are skipped and counted as
 * skipped_stall (the iteration came after a loop stall) or skipped_slow (it
 * did not: the generator cannot keep the rate). So the DUT never sees the
 * whole backlog of a stall fired at it, and intended = tx + skipped_stall +
 * skipped_slow holds exactly for every stream.
 *
 * Accounting: a packet handed to rte_eth_tx_burst and taken is SENT. If the
 * PMD takes fewer than offered, its ring (for memif, the DUT's receive
 * queue) is full. The refused packets stay owed (they may be catch-up
 * packets a line-rate generator would have sent earlier, into a ring that
 * was not full), and the stream leaves the ring alone for
 * GEN_FULL_BACKOFF_NS. Packets that fall DUE in that window are the ones a
 * line-rate generator would have put on the wire while the ring was full:
 * they count as sent and as dut_rx_full (a real DUT's NIC would have dropped
 * them: imissed) without being built. Hammering a full ring only bounces
 * its cache lines between the two cores and slows the DUT down; the DUT
 * drains a few dozen queued packets meanwhile, so it never runs dry and its
 * measured throughput is unchanged. At the end of the schedule everything
 * still owed is sent at once, and what a full ring refuses then is
 * dut_rx_full.
 *
 * Idle sleep (--idle-sleep-us, off by default): at very low rates the loop
 * may give its core away until shortly before the next packet is due, but
 * only when nothing is in flight, so that no returning packet waits for the
 * receive poll and latency is measured as before.
 */
#include <sys/prctl.h>
#include <time.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_debug.h>
#include <rte_mbuf.h>
#include <rte_memcpy.h>

#include "dp_guard.h"
#include "gen.h"
#include "sig.h"

static inline void build_plain(const struct gen_stream *s,
			       struct rte_mbuf **m, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		rte_memcpy(rte_pktmbuf_mtod(m[i], void *), s->tmpl, s->len);
		m[i]->data_len = s->len;
		m[i]->pkt_len = s->len;
	}
}

static inline void build_fe(struct gen_stream *s, struct rte_mbuf **m,
			    unsigned int n)
{
	unsigned int i;
	uint16_t len;
	uint8_t *d;

	for (i = 0; i < n; i++) {
		d = rte_pktmbuf_mtod(m[i], uint8_t *);
		rte_memcpy(d, s->tmpl, s->len);
		len = fe_run(&s->fe, d, s->len);
		m[i]->data_len = len;
		m[i]->pkt_len = len;
	}
}

/* Packets of a constant stream: the same pre-built mbuf, n more references.
 * The PMD drops one reference per packet when it is done with it, so the
 * content is never copied or allocated here. Falls back to copies if the
 * 16-bit reference count could overflow. */
static inline int build_ref(struct gen_stream *s, struct rte_mbuf **m,
			    unsigned int n)
{
	unsigned int i;

	if (unlikely(rte_mbuf_refcnt_read(s->proto) > UINT16_MAX - 2 * n))
		return -1;
	rte_mbuf_refcnt_update(s->proto, (int16_t)n);
	for (i = 0; i < n; i++)
		m[i] = s->proto;
	return 0;
}

/* Packets of a varying stream: fresh mbufs, template copy, field engine,
 * latency signature. Returns -1 if the pool is empty. */
static inline int build_copies(struct gen_stream *s, struct rte_mbuf **m,
			       unsigned int n)
{
	if (unlikely(rte_pktmbuf_alloc_bulk(s->pool, m, n) != 0))
		return -1;
	if (s->has_fe)
		build_fe(s, m, n);
	else
		build_plain(s, m, n);
	if (s->lat >= 0)
		lat_stamp(&s->ltx, m, n, rte_rdtsc());
	return 0;
}

/* Hand back mbufs the PMD did not take. */
static inline void tx_free(struct gen_stream *s, struct rte_mbuf **m,
			   unsigned int n)
{
	if (s->proto != NULL && m[0] == s->proto)
		rte_mbuf_refcnt_update(s->proto, (int16_t)-(int)n);
	else
		rte_pktmbuf_free_bulk(m, n);
}

/* The PMD's ring is full. The refused packets stay owed (and their flow var
 * values, latency seqs and trace records with them: fe_rewind,
 * lat_tx_rewind); until full_until, packets falling due from
 * full_mark on meet the full ring (stream_tx). */
static inline void tx_refused(struct gen_stream *s, struct rte_mbuf **m,
			      unsigned int n, uint64_t full_until, uint64_t due)
{
	tx_free(s, m, n);
	if (s->has_fe)
		fe_rewind(&s->fe, n);
	if (s->lat >= 0)
		lat_tx_rewind(&s->ltx, n);
	s->full_until = full_until;
	s->full_mark = due;
}

static inline void tx_account(struct gen_stream *s, uint64_t n,
			      uint64_t bytes)
{
	s->pace.done += n;
	s->tx_packets += n;
	s->tx_bytes += bytes;
}

/* Bytes of the first k packets of a burst: a stream that trims its packets
 * (trim_pkt_size) has their lengths in len[], taken before the PMD took the
 * mbufs; every other stream sends its template's length. */
static inline uint64_t burst_bytes(const struct gen_stream *s,
				   const uint16_t *len, unsigned int k)
{
	uint64_t sum = 0;
	unsigned int i;

	if (likely(!s->fe.trims))
		return (uint64_t)k * s->len;
	for (i = 0; i < k; i++)
		sum += len[i];
	return sum;
}

/* These packets go on the wire and the DUT has no room for them. */
static inline void tx_into_full_ring(struct gen *g, struct gen_stream *s,
				     uint64_t n, uint64_t now)
{
	g->dut_rx_full += n;
	if (s->lat >= 0)
		lat_tx_unbuilt(&s->ltx, n, now);
	tx_account(s, n, n * s->len);   /* unbuilt: the template's length */
}

/* Build n packets of s into m. Returns -1 if the pool is empty. */
static inline int build(struct gen *g, struct gen_stream *s,
			struct rte_mbuf **m, unsigned int n)
{
	if (s->proto != NULL && build_ref(s, m, n) == 0)
		return 0;
	if (unlikely(build_copies(s, m, n) != 0)) {
		g->alloc_fail++;
		return -1;
	}
	return 0;
}

/* One loop iteration's clock: now, and the gap since the last iteration. */
struct tick {
	uint64_t now;
	uint64_t gap;
	int stalled;            /* gap >= the loop-stall threshold */
};

/* Build one burst of at most o.burst of the `owed` packets of s (its size
 * in *n; the packets' lengths in len[] if the stream trims them) and hand
 * it to the PMD. Returns how many the PMD took, or -1 if the burst could
 * not be built (the mbuf pool is empty). */
static inline int tx_one_burst(struct gen *g, struct gen_stream *s,
			       struct rte_mbuf **m, uint64_t owed,
			       unsigned int *n, uint16_t *len)
{
	unsigned int i;

	*n = (unsigned int)RTE_MIN(owed, (uint64_t)g->o.burst);
	if (build(g, s, m, *n) != 0)
		return -1;
	if (unlikely(s->fe.trims))
		for (i = 0; i < *n; i++)
			len[i] = (uint16_t)m[i]->pkt_len;
	return rte_eth_tx_burst(g->o.port, 0, m, (uint16_t)*n);
}

/* Send what stream s owes, one burst at most. Returns what it owed. */
static inline uint64_t stream_tx(struct gen *g, struct gen_stream *s,
				 const struct tick *t)
{
	struct rte_mbuf *m[GEN_MAX_BURST];
	uint16_t len[GEN_MAX_BURST];
	uint64_t due = pace_due(&s->pace, t->now), owed;
	unsigned int n;
	int sent;

	if (unlikely(t->now < s->full_until)) {
		if (due > s->full_mark) {
			tx_into_full_ring(g, s, due - s->full_mark, t->now);
			s->full_mark = due;
		}
		return 0;
	}
	owed = pace_owed(&s->pace, due, t->gap, t->stalled);
	if (owed == 0)
		return 0;
	sent = tx_one_burst(g, s, m, owed, &n, len);
	if (sent < 0)
		return owed;
	if (unlikely((unsigned int)sent < n))
		tx_refused(s, m + sent, n - (unsigned int)sent,
			   t->now + g->full_backoff, due);
	tx_account(s, (uint64_t)sent, burst_bytes(s, len, (unsigned int)sent));
	return owed;
}

static inline void tx_all(struct gen *g, const struct tick *t)
{
	uint64_t owed = 0;
	unsigned int i;

	for (i = 0; i < g->set.n; i++)
		owed += stream_tx(g, &g->set.s[i], t);
	if (unlikely(owed > g->backlog_max))
		g->backlog_max = owed;
}

static void capture(struct gen *g, struct rte_mbuf *m, uint64_t now)
{
	static uint8_t buf[16384];
	uint32_t caplen = RTE_MIN(m->pkt_len, (uint32_t)sizeof(buf));
	const void *d = rte_pktmbuf_read(m, 0, caplen, buf);
	uint64_t ts = g->wall_start_ns +
		(uint64_t)((double)(now - g->tsc_start) * g->ns_per_tsc);

	if (d == NULL || pcap_write(&g->cap, ts, d, caplen, m->pkt_len) != 0) {
		RTE_LOG(WARNING, USER1, "capture: write failed, stopping\n");
		g->cap_left = 0;
		return;
	}
	g->cap_left--;
}

static inline void rx_latency(struct gen *g, struct rte_mbuf *m,
			      uint64_t now)
{
	uint8_t buf[LAT_SIG_LEN];
	const uint8_t *sig;

	if (unlikely(m->pkt_len < LAT_MIN_PKT))
		return;
	if (likely(m->data_len == m->pkt_len))
		sig = rte_pktmbuf_mtod_offset(m, const uint8_t *,
					      m->pkt_len - LAT_SIG_LEN);
	else
		sig = rte_pktmbuf_read(m, m->pkt_len - LAT_SIG_LEN,
				       LAT_SIG_LEN, buf);
	lat_rx(&g->set.lat, sig, m->pkt_len, now);
}

/* Count a received burst. Returns non-zero if every mbuf is a plain
 * single-segment mbuf of our pool (they can go back in one put). */
static inline int rx_account(struct gen *g, struct rte_mbuf **m,
			     unsigned int nb, uint64_t now)
{
	unsigned int i;
	int simple = 1;

	for (i = 0; i < nb; i++) {
		g->rx_bytes += m[i]->pkt_len;
		simple &= m[i]->nb_segs == 1 && m[i]->pool == g->pool &&
			RTE_MBUF_DIRECT(m[i]) &&
			rte_mbuf_refcnt_read(m[i]) == 1;
	}
	if (g->set.lat.n)
		for (i = 0; i < nb; i++)
			rx_latency(g, m[i], now);
	for (i = 0; unlikely(g->cap_left) && i < nb; i++)
		capture(g, m[i], now);
	g->rx_packets += nb;
	return simple;
}

static inline void rx_poll(struct gen *g)
{
	struct rte_mbuf *m[GEN_RX_BURST];
	unsigned int round;
	uint16_t nb;

	for (round = 0; round < GEN_RX_ROUNDS; round++) {
		nb = rte_eth_rx_burst(g->o.port, 0, m, GEN_RX_BURST);
		if (nb == 0)
			return;
		if (likely(rx_account(g, m, nb, rte_rdtsc())))
			rte_mempool_put_bulk(g->pool, (void **)m, nb);
		else
			rte_pktmbuf_free_bulk(m, nb);
		if (nb < GEN_RX_BURST)
			return;
	}
}

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Pre-build the mbuf of a constant stream (see build_ref). */
static void proto_init(struct gen_stream *s)
{
	if (s->has_fe || s->lat >= 0)
		return;
	s->proto = rte_pktmbuf_alloc(s->pool);
	if (s->proto == NULL)
		rte_exit(EXIT_FAILURE, "mbuf pool empty at start\n");
	build_plain(s, &s->proto, 1);
}

/* Poll RX for a moment before the trial: the PMD fills its receive ring
 * (a zero-copy memif client hands its buffers to the peer on rx_burst), and
 * anything stale still in flight is drained and counted apart. */
static void rx_prearm(struct gen *g)
{
	uint64_t end = rte_rdtsc() + g->hz / 1000 * GEN_PREARM_MS;
	uint64_t cap_left = g->cap_left;

	g->cap_left = 0;
	while (rte_rdtsc() < end) {
		rx_poll(g);
		dp_guard_quiescent();
	}
	g->rx_stale = g->rx_packets;
	g->rx_packets = 0;
	g->rx_bytes = 0;
	g->cap_left = cap_left;
}

static void traffic_begin(struct gen *g)
{
	struct gen_stream *s;
	unsigned int i;

	g->ns_per_tsc = 1e9 / (double)g->hz;
	g->full_backoff = g->hz * GEN_FULL_BACKOFF_NS / 1000000000u;
	g->set.lat.ns_per_tsc = g->ns_per_tsc;
	g->set.lat.tsc_floor = rte_rdtsc();
	for (i = 0; i < g->set.n; i++)
		proto_init(&g->set.s[i]);
	memif_prefault(g);
	rx_prearm(g);
	g->wall_start_ns = wall_ns();
	g->tsc_start = rte_rdtsc();
	for (i = 0; i < g->set.n; i++) {
		s = &g->set.s[i];
		s->pace.per_tsc = s->pps / (double)g->hz;
		s->pace.start = g->tsc_start +
			(uint64_t)(s->isg_us * 1e-6 * (double)g->hz);
		s->pace.cap = pace_cap(s->pps, g->o.catchup_us, g->o.burst);
		pace_shape(&s->pace, s->total, s->ppb,
			   (uint64_t)(s->ibg_us * 1e-6 * (double)g->hz));
	}
}

/* One burst of what s still owes at the end of the schedule. A full ring
 * now is dut_rx_full: no later iteration will offer these packets again.
 * Returns what is still owed after it. */
static uint64_t flush_stream(struct gen *g, struct gen_stream *s)
{
	struct rte_mbuf *m[GEN_MAX_BURST];
	uint16_t len[GEN_MAX_BURST];
	uint64_t owed = s->intended - s->pace.done;
	unsigned int n;
	int sent;

	if (owed == 0)
		return 0;
	sent = tx_one_burst(g, s, m, owed, &n, len);
	if (sent < 0)
		return owed;
	if (unlikely((unsigned int)sent < n)) {
		tx_free(s, m + sent, n - (unsigned int)sent);
		g->dut_rx_full += n - (unsigned int)sent;
	}
	tx_account(s, n, burst_bytes(s, len, n));
	g->flush_packets += n;
	return owed - n;
}

/* The last top-up: everything the schedule owes at `end` (at most each
 * stream's catch-up bound, after the same skip as in the loop) goes out at
 * once, receiving in between. Bounded by GEN_FLUSH_MAX_US; what could not
 * be sent by then, or at all once the link is lost, is skipped_slow. */
static void traffic_flush(struct gen *g, uint64_t end, const struct tick *t)
{
	uint64_t t0 = rte_rdtsc(), left;
	uint64_t deadline = t0 + g->hz / 1000000u * GEN_FLUSH_MAX_US;
	struct gen_stream *s;
	unsigned int i;

	for (i = 0; i < g->set.n; i++) {
		s = &g->set.s[i];
		s->intended = RTE_MAX(pace_due(&s->pace, end), s->pace.done);
		pace_owed(&s->pace, s->intended, t->gap, t->stalled);
	}
	do {
		left = 0;
		for (i = 0; i < g->set.n && !g->link_lost; i++)
			left += flush_stream(g, &g->set.s[i]);
		rx_poll(g);
	} while (left > 0 && !g->link_lost && rte_rdtsc() < deadline);
	for (i = 0; i < g->set.n; i++) {
		s = &g->set.s[i];
		s->pace.skipped_slow += s->intended - s->pace.done;
		s->pace.done = s->intended;
	}
	g->flush_us = (double)(rte_rdtsc() - t0) * 1e6 / (double)g->hz;
}

/* Stop sending: the last top-up for the end of the schedule, or for now if
 * we were interrupted (signal or link lost). Returns the TSC at which
 * settling ends. */
static uint64_t traffic_stop(struct gen *g, const struct tick *t,
			     uint64_t tx_end)
{
	uint64_t end = tx_end;

	if (t->now < tx_end) {
		g->interrupted = 1;
		end = t->now;
	}
	g->tsc_stop = end;
	traffic_flush(g, end, t);
	return rte_rdtsc() + g->o.settle_ms * g->hz / 1000;
}

static void traffic_end(struct gen *g)
{
	unsigned int i;

	for (i = 0; i < g->set.n; i++) {
		rte_pktmbuf_free(g->set.s[i].proto);
		g->set.s[i].proto = NULL;
	}
}

/* Sleep until GEN_SLEEP_MARGIN_US before the next packet of any stream is
 * due, if that is at least idle_sleep_us away and every packet sent has come
 * back (or was refused); never past `until` (the end of the schedule, or
 * the next link check). The sleep is not a loop stall, unless the kernel
 * wakes us later than asked. */
static void idle_sleep(struct gen *g, uint64_t now, uint64_t until)
{
	uint64_t next = UINT64_MAX, sent = 0, at, ticks, woke;
	const struct gen_stream *s;
	struct timespec ts;
	unsigned int i;

	for (i = 0; i < g->set.n; i++) {
		s = &g->set.s[i];
		if (now < s->full_until)
			return;
		at = pace_next(&s->pace);
		next = RTE_MIN(next, at);
		sent += s->tx_packets;
	}
	next = RTE_MIN(next, until);
	if (sent != g->rx_packets + g->dut_rx_full ||
	    next < now + (uint64_t)(g->o.idle_sleep_us * 1e-6 * (double)g->hz))
		return;
	ticks = next - now - g->hz / 1000000u * GEN_SLEEP_MARGIN_US;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)((double)ticks * g->ns_per_tsc);
	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	nanosleep(&ts, NULL);
	woke = rte_rdtsc();
	g->idle_sleeps++;
	g->idle_slept += woke - now;
	g->stalls.prev = RTE_MIN(woke, now + ticks);
}

struct loop_state {
	uint64_t tx_end;
	uint64_t settle_end;
	uint64_t next_link_check;
	uint64_t link_period;
	int sending;
};

static int link_up(uint16_t port)
{
	struct rte_eth_link link;

	if (rte_eth_link_get_nowait(port, &link) != 0)
		return 1;       /* cannot tell: do not abort the trial */
	return link.link_status == RTE_ETH_LINK_UP;
}

/* Timers of the loop, checked once per iteration. Returns 1 when done. */
static inline int loop_timers(struct gen *g, struct loop_state *st,
			      const struct tick *t)
{
	uint64_t now = t->now;

	if (unlikely(now >= st->next_link_check)) {
		st->next_link_check = now + st->link_period;
		if (!g->link_lost && !link_up(g->o.port)) {
			g->link_lost = 1;
			RTE_LOG(ERR, USER1, "port %u: link went down during "
				"the trial (did the peer exit?)\n", g->o.port);
		}
	}
	if (likely(st->sending)) {
		if (unlikely(now >= st->tx_end || sig_quit || g->link_lost)) {
			st->settle_end = traffic_stop(g, t, st->tx_end);
			st->sending = 0;
		}
		return 0;
	}
	return now >= st->settle_end;
}

void traffic_run(struct gen *g)
{
	struct loop_state st;
	struct tick t;

	if (g->o.idle_sleep_us > 0)
		prctl(PR_SET_TIMERSLACK, 1UL);  /* default slack: +50 us/sleep */
	dp_guard_arm();
	traffic_begin(g);
	st.tx_end = g->tsc_start + (uint64_t)(g->o.duration_s * (double)g->hz);
	st.settle_end = 0;
	st.link_period = g->hz / 100;          /* 10 ms */
	st.next_link_check = g->tsc_start + st.link_period;
	st.sending = 1;
	/* from the schedule's start: a stall before the first iteration is a
	 * stall too, not a slow generator */
	loopstat_init(&g->stalls, g->hz, g->tsc_start);
	for (;;) {
		t.now = rte_rdtsc();
		t.gap = t.now - g->stalls.prev;
		t.stalled = t.gap >= g->stalls.threshold;
		loopstat_tick(&g->stalls, t.now);
		if (loop_timers(g, &st, &t))
			break;
		if (likely(st.sending))
			tx_all(g, &t);
		rx_poll(g);
		dp_guard_quiescent();
		if (unlikely(g->o.idle_sleep_us > 0) && st.sending)
			idle_sleep(g, rte_rdtsc(),
				   RTE_MIN(st.tx_end, st.next_link_check));
	}
	dp_guard_disarm();
	g->tsc_done = rte_rdtsc();
	traffic_end(g);
}
