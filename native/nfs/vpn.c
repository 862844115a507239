/*
 * vpn.c: the VPN of the paper's evaluation ("encrypting packets based on AES-128", Section V; Table III:
 * key/tunnel configuration per-flow/R). It encrypts the TCP/UDP payload of every packet with
 * AES-128-CTR through OpenSSL's EVP interface (AES-NI where the CPU has it), and in mode "decrypt"
 * reverses that, so vpn(encrypt) -> vpn(decrypt) gives back the original frame byte for byte.
 *
 * Packet format (encrypt adds 8 bytes; decrypt removes them):
 *
 *   | Eth | IPv4 | TCP/UDP | ciphertext of payload[0, P-k) | seq (8, clear) | payload[P-k, P) clear |
 *
 * P is the L4 payload length, k = min(keep_tail, P). The last keep_tail bytes stay in clear because the
 * harness's generators carry their latency signature in the last 16 bytes of the frame; the 8-byte
 * per-flow sequence number goes just before them. The IPv4 total length and checksum, the UDP length
 * and the L4 checksum are fixed (a UDP checksum of 0 stays 0); the frame grows at its tail through
 * sp_pkt_resize, and a packet that cannot grow is dropped (never sent in clear).
 *
 * Keys and nonces. From the 16-byte deployment key K two subkeys are derived in init:
 * K_prf = AES_K(0x01 0...0), K_enc = AES_K(0x02 0...0). Per flow (the 5-tuple as the 16-byte struct
 * sp_flow), tag = AES_Kprf(flow); per packet, IV = AES_Kprf(tag XOR (seq as 8 big-endian bytes || 0^64)),
 * i.e. a two-block CBC-MAC of (flow, seq) under K_prf, and the payload is AES-128-CTR under K_enc from
 * that IV. The receiver has the flow (headers are untouched) and seq (carried), so it rebuilds the IV.
 * Distinct (flow, seq) give independent pseudo-random 128-bit IVs, so keystreams do not overlap as long
 * as a flow never reuses a seq under one key: seq is a per-flow counter kept in the State Manager that
 * starts at a random 64-bit value, so even a platform that loses the state and starts the flow again
 * is (with overwhelming probability) on fresh sequence numbers. docs/nfs.md lists what this VPN does
 * not protect (integrity, replay, headers, the clear tail).
 *
 *   vpn_sa  per-flow|write, key struct sp_flow -> {tag[16], seq (u64)}: the flow's tag (its "tunnel
 *           configuration", derived on its first packet, so that packets do not pay for it) and, when
 *           encrypting, the next seq to send (when decrypting, the last seq received).
 *
 * Arguments:
 *   key          32 hex digits (default: the fixed benchmark key VPN_DEFAULT_KEY, with a warning);
 *   mode         "encrypt" (default) or "decrypt";
 *   keep_tail    payload bytes at the end of the frame left in clear (default 16, 0..1024; must be the
 *                same at both ends);
 *   flows        capacity of vpn_sa (default 65536). When it is full, a new flow's tag is computed per
 *                packet and its seq drawn at random per packet (still unique with overwhelming
 *                probability), and this is logged once.
 *
 * Frames that are not IPv4 TCP/UDP, and IP fragments, pass untouched in both modes. In decrypt mode a
 * TCP/UDP packet too short to carry a seq is dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "serpens/nf.h"

#define VPN_SEQ_LEN 8
#define VPN_DEFAULT_KEEP_TAIL 16
#define VPN_MAX_KEEP_TAIL 1024
#define VPN_DEFAULT_FLOWS 65536
#define VPN_DEFAULT_KEY "000102030405060708090a0b0c0d0e0f" /* benchmark key: not a secret */

struct vpn_sa {
	uint8_t tag[16];
	uint64_t seq;
};

/* Where things are in one TCP/UDP packet (byte offsets into the frame). */
struct layout {
	uint32_t l3, l4, payload, end; /* end: one past the IPv4 packet */
	uint8_t proto;
};

static EVP_CIPHER_CTX *prf_ctx; /* AES-128-ECB under K_prf: tags and IVs, one block at a time */
static EVP_CIPHER_CTX *ctr_ctx; /* AES-128-CTR under K_enc: the payload */
static sp_table *sa_table;
static int decrypting;
static uint32_t keep_tail;
static uint64_t rng; /* xorshift64* state, seeded from RAND_bytes in init */
static int full_logged, grow_logged;

/* ------------------------------------------------------------------------------------------------ */
/* Arguments                                                                                        */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int arg_key(uint8_t key[16])
{
	const char *s = sp_arg("key");
	int i, hi, lo;

	if (s == NULL) {
		sp_log("no 'key' given: using the fixed benchmark key (traffic is NOT confidential)");
		s = VPN_DEFAULT_KEY;
	}
	if (strlen(s) != 32) {
		sp_log("key: want 32 hex digits (AES-128), got %zu characters", strlen(s));
		return -EINVAL;
	}
	for (i = 0; i < 16; i++) {
		hi = hex_digit(s[2 * i]);
		lo = hex_digit(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			sp_log("key: want 32 hex digits, found '%c%c'", s[2 * i], s[2 * i + 1]);
			return -EINVAL;
		}
		key[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Crypto                                                                                           */

/* One AES block under the key prf_ctx holds (ECB, no padding, no allocation). */
static int aes_block(EVP_CIPHER_CTX *ctx, const uint8_t in[16], uint8_t out[16])
{
	int n = 0;

	return EVP_EncryptUpdate(ctx, out, &n, in, 16) == 1 && n == 16 ? 0 : -1;
}

static void free_ctxs(void)
{
	EVP_CIPHER_CTX_free(prf_ctx);
	EVP_CIPHER_CTX_free(ctr_ctx);
	prf_ctx = ctr_ctx = NULL;
}

/* Derive K_prf and K_enc from key and set up the two contexts (replacing earlier ones: init runs
 * twice in a process that both deploys and runs the NF, e.g. a test). */
static int setup_crypto(const uint8_t key[16])
{
	static const uint8_t zero_iv[16];
	uint8_t in[16] = {0}, k_prf[16], k_enc[16];
	int ok;

	free_ctxs();
	prf_ctx = EVP_CIPHER_CTX_new();
	ctr_ctx = EVP_CIPHER_CTX_new();
	if (prf_ctx == NULL || ctr_ctx == NULL) {
		free_ctxs();
		return -ENOMEM;
	}
	ok = EVP_EncryptInit_ex2(prf_ctx, EVP_aes_128_ecb(), key, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_set_padding(prf_ctx, 0) == 1;
	in[0] = 1;
	ok = ok && aes_block(prf_ctx, in, k_prf) == 0;
	in[0] = 2;
	ok = ok && aes_block(prf_ctx, in, k_enc) == 0;
	ok = ok && EVP_EncryptInit_ex2(prf_ctx, NULL, k_prf, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_set_padding(prf_ctx, 0) == 1;
	ok = ok && EVP_EncryptInit_ex2(ctr_ctx, EVP_aes_128_ctr(), k_enc, zero_iv, NULL) == 1;
	OPENSSL_cleanse(k_prf, sizeof(k_prf));
	OPENSSL_cleanse(k_enc, sizeof(k_enc));
	if (!ok) {
		sp_log("OpenSSL cannot set up AES-128 (ECB/CTR)");
		free_ctxs();
		return -EINVAL;
	}
	if (RAND_bytes((unsigned char *)&rng, sizeof(rng)) != 1) {
		sp_log("RAND_bytes failed");
		return -EIO;
	}
	rng |= 1; /* xorshift state must not be 0 */
	return 0;
}

static uint64_t random64(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

/* IV = AES_Kprf(tag XOR (seq big-endian || 0^64)). */
static int make_iv(const uint8_t tag[16], uint64_t seq, uint8_t iv[16])
{
	uint8_t in[16];
	int i;

	memcpy(in, tag, 16);
	for (i = 0; i < 8; i++)
		in[i] ^= (uint8_t)(seq >> (56 - 8 * i));
	return aes_block(prf_ctx, in, iv);
}

/* XOR len bytes at p (in place) with the AES-128-CTR keystream from iv. */
static int ctr_xor(const uint8_t iv[16], uint8_t *p, uint32_t len)
{
	int n = 0;

	if (len == 0)
		return 0;
	if (EVP_EncryptInit_ex2(ctr_ctx, NULL, NULL, iv, NULL) != 1)
		return -1;
	return EVP_EncryptUpdate(ctr_ctx, p, &n, p, (int)len) == 1 && (uint32_t)n == len ? 0 : -1;
}

/* The flow's security association: its state (created on its first packet), or, when the table is
 * full, a temporary one in *tmp with a random seq. */
static struct vpn_sa *flow_sa(const struct sp_flow *f, struct vpn_sa *tmp)
{
	struct vpn_sa *sa = sp_get_state(sa_table, f);

	if (sa != NULL)
		return sa;
	if (aes_block(prf_ctx, (const uint8_t *)f, tmp->tag) != 0)
		return NULL;
	tmp->seq = random64();
	if (sp_put_state(sa_table, f, tmp) == 0 && (sa = sp_get_state(sa_table, f)) != NULL)
		return sa;
	if (!full_logged) {
		full_logged = 1;
		sp_log("vpn_sa is full: new flows get per-packet random sequence numbers (raise 'flows')");
	}
	return tmp;
}

/* ------------------------------------------------------------------------------------------------ */
/* Headers                                                                                          */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Add len bytes as big-endian 16-bit words to a one's complement sum (not folded). */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, uint32_t len)
{
	uint32_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* TCP/UDP packet that is not a fragment, with the whole IPv4 packet inside the frame; 0 or -1. */
static int parse(const struct sp_pkt *pkt, struct layout *L)
{
	const uint8_t *ip;
	uint32_t ihl, tot, hlen;
	int l3 = sp_l3_offset(pkt);

	if (l3 < 0)
		return -1;
	ip = pkt->data + l3;
	ihl = (ip[0] & 0x0fu) * 4;
	tot = rd16(ip + 2);
	if ((ip[0] >> 4) != 4 || ihl < 20 || (uint32_t)l3 + tot > pkt->len)
		return -1;
	if ((rd16(ip + 6) & 0x3fff) != 0) /* MF or a fragment offset */
		return -1;
	L->l3 = (uint32_t)l3;
	L->l4 = L->l3 + ihl;
	L->end = L->l3 + tot;
	L->proto = ip[9];
	if (L->proto == SP_PROTO_UDP)
		hlen = 8;
	else if (L->proto == SP_PROTO_TCP && L->l4 + 20 <= L->end)
		hlen = (pkt->data[L->l4 + 12] >> 4) * 4u;
	else
		return -1;
	if (hlen < 8 || L->l4 + hlen > L->end)
		return -1;
	L->payload = L->l4 + hlen;
	return 0;
}

/* After the IPv4 packet changed by delta bytes: lengths, IPv4 checksum, L4 checksum. */
static void fix_headers(uint8_t *d, const struct layout *L, int delta)
{
	uint8_t *ip = d + L->l3, *l4 = d + L->l4;
	uint32_t tot = rd16(ip + 2) + (uint32_t)delta, seg = tot - (L->l4 - L->l3);
	uint32_t cs_off = L->proto == SP_PROTO_TCP ? 16 : 6;
	uint64_t sum;
	uint16_t cs;

	wr16(ip + 2, (uint16_t)tot);
	wr16(ip + 10, 0);
	wr16(ip + 10, csum_fold(csum_add(0, ip, L->l4 - L->l3)));
	if (L->proto == SP_PROTO_UDP) {
		wr16(l4 + 4, (uint16_t)seg);
		if (rd16(l4 + 6) == 0) /* sent without a checksum: keep it that way */
			return;
	}
	wr16(l4 + cs_off, 0);
	sum = csum_add(0, ip + 12, 8); /* pseudo-header: addresses, protocol, L4 length */
	sum += L->proto;
	sum += seg;
	cs = csum_fold(csum_add(sum, l4, seg));
	if (L->proto == SP_PROTO_UDP && cs == 0)
		cs = 0xffff;
	wr16(l4 + cs_off, cs);
}

/* ------------------------------------------------------------------------------------------------ */
/* init and handler                                                                                 */

static int vpn_init(void)
{
	struct sp_table_opts opts = {.key_size = sizeof(struct sp_flow), .value_size = sizeof(struct vpn_sa)};
	uint8_t key[16];
	uint32_t n_flows;
	int rc;

	static const char *const modes[] = {"encrypt", "decrypt", NULL}; /* index 1: decrypt */

	if (sp_arg_choice("mode", modes, &decrypting) != 0 ||
	    sp_arg_u32("keep_tail", VPN_DEFAULT_KEEP_TAIL, 0, VPN_MAX_KEEP_TAIL, &keep_tail) != 0 ||
	    sp_arg_u32("flows", VPN_DEFAULT_FLOWS, 1, UINT32_MAX, &n_flows) != 0 || arg_key(key) != 0)
		return -EINVAL;
	rc = setup_crypto(key);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc != 0)
		return rc;
	opts.capacity = n_flows;
	sa_table = sp_create_table("vpn_sa", SP_PER_FLOW | SP_WRITE, &opts);
	return sa_table != NULL ? 0 : -ENOMEM;
}

static int vpn_encrypt(struct sp_pkt *pkt, const struct layout *L, const struct sp_flow *f)
{
	uint32_t len = L->end - L->payload, keep = len < keep_tail ? len : keep_tail;
	uint32_t at = L->end - keep, old_len = pkt->len; /* the seq goes at `at` */
	struct vpn_sa tmp, *sa;
	uint8_t iv[16], *d;
	uint64_t seq;
	int i;

	if (L->end - L->l3 + VPN_SEQ_LEN > 0xffff) /* the IPv4 total length would overflow */
		return SP_DROP;
	if (sp_pkt_resize(pkt, VPN_SEQ_LEN) != 0) {
		if (!grow_logged) {
			grow_logged = 1;
			sp_log("no room to add the %d-byte sequence number: such packets are dropped", VPN_SEQ_LEN);
		}
		return SP_DROP;
	}
	d = pkt->data;
	memmove(d + at + VPN_SEQ_LEN, d + at, old_len - at); /* the clear tail, and any Ethernet padding */
	sa = flow_sa(f, &tmp);
	if (sa == NULL)
		return SP_DROP;
	seq = sa->seq++;
	if (make_iv(sa->tag, seq, iv) != 0 || ctr_xor(iv, d + L->payload, at - L->payload) != 0)
		return SP_DROP;
	for (i = 0; i < VPN_SEQ_LEN; i++)
		d[at + i] = (uint8_t)(seq >> (56 - 8 * i));
	fix_headers(d, L, VPN_SEQ_LEN);
	return SP_PASS;
}

static int vpn_decrypt(struct sp_pkt *pkt, const struct layout *L, const struct sp_flow *f)
{
	uint32_t len = L->end - L->payload, keep, at, old_len = pkt->len;
	struct vpn_sa tmp, *sa;
	uint8_t iv[16], *d = pkt->data;
	uint64_t seq = 0;
	int i;

	if (len < VPN_SEQ_LEN)
		return SP_DROP; /* cannot have come from the encrypting end */
	len -= VPN_SEQ_LEN;
	keep = len < keep_tail ? len : keep_tail;
	at = L->payload + len - keep;
	for (i = 0; i < VPN_SEQ_LEN; i++)
		seq = seq << 8 | d[at + i];
	sa = flow_sa(f, &tmp);
	if (sa == NULL || make_iv(sa->tag, seq, iv) != 0 || ctr_xor(iv, d + L->payload, at - L->payload) != 0)
		return SP_DROP;
	sa->seq = seq;
	memmove(d + at, d + at + VPN_SEQ_LEN, old_len - at - VPN_SEQ_LEN);
	fix_headers(d, L, -VPN_SEQ_LEN);
	if (sp_pkt_resize(pkt, -VPN_SEQ_LEN) != 0)
		return SP_DROP;
	return SP_PASS;
}

static int vpn_handler(struct sp_pkt *pkt)
{
	struct layout L;
	struct sp_flow f;

	if (parse(pkt, &L) != 0 || sp_flow_of(pkt, &f) != 0)
		return SP_PASS;
	return decrypting ? vpn_decrypt(pkt, &L, &f) : vpn_encrypt(pkt, &L, &f);
}

SP_NF("vpn", vpn_init, vpn_handler);
SP_NF_ARGS("key", "mode", "keep_tail", "flows");
