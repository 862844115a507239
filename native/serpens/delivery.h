/*
 * delivery.h: the chaining axis — how packets get into an SFC's instances, between its NFs and back out
 * (serpensd --chaining; docs/chaining.md). One ops table per mechanism, one file each, selected once at
 * start-up like sp_state_ops:
 *
 *   consolidated  delivery_consolidated.c  Serpens: the whole SFC in one instance (the Chainer's label
 *                                          array); the gateway's Router picks the instance.
 *   local-proxy   delivery_local_proxy.c   SAND: one instance per NF; a proxy process per server
 *                                          (local_proxy.c, serpens-runtime -P) carries every batch from
 *                                          the gateway to the first NF, from NF to NF, and to transmit.
 *   global-proxy  delivery_global_proxy.c  Fission: one instance per NF; one proxy for the deployment,
 *                                          reached over a memif link (serpens-gproxy,
 *                                          native/gproxy), crossed twice per hop.
 *
 * The contract every implementation keeps:
 *
 *  - Rings. serpensd creates every ring (instance rx/tx in setup_shared, the proxy's in ops->setup).
 *    Each ring has one producer and one consumer. An instance's rx ring is fed by exactly one side — the
 *    gateway (consolidated) or the proxy (proxy modes) — and its tx ring is drained by that same side. A
 *    proxy's rx ring is fed by the gateway, its tx ring drained by serpensd's transmit.
 *  - Who counts what. The gateway counts sfcs[].rx when it classifies a packet and sfcs[].tx when the port
 *    takes it; a drop on the way in (no instance / no proxy, ring full) in sfcs[].no_instance / ring_full.
 *    Between NFs, the proxy counts every hop in delivery.hop[sfc][pos] (sp_hop_stats, ctl.h): in, out,
 *    and a drop reason for every packet that does not go on. So sfc.rx = sfc.tx + every drop counter +
 *    what is queued.
 *  - Waking. Whoever enqueues on a sleeper's ring wakes it with the shared rule of hop.c: once wake_batch
 *    packets wait or the oldest has waited flush_us; with --colocate the waker hands its core over and
 *    waits until the sleeper went back to sleep. The same code runs for serpensd → instance, serpensd →
 *    proxy and proxy → instance, so every hop pays the same queueing.
 *  - Tags. Between processes a packet carries its SFC, its next label and a TSC stamp in an mbuf dynamic
 *    field (struct sp_chain_tag, SP_CHAIN_TAG_NAME): the gateway writes sfc and label 0 with stamp 0; an NF
 *    instance writes the next label (SP_LABEL_END, or the position of the next NF) and the stamp of its
 *    hand-over; the proxy reads them. Consolidated chaining never touches it.
 *
 * The data plane calls route / poll / transmit from its one loop; the control thread calls the rest.
 */
#ifndef SERPENS_DELIVERY_H
#define SERPENS_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>
#include <rte_mbuf.h>

#include "chain_tag.h"
#include "ctl.h"

struct serpensd;

struct sp_delivery_ops {
	const char *name;       /* the --chaining value */
	enum sp_chaining mode;
	bool per_nf;            /* an instance runs one position (start_instance starts one per NF) */
	/* start-up, before READY: rings, helper processes. 0, or -1 with a message on stderr. */
	int (*setup)(struct serpensd *d);
	/* (a) a burst from the port: classify each packet (gateway.h) and hand it to its SFC's first hop,
	 * or drop and count it */
	void (*route)(struct serpensd *d, struct rte_mbuf **m, unsigned int n);
	/* (b) once per loop iteration: wake whoever is due (hop.c's rule). Returns the TSC time it cost the
	 * data plane, less the woken processes' own work (the gateway stage's wake part). */
	uint64_t (*poll)(struct serpensd *d, uint64_t now, uint64_t flush_tsc);
	/* (c) send what left the SFCs; returns how many packets it took off rings */
	unsigned int (*transmit)(struct serpensd *d);
	/* control thread: a child exited; true if it was this mechanism's (e.g. the proxy: restarted) */
	bool (*reaped)(struct serpensd *d, pid_t pid, int status);
	/* control thread: an instance stopped and its last output sits in its tx ring; make sure the side that
	 * drains it runs (consolidated: serpensd polls anyway) */
	void (*collect)(struct serpensd *d);
	/* control thread: wait until the data path no longer uses an instance slot that left the ready set
	 * (after the generation was bumped); consolidated: the routing table's grace period covers it */
	void (*quiesce)(struct serpensd *d);
	/* the `delivery` object of stats (NULL, or returning NULL: none) and the proxy stage of stats.stages
	 * (NULL: none) */
	json_t *(*stats)(struct serpensd *d);
	json_t *(*stage)(struct serpensd *d);
	/* shutdown, after the data plane stopped and every instance was retired */
	void (*shutdown)(struct serpensd *d);
};

extern const struct sp_delivery_ops sp_delivery_consolidated;
extern const struct sp_delivery_ops sp_delivery_local_proxy;
extern const struct sp_delivery_ops sp_delivery_global_proxy;

/* The ops of a --chaining value, or NULL. */
const struct sp_delivery_ops *sp_delivery_find(const char *name);
/* The accepted values, joined by sep (static storage). */
const char *sp_delivery_names(const char *sep);

#endif /* SERPENS_DELIVERY_H */
