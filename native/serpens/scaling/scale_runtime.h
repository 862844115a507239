/*
 * scale_runtime.h: an instance's side of the scaling protocols that move flow state (scale_shared.h):
 * its inbox, the packets it holds while their flow's state is on its way, exporting the flows of a move
 * once it has seen their last packet, importing them, and S6's pulls. The runtime (runtime.c) takes its
 * packets through sc_take instead of straight from its rx ring when a protocol is active.
 */
#ifndef SERPENS_SCALE_RUNTIME_H
#define SERPENS_SCALE_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_ring.h>

struct sp_ctl;
struct sc_ref;

/* Once per process, before any NF is loaded: find the rings and install the private store when the
 * protocol needs one. Returns false (protocol `shared`: nothing to do), true, or exits via the runtime's
 * failure path (err set, -1). */
int sc_runtime_setup(struct sp_ctl *ctl, char *err, size_t errlen);
bool sc_runtime_active(void);
/* An instance starts serving slot `slot` (its NFs are loaded), and stops (they are about to be). */
void sc_runtime_begin(int slot);
void sc_runtime_end(void);
/* Up to `burst` packets to run now: packets handed over by the OpenNF controller, packets whose flow's
 * state arrived, then new packets from rx whose flow need not wait. Also reads the inbox and does the
 * protocol work that is due. */
unsigned int sc_take(struct rte_ring *rx, struct rte_mbuf **m, unsigned int burst);
/* Work is pending that needs no new packet: the instance must not sleep. */
bool sc_pending(void);

/* Between scale_runtime.c and scale_chc.c (CHC's external store). */
int chc_connect(struct sp_ctl *ctl, char *err, size_t errlen);
void chc_disconnect(void);
int chc_flush(uint64_t move, const uint64_t *mask);   /* the old side: returns flows flushed, or -1 */
/* The new side: fetch (and delete) these flows of `move` from the store; *done: the old side's record that
 * it flushed `*flushed` flows is there. 0, or -1 (the store failed). */
int chc_fetch(uint64_t move, const uint32_t *flows, unsigned int n, int *found, bool *done,
	      unsigned int *flushed);
/* The entries refs[0..n) of `flows` flows left this instance: drop them and count the move's work. */
void sc_exported(const struct sc_ref *refs, unsigned int n, unsigned int flows);
/* per-entry import of a blob (the STATE message data format), shared with the message path */
int sc_import_blob(const uint8_t *data, uint32_t len, uint32_t nent, uint32_t flow);
unsigned int sc_pack_flow(const struct sc_ref *refs, unsigned int n, uint8_t *buf, uint32_t room,
			  uint32_t *len, unsigned int *consumed);

#endif /* SERPENS_SCALE_RUNTIME_H */
