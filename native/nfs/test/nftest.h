/*
 * nftest.h: what the NF tests share — load an NF module the way serpensd does (dlopen, the serpens_nf
 * descriptor), deploy it and start instances on a State Manager region in ordinary memory, build
 * Ethernet/IPv4/UDP|TCP frames like the harness's STL profiles, and check checksums from scratch.
 */
#ifndef NFTEST_H
#define NFTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "state.h"

extern int nft_failures;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
			nft_failures++;                                                          \
		}                                                                                \
	} while (0)

/* The region every test of the process uses (created on first use, 64 MiB of zeroed memory). */
struct sm_region *nft_region(void);

/* dlopen the module at path and return its descriptor (exits the test on failure). */
const struct sp_nf *nft_load(const char *path);
/* The selector the module exports as serpens_selector_<name>, or NULL. */
sp_selector_fn nft_selector(const char *name);

/* Deploy nf as deployment `name` with args (NULL-terminated key, value, ...): the State Manager side.
 * Returns init's result. Tables are then "<name>/<table>". */
int nft_deploy(const struct sp_nf *nf, const char *name, const char *const *args);
/* Start an instance of the deployment: claim a slot (state split), run init in runtime mode. Returns
 * the slot (>= 0) or a negative errno. */
int nft_start(const struct sp_nf *nf, const char *name, const char *const *args);
void nft_stop(int slot);
/* Run the handler on pkt as instance slot, inside a batch. */
int nft_run(const struct sp_nf *nf, int slot, struct sp_pkt *pkt);

/* A frame with room to spare; pkt points into data. */
struct nft_frame {
	uint8_t data[256];
	struct sp_pkt pkt;
};

#define NFT_SIG_BYTES 16 /* the latency signature the harness keeps in the last 16 bytes */

/* IPv4 address "a.b.c.d" in network byte order. */
uint32_t nft_ip(const char *dotted);
/* Build a frame of len bytes (>= 60 incl. the 16-byte signature), ports in host order. l4_csum: fill
 * in a correct UDP/TCP checksum (else UDP carries 0 and TCP a correct one anyway). */
void nft_udp(struct nft_frame *f, const char *src, uint16_t sport, const char *dst, uint16_t dport,
	     uint32_t len, bool l4_csum);
void nft_tcp(struct nft_frame *f, const char *src, uint16_t sport, const char *dst, uint16_t dport,
	     uint32_t len);
/* Recompute the IPv4 checksum, and the L4 checksum if l4_csum (else set it to 0), e.g. after
 * changing the payload. */
void nft_set_checksums(struct nft_frame *f, bool l4_csum);
/* A frame that is not IPv4 (an ARP request's ethertype). */
void nft_arp(struct nft_frame *f);

/* Header fields, host byte order for ports. */
uint32_t nft_src_ip(const struct nft_frame *f);
uint32_t nft_dst_ip(const struct nft_frame *f);
uint16_t nft_sport(const struct nft_frame *f);
uint16_t nft_dport(const struct nft_frame *f);
uint16_t nft_l4_csum(const struct nft_frame *f);

/* True if the IPv4 header checksum and the L4 checksum equal ones computed from scratch (a UDP
 * checksum of 0 counts as correct: "no checksum"). */
bool nft_checksums_ok(const struct nft_frame *f);

int nft_finish(const char *test);

#endif /* NFTEST_H */
