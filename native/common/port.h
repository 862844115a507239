/*
 * port.h: ethdev port bring-up shared by serpens-gen, serpens-wire and
 * serpensd.
 *
 * Why: every data-plane process opens its ports the same way (one RX and one
 * TX queue, a pktmbuf pool, start, wait for link), and a failure must say
 * which port and which step failed. Steps that cannot continue call rte_exit
 * with the reason; steps the caller may want to retry return an error.
 */
#ifndef SERPENS_PORT_H
#define SERPENS_PORT_H

#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_mempool.h>

#define PORT_DEFAULT_RXD 1024
#define PORT_DEFAULT_TXD 1024

/* Create a pktmbuf pool of n mbufs (default data room) or rte_exit. */
struct rte_mempool *port_pool_create(const char *name, unsigned int n,
				     unsigned int cache);

/* The same with room for `data` bytes of packet per mbuf (after the
 * headroom), for frames longer than the default 2048 bytes. */
struct rte_mempool *port_pool_create_sized(const char *name, unsigned int n,
					   unsigned int cache, uint32_t data);

/* rte_exit unless port is a valid, probed port id. */
void port_check_valid(uint16_t port);

/* Configure one RX and one TX queue on port (RX mbufs from pool), enable
 * promiscuous mode where supported. rte_exit on failure. */
void port_configure(uint16_t port, struct rte_mempool *pool);

/* rte_eth_dev_start, retried every 200 ms for up to retry_s seconds (a memif
 * client fails to start while its server is absent). Returns 0 or the last
 * negative error. Gives up early (returning -EINTR) if sig_quit is set. */
int port_start(uint16_t port, double retry_s);

/* Poll the link every 10 ms for up to timeout_s seconds.
 * Returns 1 when up, 0 on timeout, -1 when interrupted by sig_quit. */
int port_wait_link(uint16_t port, double timeout_s);

/* rte_eth_stats_get; on failure logs and returns zeroed stats. */
void port_stats(uint16_t port, struct rte_eth_stats *st);

/* Stop and close the port, logging (not exiting) on errors. */
void port_shutdown(uint16_t port);

#endif
