/*
 * gp_hold.h: the global proxy's hold buffers — per (SFC, position), a bounded FIFO of packets that arrived
 * while no instance of that NF was ready (paper Sec. II-B4: "even if all instances of an NF are destroyed,
 * the packet can be temporarily accommodated on the proxy").
 *
 * Why bounded and lazily allocated: 512 pairs exist but few are ever empty of instances; a pair's buffer
 * is allocated the first time it holds a packet, and a full one drops (counted) rather than grow without
 * bound while an instance takes milliseconds to start. Entries are opaque pointers (mbufs in the proxy),
 * so the unit test runs without DPDK.
 */
#ifndef SERPENS_GP_HOLD_H
#define SERPENS_GP_HOLD_H

#include <stdint.h>

#include "gp_dir.h"

struct gp_hold {
	void **q;           /* cap entries; NULL until the pair first holds a packet */
	uint32_t head;      /* index of the oldest entry */
	uint32_t count;
	uint64_t since_tsc; /* when the oldest entry now held arrived (the buffer went non-empty) */
};

struct gp_holds {
	uint32_t cap;       /* packets per pair */
	uint64_t total;     /* packets held over all pairs */
	struct gp_hold h[GP_MAX_SFCS][GP_MAX_POS];
};

void gp_holds_init(struct gp_holds *hs, uint32_t cap);
/* Free the buffers; the caller has taken (and freed) the entries. */
void gp_holds_fini(struct gp_holds *hs);
/* Append p to the pair's FIFO. 0, or -1 when it is full (or cannot be allocated): the caller drops p. */
int gp_hold_push(struct gp_holds *hs, unsigned int sfc, unsigned int pos, void *p, uint64_t now);
/* Take up to max of the oldest entries, in arrival order; returns how many. */
unsigned int gp_hold_pop(struct gp_holds *hs, unsigned int sfc, unsigned int pos, void **out, unsigned int max);
static inline uint32_t gp_hold_count(const struct gp_holds *hs, unsigned int sfc, unsigned int pos)
{
	return hs->h[sfc][pos].count;
}

#endif
