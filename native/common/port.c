/*
 * port.c: ethdev port bring-up (see port.h).
 */
#include <errno.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_debug.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "port.h"
#include "sig.h"

struct rte_mempool *port_pool_create(const char *name, unsigned int n,
				     unsigned int cache)
{
	return port_pool_create_sized(name, n, cache, RTE_MBUF_DEFAULT_DATAROOM);
}

struct rte_mempool *port_pool_create_sized(const char *name, unsigned int n,
					   unsigned int cache, uint32_t data)
{
	struct rte_mempool *mp;

	if (data + RTE_PKTMBUF_HEADROOM > UINT16_MAX)
		rte_exit(EXIT_FAILURE, "mbuf pool %s: %u bytes of data room do "
			 "not fit in an mbuf\n", name, data);
	mp = rte_pktmbuf_pool_create(name, n, cache, 0,
				     (uint16_t)(data + RTE_PKTMBUF_HEADROOM),
				     rte_socket_id());
	if (mp == NULL)
		rte_exit(EXIT_FAILURE,
			 "cannot create mbuf pool %s (%u mbufs of %u B): %s "
			 "(are hugepages reserved?)\n",
			 name, n, data, rte_strerror(rte_errno));
	return mp;
}

void port_check_valid(uint16_t port)
{
	if (!rte_eth_dev_is_valid_port(port))
		rte_exit(EXIT_FAILURE,
			 "port %u does not exist (%u port(s) probed); pass a "
			 "device, e.g. --vdev net_memif0,role=client,"
			 "socket=PATH\n",
			 port, rte_eth_dev_count_avail());
}

static void port_setup_queues(uint16_t port, struct rte_mempool *pool,
			      const struct rte_eth_dev_info *info)
{
	uint16_t nb_rxd = PORT_DEFAULT_RXD, nb_txd = PORT_DEFAULT_TXD;
	struct rte_eth_txconf txconf = info->default_txconf;
	int ret;

	ret = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
	if (ret < 0)
		rte_exit(EXIT_FAILURE,
			 "port %u: cannot adjust descriptor counts: %s\n",
			 port, rte_strerror(-ret));
	ret = rte_eth_rx_queue_setup(port, 0, nb_rxd,
				     rte_eth_dev_socket_id(port), NULL, pool);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "port %u: rx queue setup failed: %s\n",
			 port, rte_strerror(-ret));
	ret = rte_eth_tx_queue_setup(port, 0, nb_txd,
				     rte_eth_dev_socket_id(port), &txconf);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "port %u: tx queue setup failed: %s\n",
			 port, rte_strerror(-ret));
}

void port_configure(uint16_t port, struct rte_mempool *pool)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	int ret;

	port_check_valid(port);
	memset(&conf, 0, sizeof(conf));
	ret = rte_eth_dev_info_get(port, &info);
	if (ret != 0)
		rte_exit(EXIT_FAILURE, "port %u: cannot get device info: %s\n",
			 port, rte_strerror(-ret));
	ret = rte_eth_dev_configure(port, 1, 1, &conf);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "port %u: configure failed: %s\n",
			 port, rte_strerror(-ret));
	port_setup_queues(port, pool, &info);
	ret = rte_eth_promiscuous_enable(port);
	if (ret != 0 && ret != -ENOTSUP)
		rte_exit(EXIT_FAILURE,
			 "port %u: cannot enable promiscuous mode: %s\n",
			 port, rte_strerror(-ret));
}

int port_start(uint16_t port, double retry_s)
{
	uint64_t hz = rte_get_timer_hz();
	uint64_t deadline = rte_get_timer_cycles() + (uint64_t)(retry_s * hz);
	int ret;

	for (;;) {
		ret = rte_eth_dev_start(port);
		if (ret == 0)
			return 0;
		if (sig_quit)
			return -EINTR;
		if (rte_get_timer_cycles() >= deadline)
			return ret;
		rte_delay_ms(200);
	}
}

int port_wait_link(uint16_t port, double timeout_s)
{
	uint64_t hz = rte_get_timer_hz();
	uint64_t deadline = rte_get_timer_cycles() + (uint64_t)(timeout_s * hz);
	struct rte_eth_link link;
	int ret;

	for (;;) {
		memset(&link, 0, sizeof(link));
		ret = rte_eth_link_get_nowait(port, &link);
		if (ret < 0)
			rte_exit(EXIT_FAILURE, "port %u: cannot get link: %s\n",
				 port, rte_strerror(-ret));
		if (link.link_status == RTE_ETH_LINK_UP)
			return 1;
		if (sig_quit)
			return -1;
		if (rte_get_timer_cycles() >= deadline)
			return 0;
		rte_delay_ms(10);
	}
}

void port_stats(uint16_t port, struct rte_eth_stats *st)
{
	int ret;

	memset(st, 0, sizeof(*st));
	ret = rte_eth_stats_get(port, st);
	if (ret != 0) {
		RTE_LOG(WARNING, USER1, "port %u: cannot read stats: %s\n",
			port, rte_strerror(-ret));
		memset(st, 0, sizeof(*st));
	}
}

void port_shutdown(uint16_t port)
{
	int ret;

	ret = rte_eth_dev_stop(port);
	if (ret != 0)
		RTE_LOG(WARNING, USER1, "port %u: stop failed: %s\n", port,
			rte_strerror(-ret));
	ret = rte_eth_dev_close(port);
	if (ret != 0)
		RTE_LOG(WARNING, USER1, "port %u: close failed: %s\n", port,
			rte_strerror(-ret));
}
