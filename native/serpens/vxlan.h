/*
 * vxlan.h: the encapsulation between Serpens servers (docs/multiserver.md): VXLAN (RFC 7348, UDP 4789)
 * with the Group Based Policy extension (draft-smith-vxlan-group-policy), which carries the SFC tag.
 *
 *   Ether(14)  dst = the peer server's link MAC, src = ours, type 0x0800
 *   IPv4(20)   198.18.0.0/15 addresses of the two servers, DF, TTL 64, UDP
 *   UDP(8)     sport = 0xc000 | (flow hash & 0x3fff): one flow, one source port, so ECMP keeps a flow on
 *              one path; dport 4789; checksum 0 (allowed over IPv4, RFC 7348 section 5)
 *   VXLAN(8)   byte 0: flags G (0x80) | I (0x08); byte 1: GBP flags, 0; bytes 2-3: Group Policy ID = the
 *              SFC id (the tag, big endian); bytes 4-6: VNI = the gateway Router's bucket of the flow
 *              (flow hash & 255): which bucket set, and so which route, the packet belongs to; byte 7: 0
 *   inner frame, byte for byte as the generator sent it (or as the SFC left it, on the way back)
 *
 * Pure byte code, no DPDK: the unit test (test_vxlan.c) runs it on plain buffers.
 */
#ifndef SERPENS_VXLAN_H
#define SERPENS_VXLAN_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define VX_HDR_LEN 50       /* outer Ether + IPv4 + UDP + VXLAN */
#define VX_UDP_PORT 4789
#define VX_FLAG_G 0x80      /* the Group Policy ID is present */
#define VX_FLAG_I 0x08      /* the VNI is valid */

struct vx_endpoint {
	uint8_t mac[6];
	uint32_t ip;        /* network byte order */
};

/* What a decapsulated packet carried. */
struct vx_info {
	uint16_t sfc;       /* the Group Policy ID */
	uint32_t vni;
	uint16_t sport;
	uint32_t src_ip;    /* outer source, network byte order */
};

enum vx_verdict {
	VX_OK = 0,
	VX_NOT_VXLAN,       /* not IPv4/UDP to 4789 (e.g. the kernel's own frames on the link): not ours */
	VX_NOT_MINE,        /* a tunnel frame for another server (a bridge floods until it learnt a MAC) */
	VX_BAD,             /* UDP 4789 but no valid VXLAN-GBP header, or lengths that do not add up */
};

static inline uint16_t vx_ip_csum(const uint8_t *ip)
{
	uint32_t sum = 0;
	unsigned int i;

	for (i = 0; i < 20; i += 2)
		if (i != 10)
			sum += (uint32_t)ip[i] << 8 | ip[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline void vx_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline uint16_t vx_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* Write the 50 outer bytes in front of an inner frame of inner_len bytes. */
static inline void vx_write(uint8_t *h, const struct vx_endpoint *self, const struct vx_endpoint *peer,
			    uint16_t sfc, uint32_t flow_hash, uint32_t inner_len)
{
	uint8_t *ip = h + 14, *udp = h + 34, *vx = h + 42;

	memcpy(h, peer->mac, 6);
	memcpy(h + 6, self->mac, 6);
	h[12] = 0x08;
	h[13] = 0x00;
	ip[0] = 0x45;
	ip[1] = 0;
	vx_put16(ip + 2, (uint16_t)(20 + 8 + 8 + inner_len));
	vx_put16(ip + 4, 0);
	vx_put16(ip + 6, 0x4000); /* DF: a tunnel frame is never fragmented on the way */
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &self->ip, 4);
	memcpy(ip + 16, &peer->ip, 4);
	vx_put16(ip + 10, vx_ip_csum(ip));
	vx_put16(udp, (uint16_t)(0xc000 | (flow_hash & 0x3fff)));
	vx_put16(udp + 2, VX_UDP_PORT);
	vx_put16(udp + 4, (uint16_t)(8 + 8 + inner_len));
	vx_put16(udp + 6, 0);
	vx[0] = VX_FLAG_G | VX_FLAG_I;
	vx[1] = 0;
	vx_put16(vx + 2, sfc);
	vx[4] = 0;
	vx[5] = 0;
	vx[6] = (uint8_t)(flow_hash & 0xff);
	vx[7] = 0;
}

/* Check a received frame of len bytes addressed to self (outer IPv4 destination); fills *out. */
static inline enum vx_verdict vx_parse(const uint8_t *h, uint32_t len, uint32_t self_ip, struct vx_info *out)
{
	const uint8_t *ip = h + 14, *udp = h + 34, *vx = h + 42;

	if (len < 34 || h[12] != 0x08 || h[13] != 0x00 || ip[0] != 0x45 || ip[9] != 17)
		return VX_NOT_VXLAN;
	if (len < VX_HDR_LEN || vx_get16(udp + 2) != VX_UDP_PORT)
		return VX_NOT_VXLAN;
	if (memcmp(ip + 16, &self_ip, 4) != 0)
		return VX_NOT_MINE;
	if (vx_get16(ip + 2) != len - 14 || vx_get16(udp + 4) != len - 34 ||
	    (vx_get16(ip + 6) & 0x3fff) != 0 || vx_ip_csum(ip) != vx_get16(ip + 10))
		return VX_BAD; /* truncated, fragmented or corrupt */
	if ((vx[0] & (VX_FLAG_G | VX_FLAG_I)) != (VX_FLAG_G | VX_FLAG_I))
		return VX_BAD; /* no tag: not from a Serpens server */
	out->sfc = vx_get16(vx + 2);
	out->vni = (uint32_t)vx[4] << 16 | (uint32_t)vx[5] << 8 | vx[6];
	out->sport = vx_get16(udp);
	memcpy(&out->src_ip, ip + 12, 4);
	return VX_OK;
}

#endif /* SERPENS_VXLAN_H */
