/*
 * stream.h: the streams serpens-gen sends, loaded from the JSON that
 * trex-stl-lib's STLStream.to_json() produces.
 *
 * Why: the harness describes traffic once, as TRex STL streams, and runs it
 * either on TRex or on this generator. Loading validates the whole supported
 * subset up front and refuses anything else with the stream index and the
 * field, so an unsupported profile fails before any packet is sent instead
 * of being silently approximated.
 */
#ifndef SERPENS_STREAM_H
#define SERPENS_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include <rte_mbuf.h>

#include "fe.h"
#include "latency.h"
#include "pace.h"

#define GEN_MAX_STREAMS 64
/* The longest frame (without FCS) a stream may have: 9 KiB of IP packet
 * (TRex's udp_inc_len_9k) + Ethernet + two VLAN tags, rounded up. */
#define GEN_MAX_PKT 9600
/* Frames up to this fit one mbuf of the default pool (RTE_MBUF_DEFAULT_
 * DATAROOM); longer streams build their packets in the jumbo pool. */
#define GEN_STD_PKT 2048

enum gen_mode {
	GEN_MODE_CONTINUOUS,
	GEN_MODE_SINGLE_BURST,
	GEN_MODE_MULTI_BURST,
};

struct gen_stream {
	/* Hot: read on every loop iteration. */
	struct pace pace;       /* the schedule (set at start, isg applied) */
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t full_until;    /* TSC: the TX ring was full, wait */
	uint64_t full_mark;     /* due count up to which the full ring is
				 * accounted for (see traffic.c) */
	uint8_t *tmpl;          /* the frame, without FCS */
	struct rte_mbuf *proto; /* pre-built copy, for streams whose packets
				 * never change (no field engine, no
				 * latency): sent by reference (refcnt) */
	uint16_t len;
	uint8_t has_fe;
	int8_t lat;             /* slot in the latency table, or -1 */
	struct lat_tx ltx;
	struct fe_prog fe;
	struct rte_mempool *pool; /* where its packets are built (jumbo or not) */
	/* Cold: for the report. */
	unsigned int index;     /* position in the input file */
	double pps;             /* after rate conversion and --mult */
	double isg_us;
	uint8_t mode;           /* enum gen_mode */
	uint8_t pg_stats;       /* flow_stats rule_type "stats": counted per
				 * pg_id like a latency stream, reported
				 * without latency */
	uint64_t total;         /* bursts: packets in the stream (else 0) */
	uint64_t ppb;           /* multi_burst: packets per burst (else 0) */
	double ibg_us;          /* multi_burst: gap between bursts */
	int pg_id;              /* -1 when not a latency stream */
	uint64_t intended;      /* due count at the end of the schedule */
};

struct stream_set {
	unsigned int n;
	unsigned int n_input;     /* streams in the file, incl. disabled */
	struct gen_stream *s;     /* n entries */
	struct lat_table lat;
};

/* Load and validate path, scaling every rate by mult. Returns 0, or -1
 * with a message naming the stream index and field in err. */
int streams_load(const char *path, double mult, struct stream_set *set,
		 char *err, size_t errlen);
void streams_free(struct stream_set *set);
double streams_offered_pps(const struct stream_set *set);
/* The longest frame of any stream. */
uint16_t streams_max_len(const struct stream_set *set);
const char *stream_mode_name(const struct gen_stream *s);

#endif
