/*
 * latency.h: the latency signature of serpens-gen and its per-pg_id
 * receive-side accounting.
 *
 * Why: latency is measured like TRex's latency streams (flow_stats
 * rule_type "latency", keyed by pg_id): each packet of such a stream carries
 * a 16-byte signature in its LAST 16 bytes, so the packet's headers stay
 * whatever the profile says and an NF that rewrites headers does not destroy
 * it. All fields are in network byte order:
 *
 *   offset len-16  u16 magic 0x5E59
 *          len-14  u16 pg_id
 *          len-12  u32 seq      (per pg_id, from 0)
 *          len-8   u64 tsc      (TSC just before rte_eth_tx_burst)
 *
 * The generator sends and receives on the same lcore, so one TSC clock
 * serves both ends: latency = (rx_tsc - tx_tsc) / tsc_hz.
 */
#ifndef SERPENS_LATENCY_H
#define SERPENS_LATENCY_H

#include <stdint.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_hash_crc.h>
#include <rte_mbuf.h>

#include "fe.h"
#include "hist.h"
#include "lat_trace.h"

#define LAT_SIG_LEN 16
#define LAT_MAGIC 0x5E59
#define LAT_MIN_PKT (14 + 20 + 8 + LAT_SIG_LEN)
#define LAT_MAX_PG 64

struct lat_sig {
	rte_be16_t magic;
	rte_be16_t pg_id;
	rte_be32_t seq;
	rte_be64_t tsc;
} __rte_packed;

/* Where the L4 checksum of a latency packet is (found in the template). */
enum lat_l4 { LAT_L4_NONE, LAT_L4_IPV4, LAT_L4_IPV6 };

/* TX side, one per latency stream. */
struct lat_tx {
	uint32_t seq;
	uint16_t pg_id;
	uint8_t l4;          /* enum lat_l4 */
	uint16_t ip_off;
	uint16_t l4_off;
	uint16_t cs_off;
	uint16_t fid_ip;     /* IPv4 header offset for the flow id; 0: none */
	struct lat_trace *trace;   /* --latency-trace, or NULL */
};

/* RX side, one per pg_id. */
struct lat_pg {
	uint16_t pg_id;
	uint64_t rx_packets;
	uint64_t rx_bytes;      /* frames without FCS, for flow_stats */
	uint64_t expected;      /* next seq we expect */
	uint64_t out_of_order;
	struct hist hist;
};

struct lat_table {
	unsigned int n;
	double ns_per_tsc;
	uint64_t tsc_floor;     /* signatures older than this are not ours */
	struct lat_trace *trace;   /* --latency-trace, or NULL */
	struct lat_pg pg[LAT_MAX_PG];
};

/* Find checksum offsets for a latency template (IPv4/IPv6 + UDP/TCP,
 * optional VLAN tags). Leaves l4 = LAT_L4_NONE when not applicable. */
void lat_tx_init(struct lat_tx *t, uint16_t pg_id, const uint8_t *pkt,
		 uint16_t len);

/* Add a pg_id to the table; returns its slot or -1 (full/duplicate). */
int lat_table_add(struct lat_table *lt, uint16_t pg_id);
void lat_table_free(struct lat_table *lt);

/*
 * The flow id of a latency packet in the trace: serpensd's gateway flow hash
 * (native/serpens/gateway.h: gw_flow_hash), computed the same way over the
 * 5-tuple as sent (after the field engine), so that the trace's flows are
 * the flows serpensd routes and moves: CRC32C (rte_hash_crc, seed 0x5e59)
 * of the u64 src << 32 | dst, then of sport << 32 | dport << 16 | proto,
 * each field as its network-order bytes loaded into a little-endian
 * integer; ports are 0 unless the protocol is UDP or TCP. 0 for anything
 * but IPv4. harness/traffic/latency_trace.py: flow_id() is the same in
 * Python.
 */
static inline uint32_t lat_flow_id(const struct lat_tx *t, const uint8_t *d,
				   uint16_t len)
{
	const uint8_t *ip = d + t->fid_ip;
	uint16_t sport = 0, dport = 0;
	uint32_t src, dst, ihl;
	uint64_t a, b;
	uint8_t proto;

	if (t->fid_ip == 0)
		return 0;
	ihl = (uint32_t)(ip[0] & 0x0f) * 4;
	proto = ip[9];
	memcpy(&src, ip + 12, 4);
	memcpy(&dst, ip + 16, 4);
	if ((proto == 6 || proto == 17) && t->fid_ip + ihl + 4 <= len) {
		memcpy(&sport, ip + ihl, 2);
		memcpy(&dport, ip + ihl + 2, 2);
	}
	a = (uint64_t)src << 32 | dst;
	b = (uint64_t)sport << 32 | (uint64_t)dport << 16 | proto;
	return rte_hash_crc_8byte(b, rte_hash_crc_8byte(a, 0x5e59));
}

/* Write the signature into each packet and fix the checksums; with a trace,
 * record each packet (before the burst is offered: a refusal rewinds). */
static inline void lat_stamp(struct lat_tx *t, struct rte_mbuf **pkts,
			     unsigned int n, uint64_t tsc)
{
	struct lat_sig s;
	unsigned int i;
	uint8_t *d;

	s.magic = RTE_BE16(LAT_MAGIC);
	s.pg_id = rte_cpu_to_be_16(t->pg_id);
	s.tsc = rte_cpu_to_be_64(tsc);
	for (i = 0; i < n; i++) {
		d = rte_pktmbuf_mtod(pkts[i], uint8_t *);
		if (t->trace != NULL)
			lat_trace_add_tx(t->trace, t->pg_id, t->seq, tsc,
					 lat_flow_id(t, d, pkts[i]->data_len),
					 0);
		s.seq = rte_cpu_to_be_32(t->seq++);
		memcpy(d + pkts[i]->data_len - LAT_SIG_LEN, &s, sizeof(s));
		if (t->l4 == LAT_L4_IPV4) {
			fe_fix_l4_ipv4(d + t->ip_off, d + t->l4_off,
				       d + t->cs_off);
			fe_fix_ipv4(d + t->ip_off);
		} else if (t->l4 == LAT_L4_IPV6) {
			fe_fix_l4_ipv6(d + t->ip_off, d + t->l4_off,
				       d + t->cs_off);
		}
	}
}

/* The last n packets stamped were refused by the PMD and freed: they were
 * not sent, so their seqs (and trace records) go to the packets built in
 * their place, and the seqs of a pg_id stay contiguous. */
static inline void lat_tx_rewind(struct lat_tx *t, unsigned int n)
{
	t->seq -= n;
	if (t->trace != NULL)
		lat_trace_rewind_tx(t->trace, n);
}

/* n packets counted as sent into a full ring without being built
 * (traffic.c: tx_into_full_ring): they take seqs, and are in the trace as
 * unbuilt packets that never come back. */
static inline void lat_tx_unbuilt(struct lat_tx *t, uint64_t n, uint64_t tsc)
{
	uint64_t i;

	if (t->trace != NULL)
		for (i = 0; i < n; i++)
			lat_trace_add_tx(t->trace, t->pg_id,
					 (uint32_t)(t->seq + i), tsc, 0,
					 LAT_TRACE_UNBUILT);
	t->seq += (uint32_t)n;
}

static inline struct lat_pg *lat_find(struct lat_table *lt, uint16_t pg_id)
{
	unsigned int i;

	for (i = 0; i < lt->n; i++)
		if (lt->pg[i].pg_id == pg_id)
			return &lt->pg[i];
	return NULL;
}

/* Account one received signature (sig points at the last 16 bytes of a
 * frame of len bytes). */
static inline void lat_rx(struct lat_table *lt, const uint8_t *sig,
			  uint32_t len, uint64_t rx_tsc)
{
	struct lat_sig s;
	struct lat_pg *pg;
	uint64_t tsc, seq;

	memcpy(&s, sig, sizeof(s));
	if (s.magic != RTE_BE16(LAT_MAGIC))
		return;
	pg = lat_find(lt, rte_be_to_cpu_16(s.pg_id));
	tsc = rte_be_to_cpu_64(s.tsc);
	if (pg == NULL || tsc > rx_tsc || tsc < lt->tsc_floor)
		return;
	seq = rte_be_to_cpu_32(s.seq);
	if (lt->trace != NULL)
		lat_trace_add_rx(lt->trace, pg->pg_id, (uint32_t)seq, tsc,
				 rx_tsc);
	pg->rx_packets++;
	pg->rx_bytes += len;
	hist_record(&pg->hist, (uint64_t)((double)(rx_tsc - tsc) *
					  lt->ns_per_tsc));
	if (seq >= pg->expected)
		pg->expected = seq + 1;
	else
		pg->out_of_order++;
}

#endif
