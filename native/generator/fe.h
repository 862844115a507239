/*
 * fe.h: the field engine of serpens-gen, a compiled subset of TRex's STL
 * packet VM ("vm.instructions" of STLStream.to_json()).
 *
 * Why: NF benchmarks need packets that differ per flow (source IP/port
 * sweeps), generated at line rate. The JSON program is compiled once into a
 * flat array of specialised opcodes (a var update, a write of a given width
 * and byte order, a checksum fix), so the per-packet work is a short loop
 * with no lookups, no division and no allocation.
 *
 * Semantics follow TRex: flow_var inc goes init, init+step, ... and wraps
 * from max to min (the overshoot carries over); dec mirrors it; random is
 * uniform in [min, max]. Vars advance once per packet, in program order;
 * write_flow_var writes the low `size` bytes of (var + add_value).
 */
#ifndef SERPENS_FE_H
#define SERPENS_FE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <rte_byteorder.h>
#include <rte_ip.h>

#define FE_MAX_VARS 16
#define FE_MAX_INSN 32

enum fe_opcode {
	FE_VAR_INC,
	FE_VAR_DEC,
	FE_VAR_RAND,
	FE_WR1,
	FE_WR2_BE,
	FE_WR2_LE,
	FE_WR4_BE,
	FE_WR4_LE,
	FE_WR8_BE,
	FE_WR8_LE,
	FE_FIX_IPV4,        /* IPv4 header checksum at off */
	FE_FIX_L4_IPV4,     /* IPv4 at off, L4 at off2, L4 csum at off3 */
	FE_FIX_L4_IPV6,     /* IPv6 at off, L4 at off2, L4 csum at off3 */
};

struct fe_var {
	uint64_t cur;      /* value of the current packet */
	uint64_t min;
	uint64_t range;    /* max - min */
	uint64_t step;     /* already reduced modulo range + 1 */
	char name[32];
	uint8_t size;
};

struct fe_insn {
	uint8_t op;
	uint8_t var;
	uint16_t off;
	uint16_t off2;
	uint16_t off3;
	uint64_t add;
};

struct fe_prog {
	unsigned int n_insn;
	unsigned int n_var;
	uint64_t rng;      /* splitmix64 state for random vars */
	struct fe_var var[FE_MAX_VARS];
	struct fe_insn insn[FE_MAX_INSN];
};

/*
 * Compile vm (the stream's "vm" object, may be NULL) against the template
 * pkt/len. protect_off: writes at or beyond this offset are refused (the
 * latency signature lives there; pass len when there is none). seed seeds
 * the PRNG. Returns 0, or -1 with err set to "field '...': reason".
 */
int fe_compile(struct fe_prog *p, json_t *vm, const uint8_t *pkt,
	       uint16_t len, uint16_t protect_off, uint64_t seed,
	       char *err, size_t errlen);

/* Index of the first write touching [off, off+n), or -1. */
int fe_writes_overlap(const struct fe_prog *p, unsigned int off,
		      unsigned int n);

static inline uint64_t fe_rand(struct fe_prog *p)
{
	uint64_t z = (p->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void fe_var_inc(struct fe_var *v)
{
	uint64_t o = v->cur - v->min + v->step;

	if (o > v->range)
		o -= v->range + 1;
	v->cur = v->min + o;
}

static inline void fe_var_dec(struct fe_var *v)
{
	uint64_t o = v->cur - v->min;

	o = (o >= v->step) ? o - v->step : o + v->range + 1 - v->step;
	v->cur = v->min + o;
}

static inline void fe_var_rand(struct fe_prog *p, struct fe_var *v)
{
	unsigned __int128 r = (unsigned __int128)fe_rand(p) * (v->range + 1);

	v->cur = v->min + (uint64_t)(r >> 64);
}

/* Put a 16-bit checksum in place (the value is already in network order). */
static inline void fe_put16(uint8_t *p, uint16_t v)
{
	__builtin_memcpy(p, &v, sizeof(v));
}

static inline void fe_fix_ipv4(uint8_t *ip)
{
	struct rte_ipv4_hdr *h = (struct rte_ipv4_hdr *)ip;

	h->hdr_checksum = 0;
	h->hdr_checksum = rte_ipv4_cksum(h);
}

static inline void fe_fix_l4_ipv4(uint8_t *ip, uint8_t *l4, uint8_t *cs)
{
	fe_put16(cs, 0);
	fe_put16(cs, rte_ipv4_udptcp_cksum((const struct rte_ipv4_hdr *)ip,
					   l4));
}

static inline void fe_fix_l4_ipv6(uint8_t *ip, uint8_t *l4, uint8_t *cs)
{
	fe_put16(cs, 0);
	fe_put16(cs, rte_ipv6_udptcp_cksum((const struct rte_ipv6_hdr *)ip,
					   l4));
}

static inline void fe_write(const struct fe_insn *in, uint64_t x, uint8_t *pkt)
{
	uint8_t *d = pkt + in->off;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	switch (in->op) {
	case FE_WR1: *d = (uint8_t)x; break;
	case FE_WR2_BE: v16 = rte_cpu_to_be_16((uint16_t)x); goto w16;
	case FE_WR2_LE: v16 = rte_cpu_to_le_16((uint16_t)x); goto w16;
	case FE_WR4_BE: v32 = rte_cpu_to_be_32((uint32_t)x); goto w32;
	case FE_WR4_LE: v32 = rte_cpu_to_le_32((uint32_t)x); goto w32;
	case FE_WR8_BE: v64 = rte_cpu_to_be_64(x); goto w64;
	default: v64 = rte_cpu_to_le_64(x); goto w64;
	}
	return;
w16:
	__builtin_memcpy(d, &v16, 2);
	return;
w32:
	__builtin_memcpy(d, &v32, 4);
	return;
w64:
	__builtin_memcpy(d, &v64, 8);
}

/* Move v back (dec: forward) by n of its steps, as if n packets had not
 * been built. Offsets are below range + 1 <= 2^63, so the sum cannot
 * overflow. */
static inline void fe_var_back(struct fe_var *v, uint64_t n, int forward)
{
	uint64_t r = v->range + 1, o = v->cur - v->min, d;

	d = (uint64_t)(((unsigned __int128)(n % r) * v->step) % r);
	if (forward)
		o = o + d >= r ? o + d - r : o + d;
	else
		o = o >= d ? o - d : o + r - d;
	v->cur = v->min + o;
}

/*
 * Take back the last n packets built: the PMD refused them and they stay
 * owed, so the packets built in their place must carry the values they had.
 * Without this every refusal (a full ring, retried every few µs under
 * overload) would skip values: a stream whose every packet must be a new
 * flow (the churn workload, one range per trial) would wrap and repeat
 * flows. inc/dec vars step back; random vars have no sequence to restore.
 */
static inline void fe_rewind(struct fe_prog *p, uint64_t n)
{
	unsigned int i;

	for (i = 0; i < p->n_insn; i++) {
		const struct fe_insn *in = &p->insn[i];

		if (in->op == FE_VAR_INC)
			fe_var_back(&p->var[in->var], n, 0);
		else if (in->op == FE_VAR_DEC)
			fe_var_back(&p->var[in->var], n, 1);
	}
}

/* Run the program on one packet (the template already copied in). */
static inline void fe_run(struct fe_prog *p, uint8_t *pkt)
{
	unsigned int i;

	for (i = 0; i < p->n_insn; i++) {
		const struct fe_insn *in = &p->insn[i];

		switch (in->op) {
		case FE_VAR_INC: fe_var_inc(&p->var[in->var]); break;
		case FE_VAR_DEC: fe_var_dec(&p->var[in->var]); break;
		case FE_VAR_RAND: fe_var_rand(p, &p->var[in->var]); break;
		case FE_FIX_IPV4: fe_fix_ipv4(pkt + in->off); break;
		case FE_FIX_L4_IPV4:
			fe_fix_l4_ipv4(pkt + in->off, pkt + in->off2,
				       pkt + in->off3);
			break;
		case FE_FIX_L4_IPV6:
			fe_fix_l4_ipv6(pkt + in->off, pkt + in->off2,
				       pkt + in->off3);
			break;
		default:
			fe_write(in, p->var[in->var].cur + in->add, pkt);
			break;
		}
	}
}

#endif
