/*
 * nftest.c: shared helpers of the NF tests (see nftest.h).
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "nftest.h"

#define NFT_REGION_BYTES (64u << 20)

int nft_failures;
static struct sm_region *region;
static void *module;

struct sm_region *nft_region(void)
{
	void *mem;

	if (region != NULL)
		return region;
	mem = aligned_alloc(64, NFT_REGION_BYTES); /* struct sm_region is 64-byte aligned */
	if (mem)
		memset(mem, 0, NFT_REGION_BYTES);
	region = mem != NULL ? sm_region_create(mem, NFT_REGION_BYTES) : NULL;
	if (region == NULL) {
		fprintf(stderr, "cannot create a %u-byte state region\n", NFT_REGION_BYTES);
		exit(2);
	}
	sm_set_region(region);
	return region;
}

const struct sp_nf *nft_load(const char *path)
{
	const struct sp_nf *nf;

	module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (module == NULL) {
		fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
		exit(2);
	}
	nf = dlsym(module, "serpens_nf");
	if (nf == NULL) {
		fprintf(stderr, "%s has no serpens_nf descriptor\n", path);
		exit(2);
	}
	return nf;
}

sp_selector_fn nft_selector(const char *name)
{
	char sym[128];
	const sp_selector_fn *fn;

	snprintf(sym, sizeof(sym), "serpens_selector_%s", name);
	fn = module != NULL ? dlsym(module, sym) : NULL;
	return fn != NULL ? *fn : NULL;
}

int nft_deploy(const struct sp_nf *nf, const char *name, const char *const *args)
{
	int rc;

	nft_region();
	sm_set_instance(-1);
	sm_set_phase_deploy(true);
	sm_set_nf(name, args);
	rc = sm_nf_init(nf);
	sm_set_phase_deploy(false);
	return rc;
}

int nft_start(const struct sp_nf *nf, const char *name, const char *const *args)
{
	int slot = sm_instance_claim(nft_region()), rc;

	if (slot < 0)
		return slot;
	sm_set_instance(slot);
	sm_set_phase_deploy(false);
	sm_set_nf(name, args);
	rc = sm_nf_init(nf);
	if (rc != 0) {
		sm_instance_release(region, slot);
		return rc;
	}
	return slot;
}

void nft_stop(int slot)
{
	sm_instance_release(nft_region(), slot);
	sm_set_instance(-1);
}

int nft_run(const struct sp_nf *nf, int slot, struct sp_pkt *pkt)
{
	int verdict;

	sm_set_instance(slot);
	sm_batch_begin(region, slot);
	verdict = nf->handler(pkt);
	sm_batch_end(region, slot);
	return verdict;
}

uint32_t nft_ip(const char *dotted)
{
	struct in_addr a;

	if (inet_pton(AF_INET, dotted, &a) != 1) {
		fprintf(stderr, "bad address %s\n", dotted);
		exit(2);
	}
	return a.s_addr;
}

/* One's complement sum of len bytes as big-endian 16-bit words, added to sum (not folded). */
static uint32_t sum16(const uint8_t *p, uint32_t len, uint32_t sum)
{
	uint32_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint8_t *l3(const struct nft_frame *f) { return (uint8_t *)f->data + 14; }
static uint8_t *l4(const struct nft_frame *f) { return l3(f) + (l3(f)[0] & 0x0f) * 4; }

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t ip_csum_of(const struct nft_frame *f)
{
	uint8_t hdr[60];
	uint32_t ihl = (l3(f)[0] & 0x0f) * 4u;

	memcpy(hdr, l3(f), ihl);
	hdr[10] = hdr[11] = 0;
	return fold(sum16(hdr, ihl, 0));
}

/* The L4 checksum over the pseudo-header and segment (checksum field taken as 0). */
static uint16_t l4_csum_of(const struct nft_frame *f)
{
	const uint8_t *ip = l3(f);
	uint32_t ihl = (ip[0] & 0x0f) * 4u, seglen = be16(ip + 2) - ihl, sum = 0;
	uint8_t seg[256];
	uint16_t cs;
	int off = ip[9] == SP_PROTO_TCP ? 16 : 6;

	sum = sum16(ip + 12, 8, sum);
	sum += ip[9];
	sum += seglen;
	memcpy(seg, l4(f), seglen);
	seg[off] = seg[off + 1] = 0;
	cs = fold(sum16(seg, seglen, sum));
	if (ip[9] == SP_PROTO_UDP && cs == 0)
		cs = 0xffff;
	return cs;
}

static void build(struct nft_frame *f, uint8_t proto, const char *src, uint16_t sport, const char *dst,
		  uint16_t dport, uint32_t len, bool l4_csum)
{
	static const uint8_t macs[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
	uint32_t hl = proto == SP_PROTO_TCP ? 20 : 8, i, s = nft_ip(src), d = nft_ip(dst);
	uint8_t *ip, *seg;

	if (len < 14 + 20 + hl + NFT_SIG_BYTES || len > sizeof(f->data)) {
		fprintf(stderr, "frame length %u out of range\n", len);
		exit(2);
	}
	memset(f, 0, sizeof(*f));
	memcpy(f->data, macs, 12);
	put16(f->data + 12, SP_ETHERTYPE_IPV4);
	ip = l3(f);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(len - 14));
	put16(ip + 4, 1);
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &s, 4);
	memcpy(ip + 16, &d, 4);
	seg = ip + 20;
	put16(seg, sport);
	put16(seg + 2, dport);
	if (proto == SP_PROTO_UDP) {
		put16(seg + 4, (uint16_t)(len - 34));
	} else {
		put16(seg + 4, 0x1234); /* seq */
		seg[12] = 5 << 4;       /* data offset */
		seg[13] = 0x10;         /* ACK */
		put16(seg + 14, 8192);  /* window */
	}
	for (i = 34 + hl; i < len - NFT_SIG_BYTES; i++)
		f->data[i] = 'x';
	for (i = len - NFT_SIG_BYTES; i < len; i++) /* stands in for TRex's sequence/timestamp tag */
		f->data[i] = (uint8_t)(0xa5 ^ i);
	f->pkt.data = f->data;
	f->pkt.len = len;
	nft_set_checksums(f, proto == SP_PROTO_TCP || l4_csum);
}

void nft_set_checksums(struct nft_frame *f, bool l4_csum)
{
	put16(l3(f) + 10, ip_csum_of(f));
	put16(l4(f) + (l3(f)[9] == SP_PROTO_TCP ? 16 : 6), l4_csum ? l4_csum_of(f) : 0);
}

void nft_udp(struct nft_frame *f, const char *src, uint16_t sport, const char *dst, uint16_t dport,
	     uint32_t len, bool l4_csum)
{
	build(f, SP_PROTO_UDP, src, sport, dst, dport, len, l4_csum);
}

void nft_tcp(struct nft_frame *f, const char *src, uint16_t sport, const char *dst, uint16_t dport,
	     uint32_t len)
{
	build(f, SP_PROTO_TCP, src, sport, dst, dport, len, true);
}

void nft_arp(struct nft_frame *f)
{
	memset(f, 0, sizeof(*f));
	memset(f->data, 0xff, 6);
	put16(f->data + 12, 0x0806);
	f->pkt.data = f->data;
	f->pkt.len = 60;
}

uint32_t nft_src_ip(const struct nft_frame *f)
{
	uint32_t v;

	memcpy(&v, l3(f) + 12, 4);
	return v;
}

uint32_t nft_dst_ip(const struct nft_frame *f)
{
	uint32_t v;

	memcpy(&v, l3(f) + 16, 4);
	return v;
}

uint16_t nft_sport(const struct nft_frame *f) { return be16(l4(f)); }
uint16_t nft_dport(const struct nft_frame *f) { return be16(l4(f) + 2); }
uint16_t nft_l4_csum(const struct nft_frame *f)
{
	return be16(l4(f) + (l3(f)[9] == SP_PROTO_TCP ? 16 : 6));
}

bool nft_checksums_ok(const struct nft_frame *f)
{
	uint16_t ip_cs = be16(l3(f) + 10), l4_cs = nft_l4_csum(f);

	if (ip_cs != ip_csum_of(f))
		return false;
	if (l3(f)[9] == SP_PROTO_UDP && l4_cs == 0)
		return true;
	return l4_cs == l4_csum_of(f);
}

int nft_finish(const char *test)
{
	if (nft_failures)
		fprintf(stderr, "%s: %d check(s) failed\n", test, nft_failures);
	else
		printf("%s: all checks passed\n", test);
	return nft_failures ? 1 : 0;
}
