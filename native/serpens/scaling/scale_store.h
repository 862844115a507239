/*
 * scale_store.h: an instance's private per-flow tables, for the scaling protocols that keep flow state
 * inside instances (snf, s6, chc, opennf; scale_shared.h). Per-flow|write tables (a flow's own state:
 * FW's connections, NAT's mappings, the synthetic NF's counters) live here, in the instance's heap,
 * where no other instance can see them; everything else stays where the state backend puts it (a
 * per-flow|read table is configuration written at deployment, not flow state).
 *
 * Every entry remembers the gateway flow hash of the packet being handled when it was created (the
 * router writes it into the mbuf: delivery_consolidated.c), so a move of router buckets finds exactly
 * the entries of the flows it moves, whatever the NF keys them by.
 */
#ifndef SERPENS_SCALE_STORE_H
#define SERPENS_SCALE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "serpens/state_ops.h"

#define SC_MAX_TABLES 32

/* Install the store in this process: per-flow|write tables are created here, the rest by `next` (the
 * state backend's creator, or NULL for the State Manager). */
void sc_store_install(sp_create_fn next);
void sc_store_forget(void);               /* the NFs were unloaded: drop every table */
void sc_store_set_flow(uint32_t flow);    /* the flow of the packet the NF is about to handle */
uint64_t sc_store_entries(void);
bool sc_store_has_flow(uint32_t flow); /* entries of this flow are here */
/* Called with the flow of every entry created (S6 registers its ownership in the directory). */
void sc_store_on_new(void (*fn)(uint32_t flow));

/* An entry, for export. */
struct sc_ref {
	uint32_t flow;
	uint16_t table;
	uint32_t idx;
};

/* The entries of flows in the buckets of `mask` (flow == 0 and mask NULL: every entry of that one flow
 * `flow`), sorted by flow, into refs (at most max); returns how many. */
unsigned int sc_store_collect(const uint64_t *mask, uint32_t flow, struct sc_ref *refs, unsigned int max);
void sc_store_get_ref(const struct sc_ref *r, const void **key, uint32_t *key_size, const void **value,
		      uint32_t *value_size);
void sc_store_drop_ref(const struct sc_ref *r);
/* Insert or overwrite an entry received from another instance; 0 or -errno. */
int sc_store_import(uint16_t table, const void *key, uint32_t key_size, const void *value,
		    uint32_t value_size, uint32_t flow);

#endif /* SERPENS_SCALE_STORE_H */
