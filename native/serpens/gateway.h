/*
 * gateway.h: the Gateway's per-packet steps, shared by every delivery mechanism's route (delivery.h):
 * parse the 5-tuple, match the SFC rules in order (first match wins), hash the flow (CRC32) so that a
 * flow always takes the same path.
 */
#ifndef SERPENS_GATEWAY_H
#define SERPENS_GATEWAY_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_hash_crc.h>
#include <rte_mbuf.h>

#include "serpensd.h"

struct pkt_key {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint8_t proto;
	bool ok;
};

static inline void gw_parse(struct rte_mbuf *m, struct pkt_key *k)
{
	const uint8_t *d = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m), ihl;

	k->ok = false;
	if (len < 34 || d[12] != 0x08 || d[13] != 0x00)
		return;
	ihl = (uint32_t)(d[14] & 0x0f) * 4;
	memcpy(&k->src, d + 26, 4);
	memcpy(&k->dst, d + 30, 4);
	k->proto = d[23];
	k->sport = k->dport = 0;
	if ((k->proto == 6 || k->proto == 17) && 14 + ihl + 4 <= len) {
		memcpy(&k->sport, d + 14 + ihl, 2);
		memcpy(&k->dport, d + 14 + ihl + 2, 2);
	}
	k->ok = true;
}

static inline int gw_classify(const struct route_table *rt, const struct pkt_key *k)
{
	uint32_t i;

	for (i = 0; i < rt->nsfc; i++) {
		const struct sp_match *m = &rt->match[i];

		if ((k->dst & m->dst_mask) == m->dst && (k->src & m->src_mask) == m->src &&
		    (!m->proto || m->proto == k->proto) && (!m->dport || m->dport == k->dport))
			return (int)i;
	}
	return -1;
}

static inline uint32_t gw_flow_hash(const struct pkt_key *k)
{
	uint64_t a = (uint64_t)k->src << 32 | k->dst;
	uint64_t b = (uint64_t)k->sport << 32 | (uint64_t)k->dport << 16 | k->proto;

	return rte_hash_crc_8byte(b, rte_hash_crc_8byte(a, 0x5e59));
}

/* The Gateway's admission of one packet, the same in every delivery mechanism: parse and classify it;
 * a packet no SFC takes (not IPv4, or no rule matches) is a gateway miss and freed (-1); otherwise its
 * SFC's rx is counted and its index in rt is returned. k is filled for the flow hash. */
static inline int gw_admit(struct serpensd *d, const struct route_table *rt, struct rte_mbuf *m,
			   struct pkt_key *k)
{
	int si;

	gw_parse(m, k);
	si = (k->ok && rt) ? gw_classify(rt, k) : -1;
	if (si < 0) {
		d->gateway_miss++;
		rte_pktmbuf_free(m);
		return -1;
	}
	d->ctl->sfcs[rt->sfc_id[si]].rx++;
	return si;
}

#endif /* SERPENS_GATEWAY_H */
