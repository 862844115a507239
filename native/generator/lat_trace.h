/*
 * lat_trace.h: serpens-gen's per-packet latency trace (--latency-trace).
 *
 * Why: the latency histogram (latency.h) says how latency is distributed
 * over a whole trial, but not WHEN a packet was slow, nor which flow it
 * belonged to. A scaling event (issue 12, the paper's Fig. 14) lasts a few
 * ms inside a trial of seconds and concerns only the moved flows, so it
 * needs latency over time in bins of <= 1 ms and loss and reordering per
 * flow. The generator therefore records one TX record per latency packet
 * sent and one RX record per latency packet received; the Python reader
 * (harness/traffic/latency_trace.py) joins them by (pg_id, seq).
 *
 * The arrays are allocated and faulted in before the trial, so recording a
 * packet is one store into an array; records beyond the arrays are counted
 * (overflow), never silently dropped. The file is written once, at the end,
 * to a temporary name and renamed. Format (little-endian, docs/generator.md):
 *
 *   header (72 bytes): magic "SGENLTRC", u32 version, u32 header length,
 *     u32 TX record length, u32 RX record length, u64 tsc_hz, u64 tsc_start,
 *     u64 TX records, u64 RX records, u64 TX overflow, u64 RX overflow
 *   TX records (24 bytes each), in the order sent
 *   RX records (24 bytes each), in the order received
 */
#ifndef SERPENS_LAT_TRACE_H
#define SERPENS_LAT_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define LAT_TRACE_MAGIC "SGENLTRC"
#define LAT_TRACE_VERSION 1
#define LAT_TRACE_MAX_DEFAULT (4ull << 20)   /* records of each kind */
#define LAT_TRACE_MAX_LIMIT (1ull << 28)     /* 6 GiB of each: beyond RAM */

/* A TX record stands for a packet that counted as sent without being built:
 * it fell due while the DUT's ring was full (dut_rx_full, traffic.c). It has
 * no flow (flow_id 0) and never comes back. */
#define LAT_TRACE_UNBUILT 0x1

struct lat_trace_tx {
	uint64_t tx_tsc;        /* the stamp in the packet's signature */
	uint32_t seq;
	uint32_t flow_id;       /* gateway flow hash of the 5-tuple sent */
	uint16_t pg_id;
	uint16_t flags;         /* LAT_TRACE_* */
	uint32_t reserved;      /* 0 */
};

struct lat_trace_rx {
	uint64_t tx_tsc;        /* from the signature */
	uint64_t rx_tsc;        /* when its receive burst was polled */
	uint32_t seq;
	uint16_t pg_id;
	uint16_t reserved;      /* 0 */
};

struct lat_trace_hdr {
	char magic[8];
	uint32_t version;
	uint32_t hdr_len;
	uint32_t tx_rec_len;
	uint32_t rx_rec_len;
	uint64_t tsc_hz;
	uint64_t tsc_start;     /* the schedule's start (report: tsc_start) */
	uint64_t tx_records;
	uint64_t rx_records;
	uint64_t tx_overflow;
	uint64_t rx_overflow;
};

_Static_assert(sizeof(struct lat_trace_tx) == 24, "TX record layout");
_Static_assert(sizeof(struct lat_trace_rx) == 24, "RX record layout");
_Static_assert(sizeof(struct lat_trace_hdr) == 72, "header layout");
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the trace file is little-endian and written as the structs lie"
#endif

struct lat_trace {
	struct lat_trace_tx *tx;
	struct lat_trace_rx *rx;
	uint64_t cap;           /* records of each kind the arrays hold */
	/* Records offered: the first min(n, cap) are stored, the rest are
	 * overflow. A count, not an index, so that a rewind (a refused TX
	 * burst) is right whether or not the tail had overflowed. */
	uint64_t n_tx;
	uint64_t n_rx;
	size_t bytes;           /* of each mapping */
};

/* Map and fault in room for cap records of each kind. Returns 0, or -1 with
 * a reason in err. */
int lat_trace_alloc(struct lat_trace *t, uint64_t cap, char *err,
		    size_t errlen);
void lat_trace_free(struct lat_trace *t);

/* Write the trace to path atomically (tmp file + fsync + rename). Returns
 * 0, or -1 with a reason in err. */
int lat_trace_write(const struct lat_trace *t, const char *path,
		    uint64_t tsc_hz, uint64_t tsc_start, char *err,
		    size_t errlen);

static inline uint64_t lat_trace_stored(uint64_t n, uint64_t cap)
{
	return n < cap ? n : cap;
}

static inline void lat_trace_add_tx(struct lat_trace *t, uint16_t pg_id,
				    uint32_t seq, uint64_t tsc,
				    uint32_t flow_id, uint16_t flags)
{
	uint64_t i = t->n_tx++;
	struct lat_trace_tx *r;

	if (__builtin_expect(i >= t->cap, 0))
		return;
	r = &t->tx[i];
	r->tx_tsc = tsc;
	r->seq = seq;
	r->flow_id = flow_id;
	r->pg_id = pg_id;
	r->flags = flags;
	r->reserved = 0;
}

/* The last n TX records were for packets the PMD refused: they were never
 * sent, and their seqs will be sent again (latency.h: lat_tx_rewind). */
static inline void lat_trace_rewind_tx(struct lat_trace *t, uint64_t n)
{
	t->n_tx -= n;
}

static inline void lat_trace_add_rx(struct lat_trace *t, uint16_t pg_id,
				    uint32_t seq, uint64_t tx_tsc,
				    uint64_t rx_tsc)
{
	uint64_t i = t->n_rx++;
	struct lat_trace_rx *r;

	if (__builtin_expect(i >= t->cap, 0))
		return;
	r = &t->rx[i];
	r->tx_tsc = tx_tsc;
	r->rx_tsc = rx_tsc;
	r->seq = seq;
	r->pg_id = pg_id;
	r->reserved = 0;
}

#endif
