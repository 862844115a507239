/*
 * server_link_int.h: what the server link's data path (server_link.c: options, set-up, encapsulation,
 * the gateway's routing and flow table) and its control side (server_link_ctl.c: link_route, stats)
 * share inside serpensd. Not for other files: they use server_link.h.
 */
#ifndef SERPENS_SERVER_LINK_INT_H
#define SERPENS_SERVER_LINK_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "server_link.h"
#include "serpensd.h"
#include "vxlan.h"

#define SL_LOCAL (-1) /* a bucket or flow served by this server's own instances */

struct sl_link {
	struct vx_endpoint self;
	struct vx_endpoint peer[SL_MAX_PEERS]; /* gateway: peer[k-1] is server k; worker: peer[0], its gateway */
	unsigned int npeers;
	uint16_t port;        /* the link port */
	int ifindex;          /* its kernel interface (af_packet), 0: not known */
	uint64_t ring_drops;  /* frames the kernel dropped for a full af_packet rx ring (server_link_ctl.c) */
	struct serpensd *d;
};
extern struct sl_link SL;

/* The gateway's server table: per SFC id and Router bucket, SL_LOCAL or the peer index (server k - 1).
 * Built by the control thread from sl_dest_now, published with one pointer store like routes.c's table. */
#define SL_MAX_STEER 4   /* (SFC, destination address) pairs steered by destination port */
#define SL_NO_STEER (-2) /* in sl_steer.dest: the port is not steered, its bucket decides */
/* Steering by destination port (link_steer): packets of an SFC to one address go, by their destination
 * port, to the server that holds that port — the replies to a NAT's external address reach the worker
 * whose share of the pool gave the port out, which holds the flow's mapping. */
struct sl_steer {
	uint16_t sfc;
	uint32_t dst;            /* network byte order */
	int8_t dest[65536];      /* per destination port: SL_NO_STEER, SL_LOCAL or a peer index */
};
struct link_table {
	int8_t dest[SP_MAX_SFCS][RT_BUCKETS];
	bool remote;    /* any bucket or port is remote: otherwise the gateway's path is the one-server path */
	unsigned int nsteer;
	struct sl_steer steer[SL_MAX_STEER];
};
extern struct link_table *sl_table;
extern int8_t sl_dest_now[SP_MAX_SFCS][RT_BUCKETS];

/* Counters: the data plane writes, the control thread reads (64-bit stores do not tear on x86-64). */
struct sl_counters {
	uint64_t rx_frames, not_vxlan, not_mine, bad, unknown_sfc, tag_mismatch, decap; /* the link's receive */
	uint64_t out_sent, out_dropped;     /* gateway: decapsulated, sent to / refused by port 0 */
	uint64_t encap, encap_failed;       /* worker: frames encapsulated on the way out */
	uint64_t pin_evictions, pinned_moves, steered;
	uint64_t to[SL_MAX_PEERS], to_dropped[SL_MAX_PEERS], from[SL_MAX_PEERS];
	uint64_t sfc_remote_rx[SP_MAX_SFCS], sfc_remote_tx[SP_MAX_SFCS];
};
extern struct sl_counters SLC;

#endif /* SERPENS_SERVER_LINK_INT_H */
