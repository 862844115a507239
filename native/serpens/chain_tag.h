/*
 * chain_tag.h: what a packet carries between processes in the proxy chainings (delivery.h's contract):
 * its SFC, its flow hash, the position it goes to next, and when the last NF handed it over — an mbuf dynamic field
 * that serpensd registers and every runtime and proxy looks up by name.
 */
#ifndef SERPENS_CHAIN_TAG_H
#define SERPENS_CHAIN_TAG_H

#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#define SP_CHAIN_TAG_NAME "serpens_chain_tag"

struct sp_chain_tag {
	uint64_t stamp; /* TSC when an NF's instance handed the packet over; 0: it came from the gateway */
	uint32_t hash;  /* the gateway's flow hash: every hop picks its instance by it */
	uint16_t sfc;
	uint8_t label;  /* the position it goes to next, or SP_LABEL_END */
	uint8_t pad;
};

/* serpensd registers the field (before any mbuf carries it), every secondary looks it up; both return
 * its offset, or -1 with rte_errno set. */
int sp_chain_tag_register(void);
int sp_chain_tag_lookup(void);

static inline struct sp_chain_tag *sp_chain_tag(struct rte_mbuf *m, int off)
{
	return RTE_MBUF_DYNFIELD(m, off, struct sp_chain_tag *);
}

#endif /* SERPENS_CHAIN_TAG_H */
