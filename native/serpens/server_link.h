/*
 * server_link.h: Serpens across servers (docs/multiserver.md). serpensd --link gateway|worker puts a
 * VXLAN link (vxlan.h) between servers:
 *
 *  - gateway: port 0 faces the generator as on one server; the link port (the vdev net_af_packet0) faces
 *    the workers. Its Router has a second table, per SFC and bucket: local (the delivery mechanism of
 *    delivery.h takes the packet, as on one server) or worker k (encapsulate, send on the link). Flows
 *    are pinned: a flow stays where its first packet went while it is active, so a new route (scale-out)
 *    moves only new flows. What comes back on the link is decapsulated and sent on port 0.
 *  - worker: port 0 is the link. Every received frame is decapsulated before the Gateway sees it (the SFC
 *    tag must be the SFC the inner packet classifies to); every frame sent is encapsulated back to the
 *    gateway with the packet's SFC tag (an mbuf dynamic field, chain_tag.h).
 *
 * The data plane calls server_link_route / server_link_poll from its loop; the control thread calls
 * server_link_request (link_route) and server_link_stats.
 */
#ifndef SERPENS_SERVER_LINK_H
#define SERPENS_SERVER_LINK_H

#include <stdint.h>

#include <jansson.h>
#include <rte_mbuf.h>

struct serpensd;

enum sl_role { SL_NONE = 0, SL_GATEWAY, SL_WORKER };
extern enum sl_role sl_role;

#define SL_MAX_PEERS 8

/* --link ROLE, --link-ip A.B.C.D, --link-peer IP,MAC (repeatable: the gateway's workers 1.., a worker's
 * gateway), --link-port DEVICE (default net_af_packet0; on a testbed the NIC): 0, or -1 with the reason. */
int server_link_option(const char *opt, const char *arg, char *why, size_t whylen);
/* after setup_port: the link port, the tag field, the worker's tx encapsulation. 0 or -1 (said why). */
int server_link_setup(struct serpensd *d);
/* a burst from port 0: returns how many of m[] (compacted) go on to the delivery mechanism */
unsigned int server_link_route(struct serpensd *d, struct rte_mbuf **m, unsigned int n);
/* gateway: receive from the link, send on port 0; returns packets handled */
unsigned int server_link_poll(struct serpensd *d);
/* control thread */
json_t *server_link_request(json_t *req);
json_t *server_link_stats(void);
/* frames the kernel dropped for a full af_packet rx ring on this interface since the last call */
uint64_t af_packet_ring_drops(int ifindex);
void server_link_shutdown(void);

#endif /* SERPENS_SERVER_LINK_H */
