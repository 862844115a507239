/*
 * test_vpn.c: the VPN module (argv[1]) -- encrypt then decrypt gives back the original frame byte for
 * byte (UDP with and without checksum, TCP, frame sizes from the minimum up); the ciphertext is the
 * documented construction (checked against AES-128 computed here with libcrypto), differs from the
 * plaintext, and differs between two packets of a flow with the same payload; the last keep_tail bytes
 * stay in clear; lengths and checksums are right at each step; other frames pass untouched; a frame
 * that cannot grow is dropped; the handler never allocates; bad arguments are refused.
 *
 * sp_pkt_resize is the platform's (serpensd's works on mbufs); the stub below grows frames inside
 * struct nft_frame, whose size it finds through pkt->buf.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "alloc_count.h"
#include "nftest.h"

static const struct sp_nf *vpn;

#define KEY_HEX "2b7e151628aed2a6abf7158809cf4f3c"
static const uint8_t key[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
				0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};
#define SEQ_LEN 8

/* ------------------------------------------------------------------------------------------------ */
/* Platform stub                                                                                    */

struct room {
	uint32_t cap; /* bytes the frame may grow to */
};

__attribute__((weak)) int sp_pkt_resize(struct sp_pkt *pkt, int delta)
{
	const struct room *r = pkt->buf;
	int64_t len = (int64_t)pkt->len + delta;

	if (r == NULL || len < 0 || len > r->cap)
		return -ENOSPC;
	pkt->len = (uint32_t)len;
	return 0;
}


/* ------------------------------------------------------------------------------------------------ */
/* Deployments: one module, so switching between the encrypting and the decrypting deployment re-runs
 * init in runtime mode (serpensd gives each deployment its own copy of the object instead).         */

struct end {
	const char *name;
	const char *const *args;
	int slot;
};

static const char *const enc_args[] = {"mode", "encrypt", "key", KEY_HEX, "flows", "1024", NULL};
static const char *const dec_args[] = {"mode", "decrypt", "key", KEY_HEX, "flows", "1024", NULL};
static struct end enc = {"venc", enc_args, -1}, dec = {"vdec", dec_args, -1};
static const struct end *current;

static void start(struct end *e)
{
	CHECK(nft_deploy(vpn, e->name, e->args) == 0);
	e->slot = nft_start(vpn, e->name, e->args);
	CHECK(e->slot >= 0);
	current = e;
}

static int run(struct end *e, struct nft_frame *f, struct room *room)
{
	int v;

	if (current != e) {
		sm_set_instance(e->slot);
		sm_set_phase_deploy(false);
		sm_set_nf(e->name, e->args);
		CHECK(sm_nf_init(vpn) == 0);
		current = e;
	}
	f->pkt.buf = room;
	alloc_counting = 1;
	v = nft_run(vpn, e->slot, &f->pkt);
	alloc_counting = 0;
	return v;
}

/* ------------------------------------------------------------------------------------------------ */
/* The construction, computed independently                                                         */

static void aes_ecb(const uint8_t k[16], const uint8_t in[16], uint8_t out[16])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0;

	CHECK(c != NULL && EVP_EncryptInit_ex2(c, EVP_aes_128_ecb(), k, NULL, NULL) == 1);
	EVP_CIPHER_CTX_set_padding(c, 0);
	CHECK(EVP_EncryptUpdate(c, out, &n, in, 16) == 1 && n == 16);
	EVP_CIPHER_CTX_free(c);
}

/* The keystream the VPN must use for (flow of frame, seq): n bytes into ks. */
static void keystream(const struct nft_frame *plain, uint64_t seq, uint8_t *ks, uint32_t n)
{
	uint8_t k_prf[16], k_enc[16], block[16] = {1}, tag[16], iv[16];
	struct sp_flow flow;
	EVP_CIPHER_CTX *c;
	int i, got = 0;

	aes_ecb(key, block, k_prf);
	block[0] = 2;
	aes_ecb(key, block, k_enc);
	CHECK(sp_flow_of(&plain->pkt, &flow) == 0);
	aes_ecb(k_prf, (const uint8_t *)&flow, tag);
	for (i = 0; i < 8; i++)
		tag[i] ^= (uint8_t)(seq >> (56 - 8 * i));
	aes_ecb(k_prf, tag, iv);
	memset(ks, 0, n);
	c = EVP_CIPHER_CTX_new();
	CHECK(c != NULL && EVP_EncryptInit_ex2(c, EVP_aes_128_ctr(), k_enc, iv, NULL) == 1);
	CHECK(n == 0 || (EVP_EncryptUpdate(c, ks, &got, ks, (int)n) == 1 && (uint32_t)got == n));
	EVP_CIPHER_CTX_free(c);
}

/* ------------------------------------------------------------------------------------------------ */
/* Checks                                                                                           */

static uint32_t ip_total(const struct nft_frame *f) { return (uint32_t)f->data[16] << 8 | f->data[17]; }
static uint32_t payload_off(const struct nft_frame *f) { return f->data[23] == SP_PROTO_TCP ? 54 : 42; }

static uint64_t seq_at(const struct nft_frame *f, uint32_t at)
{
	uint64_t s = 0;
	int i;

	for (i = 0; i < SEQ_LEN; i++)
		s = s << 8 | f->data[at + i];
	return s;
}

/* Ethernet, IPv4 and the ports are those of the original, but for the lengths and checksums. */
/* *dst = *src, with dst's packet pointing at dst's own bytes. */
static void copy_frame(struct nft_frame *dst, const struct nft_frame *src)
{
	*dst = *src;
	dst->pkt.data = dst->data;
}

static int same_headers(const struct nft_frame *f, const struct nft_frame *plain)
{
	return memcmp(f->data, plain->data, 16) == 0 && memcmp(f->data + 18, plain->data + 18, 6) == 0 &&
	       memcmp(f->data + 26, plain->data + 26, 12) == 0;
}

/* Encrypt *f (whose original is plain) with keep_tail k, check the result against the construction;
 * returns the seq used. */
static uint64_t encrypt_and_check(struct end *e, struct nft_frame *f, const struct nft_frame *plain,
				  uint32_t k)
{
	struct room room = {sizeof(f->data)};
	uint32_t ps = payload_off(plain), len = plain->pkt.len, p = len - ps, keep = p < k ? p : k;
	uint32_t at = len - keep, i;
	uint8_t ks[256];
	uint64_t seq;

	CHECK(run(e, f, &room) == SP_PASS);
	CHECK(f->pkt.len == len + SEQ_LEN);
	CHECK(ip_total(f) == ip_total(plain) + SEQ_LEN);
	CHECK(nft_checksums_ok(f));
	CHECK((nft_l4_csum(f) == 0) == (nft_l4_csum(plain) == 0)); /* UDP without checksum stays so */
	CHECK(same_headers(f, plain));
	/* the clear tail (incl. the latency signature) is the frame's last `keep` bytes, unchanged */
	CHECK(memcmp(f->data + at + SEQ_LEN, plain->data + at, keep) == 0);
	seq = seq_at(f, at);
	keystream(plain, seq, ks, at - ps);
	for (i = ps; i < at; i++)
		CHECK(f->data[i] == (plain->data[i] ^ ks[i - ps]));
	if (at - ps >= 8)
		CHECK(memcmp(f->data + ps, plain->data + ps, at - ps) != 0);
	return seq;
}

static void decrypt_and_check(struct end *e, struct nft_frame *f, const struct nft_frame *plain)
{
	struct room room = {sizeof(f->data)};

	CHECK(run(e, f, &room) == SP_PASS);
	CHECK(f->pkt.len == plain->pkt.len);
	CHECK(memcmp(f->data, plain->data, plain->pkt.len) == 0);
}

/* ------------------------------------------------------------------------------------------------ */
/* Tests                                                                                            */

static void test_vpn_encrypt_then_decrypt_restores_frames(void)
{
	static const uint32_t lens[] = {60, 61, 64, 100, 128, 200, 247, 248};
	struct nft_frame f, plain;
	unsigned int i, k;
	uint32_t flags, ks, vs;
	uint64_t count;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (k = 0; k < 3; k++) {
			if (k == 2 && lens[i] < 70)
				continue;
			if (k == 2)
				nft_tcp(&f, "16.0.0.1", (uint16_t)(2000 + i), "48.0.0.1", 443, lens[i]);
			else /* UDP with (k = 0) and without (k = 1) a checksum */
				nft_udp(&f, "16.0.0.1", (uint16_t)(1000 + 100 * k + i), "48.0.0.1", 4789,
					lens[i], k == 0);
			copy_frame(&plain, &f);
			encrypt_and_check(&enc, &f, &plain, 16);
			decrypt_and_check(&dec, &f, &plain);
		}
	CHECK(sm_table_info(nft_region(), "venc/vpn_sa", &flags, &ks, &vs, &count) == 0);
	CHECK(flags == (SP_PER_FLOW | SP_WRITE) && count == 8 + 8 + 5); /* UDP x2 at every size, TCP from 70 bytes */
	CHECK(alloc_count == 0);
}

static void test_vpn_same_payload_in_one_flow_encrypts_differently(void)
{
	struct nft_frame plain, a, b;
	uint32_t ps = 42, at = 200 - 16;
	uint64_t sa, sb;

	nft_udp(&plain, "16.0.0.7", 7, "48.0.0.7", 7, 200, true);
	copy_frame(&a, &plain);
	copy_frame(&b, &plain);
	sa = encrypt_and_check(&enc, &a, &plain, 16);
	sb = encrypt_and_check(&enc, &b, &plain, 16);
	CHECK(sb == sa + 1);
	CHECK(memcmp(a.data + ps, b.data + ps, at - ps) != 0);
	decrypt_and_check(&dec, &b, &plain); /* out of order is fine: the seq travels with the packet */
	decrypt_and_check(&dec, &a, &plain);
	CHECK(alloc_count == 0);
}

static void test_vpn_keep_tail_sets_the_clear_bytes(void)
{
	static const char *const enc0[] = {"mode", "encrypt", "key", KEY_HEX, "keep_tail", "0", NULL};
	static const char *const dec0[] = {"mode", "decrypt", "key", KEY_HEX, "keep_tail", "0", NULL};
	static const char *const enc64[] = {"key", KEY_HEX, "keep_tail", "64", NULL};
	static const char *const dec64[] = {"mode", "decrypt", "key", KEY_HEX, "keep_tail", "64", NULL};
	struct end e0 = {"venc0", enc0, -1}, d0 = {"vdec0", dec0, -1};
	struct end e64 = {"venc64", enc64, -1}, d64 = {"vdec64", dec64, -1};
	struct nft_frame f, plain;

	start(&e0);
	start(&d0);
	start(&e64);
	start(&d64);
	nft_udp(&plain, "16.0.0.8", 8, "48.0.0.8", 8, 128, true); /* all 86 payload bytes encrypted */
	copy_frame(&f, &plain);
	encrypt_and_check(&e0, &f, &plain, 0);
	CHECK(memcmp(f.data + 128 - 16, plain.data + 128 - 16, 16) != 0); /* signature encrypted too */
	decrypt_and_check(&d0, &f, &plain);
	nft_tcp(&plain, "16.0.0.8", 8, "48.0.0.8", 8, 100); /* 46 payload bytes < 64: all in clear */
	copy_frame(&f, &plain);
	encrypt_and_check(&e64, &f, &plain, 64);
	CHECK(memcmp(f.data + 54 + SEQ_LEN, plain.data + 54, 46) == 0);
	decrypt_and_check(&d64, &f, &plain);
	CHECK(alloc_count == 0);
	nft_stop(e0.slot);
	nft_stop(d0.slot);
	nft_stop(e64.slot);
	nft_stop(d64.slot);
}

static int unchanged(const struct nft_frame *f, const struct nft_frame *orig)
{
	return f->pkt.len == orig->pkt.len && memcmp(f->data, orig->data, sizeof(f->data)) == 0;
}

static void test_vpn_passes_other_frames_and_drops_what_it_cannot_handle(void)
{
	struct room room = {sizeof(((struct nft_frame *)0)->data)}, tight;
	struct nft_frame f, orig;

	nft_arp(&f); /* not IPv4 */
	copy_frame(&orig, &f);
	CHECK(run(&enc, &f, &room) == SP_PASS && unchanged(&f, &orig));
	CHECK(run(&dec, &f, &room) == SP_PASS && unchanged(&f, &orig));
	nft_udp(&f, "16.0.0.9", 9, "48.0.0.9", 9, 100, true); /* a first fragment (MF set) */
	f.data[20] |= 0x20;
	nft_set_checksums(&f, true);
	copy_frame(&orig, &f);
	CHECK(run(&enc, &f, &room) == SP_PASS && unchanged(&f, &orig));
	nft_udp(&f, "16.0.0.9", 9, "48.0.0.9", 9, 100, true); /* not TCP/UDP (protocol 47, GRE) */
	f.data[23] = 47;
	copy_frame(&orig, &f);
	CHECK(run(&enc, &f, &room) == SP_PASS && unchanged(&f, &orig));

	nft_udp(&f, "16.0.0.9", 10, "48.0.0.9", 9, 100, true); /* no room to grow: dropped, untouched */
	copy_frame(&orig, &f);
	tight.cap = 100;
	CHECK(run(&enc, &f, &tight) == SP_DROP);
	CHECK(unchanged(&f, &orig));

	nft_udp(&f, "16.0.0.9", 11, "48.0.0.9", 9, 60, false); /* 4 payload bytes: no seq to decrypt */
	f.data[16] = 0, f.data[17] = 20 + 8 + 4;
	nft_set_checksums(&f, false);
	CHECK(run(&dec, &f, &room) == SP_DROP);
	CHECK(alloc_count == 0);
}

static void test_vpn_wrong_key_gives_garbage_not_plaintext(void)
{
	static const char *const other[] = {"mode", "decrypt", "key", "000102030405060708090A0B0C0D0E0F", NULL};
	struct end wrong = {"vwrong", other, -1};
	struct room room = {sizeof(((struct nft_frame *)0)->data)};
	struct nft_frame f, plain;

	start(&wrong);
	nft_udp(&plain, "16.0.0.10", 10, "48.0.0.10", 10, 160, true);
	copy_frame(&f, &plain);
	encrypt_and_check(&enc, &f, &plain, 16);
	CHECK(run(&wrong, &f, &room) == SP_PASS);
	CHECK(f.pkt.len == 160 && nft_checksums_ok(&f));
	CHECK(memcmp(f.data + 42, plain.data + 42, 160 - 42 - 16) != 0);
	CHECK(memcmp(f.data + 160 - 16, plain.data + 160 - 16, 16) == 0);
	nft_stop(wrong.slot);
}

static void test_vpn_refuses_bad_arguments(void)
{
	static const char *const short_key[] = {"key", "2b7e1516", NULL};
	static const char *const bad_hex[] = {"key", "2b7e151628aed2a6abf7158809cf4fzz", NULL};
	static const char *const bad_mode[] = {"key", KEY_HEX, "mode", "tunnel", NULL};
	static const char *const bad_tail[] = {"key", KEY_HEX, "keep_tail", "4096", NULL};

	CHECK(nft_deploy(vpn, "vbad1", short_key) == -EINVAL);
	CHECK(nft_deploy(vpn, "vbad2", bad_hex) == -EINVAL);
	CHECK(nft_deploy(vpn, "vbad3", bad_mode) == -EINVAL);
	CHECK(nft_deploy(vpn, "vbad4", bad_tail) == -EINVAL);
	current = NULL; /* the module's globals were touched by those inits */
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s vpn.so\n", argv[0]);
		return 2;
	}
	vpn = nft_load(argv[1]);
	CHECK(strcmp(vpn->name, "vpn") == 0);
	alloc_counting = 1; /* init allocates (EVP contexts): proves the alloc_counting reaches libcrypto */
	start(&enc);
	alloc_counting = 0;
	CHECK(alloc_count > 0);
	alloc_count = 0;
	start(&dec);
	test_vpn_encrypt_then_decrypt_restores_frames();
	test_vpn_same_payload_in_one_flow_encrypts_differently();
	test_vpn_keep_tail_sets_the_clear_bytes();
	test_vpn_passes_other_frames_and_drops_what_it_cannot_handle();
	test_vpn_wrong_key_gives_garbage_not_plaintext();
	test_vpn_refuses_bad_arguments();
	return nft_finish("test_vpn");
}
