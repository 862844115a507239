/*
 * test_vxlan.c: the server link's encapsulation (vxlan.h) on plain buffers — the 50 outer bytes field by
 * field (VXLAN-GBP: G and I flags, Group Policy ID = SFC id, VNI = bucket; UDP source port from the flow
 * hash; a valid IPv4 checksum), a round trip through vx_parse, and each refusal: not a tunnel frame,
 * another server's, a corrupted header, a length that does not add up, a frame without the tag.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "vxlan.h"

static int failures;
#define CHECK(cond)                                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                       \
		}                                                                         \
	} while (0)

int main(void)
{
	struct vx_endpoint gw = {.mac = {2, 0, 0, 0, 0, 1}}, wk = {.mac = {2, 0, 0, 0, 0, 2}};
	uint8_t f[VX_HDR_LEN + 60], g[sizeof(f)];
	struct vx_info vi;
	const uint32_t hash = 0xdeadbeefu;
	unsigned int i;

	inet_pton(AF_INET, "198.18.0.1", &gw.ip);
	inet_pton(AF_INET, "198.18.0.2", &wk.ip);
	for (i = 0; i < 60; i++)
		f[VX_HDR_LEN + i] = (uint8_t)i;
	vx_write(f, &gw, &wk, 3, hash, 60);
	CHECK(!memcmp(f, wk.mac, 6) && !memcmp(f + 6, gw.mac, 6) && f[12] == 0x08 && f[13] == 0);
	CHECK(f[14] == 0x45 && vx_get16(f + 16) == 20 + 8 + 8 + 60 && f[23] == 17 && f[22] == 64);
	CHECK(vx_get16(f + 20) == 0x4000);                     /* DF */
	CHECK(vx_ip_csum(f + 14) == vx_get16(f + 24));
	CHECK(vx_get16(f + 34) == (0xc000 | (hash & 0x3fff))); /* source port: the flow hash */
	CHECK(vx_get16(f + 36) == 4789 && vx_get16(f + 38) == 8 + 8 + 60 && vx_get16(f + 40) == 0);
	CHECK(f[42] == 0x88 && f[43] == 0);                   /* G | I, no GBP flags */
	CHECK(vx_get16(f + 44) == 3);                          /* Group Policy ID: the SFC */
	CHECK(f[45 + 1] == 0 && f[47] == 0 && f[48] == (hash & 0xff) && f[49] == 0); /* VNI: the bucket */
	for (i = 0; i < 60; i++)
		CHECK(f[VX_HDR_LEN + i] == (uint8_t)i);         /* the inner frame untouched */

	CHECK(vx_parse(f, sizeof(f), wk.ip, &vi) == VX_OK);
	CHECK(vi.sfc == 3 && vi.vni == (hash & 0xff) && vi.sport == (0xc000 | (hash & 0x3fff)) && vi.src_ip == gw.ip);
	CHECK(vx_parse(f, sizeof(f), gw.ip, &vi) == VX_NOT_MINE);
	CHECK(vx_parse(f, sizeof(f) - 1, wk.ip, &vi) == VX_BAD);   /* lengths do not add up */
	CHECK(vx_parse(f, 40, wk.ip, &vi) == VX_NOT_VXLAN);          /* too short for a tunnel frame */
	memcpy(g, f, sizeof(f));
	g[22] = 63;                                                  /* TTL changed: checksum wrong */
	CHECK(vx_parse(g, sizeof(g), wk.ip, &vi) == VX_BAD);
	memcpy(g, f, sizeof(f));
	g[42] = 0x08;                                                /* plain VXLAN: no tag */
	CHECK(vx_parse(g, sizeof(g), wk.ip, &vi) == VX_BAD);
	memcpy(g, f, sizeof(f));
	g[37] = 0xb6;                                                /* UDP 4790: not ours */
	CHECK(vx_parse(g, sizeof(g), wk.ip, &vi) == VX_NOT_VXLAN);
	memcpy(g, f, sizeof(f));
	g[12] = 0x86;
	g[13] = 0xdd;                                                /* IPv6 */
	CHECK(vx_parse(g, sizeof(g), wk.ip, &vi) == VX_NOT_VXLAN);
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
