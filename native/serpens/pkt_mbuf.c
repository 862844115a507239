/* pkt_mbuf.c: the packet part of the NF API (serpens/nf.h) for runtimes whose packets are DPDK mbufs
 * (serpensd, serpens-runtime, serpens-startbench). */
#include <errno.h>

#include <rte_mbuf.h>

#include "serpens/nf.h"

/* sp_pkt_resize for NFs running on DPDK buffers. */
int sp_pkt_resize(struct sp_pkt *pkt, int delta)
{
	struct rte_mbuf *m = pkt->buf;

	if (delta > 0) {
		if (!rte_pktmbuf_append(m, (uint16_t)delta))
			return -ENOSPC;
	} else if (delta < 0) {
		if (rte_pktmbuf_trim(m, (uint16_t)-delta) != 0)
			return -EINVAL;
	}
	pkt->data = rte_pktmbuf_mtod(m, uint8_t *);
	pkt->len = rte_pktmbuf_data_len(m);
	return 0;
}
