/*
 * gproxy_wire.h: the header every packet carries on the link between serpensd and serpens-gproxy, the
 * global proxy of the global-proxy chaining mode (Fission's, paper Sec. II-B4 and Fig. 13).
 *
 * serpensd prepends it (rte_pktmbuf_prepend) before sending a packet to the proxy and strips it when the
 * packet comes back; the frame behind it is the packet itself, untouched. The proxy reads sfc/hop/flow,
 * writes the instance it chose into `slot` and sends the packet back. Both ends run on one machine, so the
 * fields are in host byte order and `tsc` is comparable on both sides.
 *
 * Why a header and not the mbuf's dynfield: the proxy is another DPDK primary with its own mempool; only
 * the frame crosses the memif link, so whatever the proxy must know travels in the frame, as a Fission
 * request carries its function's route to the router.
 */
#ifndef SERPENS_GPROXY_WIRE_H
#define SERPENS_GPROXY_WIRE_H

#include <stdint.h>

#define GP_WIRE_MAGIC 0x5047u /* "GP" read as little-endian bytes */
#define GP_WIRE_VERSION 1
#define GP_SLOT_NONE (-1)     /* `slot` of a packet on its way to the proxy */

struct gp_wire_hdr {
	uint16_t magic;   /* GP_WIRE_MAGIC: a frame without it is not ours and is dropped, counted */
	uint8_t version;  /* GP_WIRE_VERSION */
	uint8_t sfc;      /* the SFC id (serpensd's, 0..GP_MAX_SFCS-1) */
	uint8_t hop;      /* the SFC position whose instance the proxy chooses (the next NF) */
	int8_t slot;      /* the chosen instance slot; GP_SLOT_NONE on the way in */
	uint8_t returns;  /* times serpensd sent it back because the chosen instance was gone meanwhile */
	uint8_t flags;    /* reserved, 0 */
	uint32_t flow;    /* the flow hash the gateway computed: a flow sticks to one instance per hop */
	uint32_t reserved;
	uint64_t tsc;     /* serpensd's TSC when it sent the packet to the proxy: the link's round trip */
	uint64_t stamp;   /* TSC when the previous NF's instance handed it over (0: from the gateway), for
			   * the instance's delivery time (chain_tag.h): the mbuf's dynfield does not cross */
} __attribute__((packed));

_Static_assert(sizeof(struct gp_wire_hdr) == 32, "the wire header is 32 bytes");

#endif
