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
 * Semantics follow TRex (single data-plane core): flow_var inc goes init,
 * init+step, ... and wraps from max to min (the overshoot carries over); dec
 * mirrors it; random is uniform in [min, max]. tuple_flow_var steps an
 * (ip, port) pair, ip first, port when ip wraps, back to the first pair after
 * limit_flows pairs; flow_var_rand_limit repeats the same `limit` values
 * (TRex's own generator and seed). Vars advance once per packet, in program
 * order; write_flow_var writes the low `size` bytes of (var + add_value);
 * write_mask_flow_var merges a shifted var into a field under a mask;
 * trim_pkt_size sets the packet's length from a var. docs/generator.md has
 * the details.
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
	FE_VAR_RAND_LIMIT,  /* var: TRex's LCG, reseeded every var.limit values */
	FE_TUPLE,           /* vars var, var+1, var+2: ip, port, flow id;
			     * add: limit_flows (0: none) */
	FE_WR_MASK,         /* off2: field size | FE_MASK_BIG; off3: shift
			     * (int16); add: mask << 32 | add_value */
	FE_TRIM,            /* packet length = var */
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
	uint64_t limit;    /* rand_limit: values per cycle */
	uint64_t cnt;      /* rand_limit: values drawn in this cycle */
	uint32_t seed;     /* rand_limit: LCG state */
	uint32_t seed0;    /* rand_limit: LCG state at each cycle start */
	char name[32];
	uint8_t size;
};

struct fe_insn {
	uint8_t op;
	uint8_t var;
	uint16_t off;
	uint16_t off2;
	uint16_t off3;
	uint64_t add;      /* write_mask packs its mask in here, so that an
			    * instruction stays 16 bytes */
};

struct fe_prog {
	unsigned int n_insn;
	unsigned int n_var;
	unsigned int trims;   /* the program has a trim_pkt_size */
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

/*
 * TRex's data-plane random generator (the classic 32-bit LCG, 15 bits out
 * per step): flow_var_rand_limit uses it so that a seed gives the values
 * TRex gives. 16-bit draws are one step, 32-bit two, 64-bit four.
 */
#define FE_LCG_A 214013u
#define FE_LCG_C 2531011u

static inline uint32_t fe_lcg16(uint32_t *s)
{
	*s = FE_LCG_A * *s + FE_LCG_C;
	return (*s >> 16) & 0x7fff;
}

static inline uint32_t fe_lcg32(uint32_t *s)
{
	uint32_t hi = fe_lcg16(s);

	return (hi << 16) + fe_lcg16(s);
}

/* LCG steps one value of a var of this size takes. */
static inline unsigned int fe_lcg_steps(uint8_t size)
{
	return size <= 2 ? 1 : size == 4 ? 2 : 4;
}

static inline void fe_var_rand_limit(struct fe_var *v)
{
	uint64_t r;

	if (v->cnt == v->limit) {
		v->seed = v->seed0;
		v->cnt = 0;
	}
	if (v->size <= 2) {
		r = fe_lcg16(&v->seed);
	} else if (v->size == 4) {
		r = fe_lcg32(&v->seed);
	} else {
		r = (uint64_t)fe_lcg32(&v->seed) << 32;
		r += fe_lcg32(&v->seed);
	}
	v->cur = v->range == UINT64_MAX ? r : v->min + r % (v->range + 1);
	v->cnt++;
}

/* tuple_flow_var: ip (v), port (v + 1), flow id (v + 2). The ip steps by
 * one, the port when the ip wraps; with a limit, the pair after limit pairs
 * is the first one again. */
static inline void fe_tuple_next(struct fe_var *v, uint64_t limit)
{
	struct fe_var *ip = v, *port = v + 1, *fid = v + 2;

	if (ip->cur - ip->min < ip->range) {
		ip->cur++;
	} else {
		ip->cur = ip->min;
		port->cur = port->cur - port->min < port->range ?
			port->cur + 1 : port->min;
	}
	if (limit != 0 && ++fid->cur > limit) {
		fid->cur = 1;
		ip->cur = ip->min;
		port->cur = port->min;
	}
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

static inline uint32_t fe_rd_field(const uint8_t *p, unsigned int size,
				   int big)
{
	uint16_t v16;
	uint32_t v32;

	if (size == 1)
		return *p;
	if (size == 2) {
		__builtin_memcpy(&v16, p, 2);
		return big ? rte_be_to_cpu_16(v16) : rte_le_to_cpu_16(v16);
	}
	__builtin_memcpy(&v32, p, 4);
	return big ? rte_be_to_cpu_32(v32) : rte_le_to_cpu_32(v32);
}

static inline void fe_wr_field(uint8_t *p, unsigned int size, int big,
			       uint32_t x)
{
	uint16_t v16;
	uint32_t v32;

	if (size == 1) {
		*p = (uint8_t)x;
	} else if (size == 2) {
		v16 = big ? rte_cpu_to_be_16((uint16_t)x) :
			rte_cpu_to_le_16((uint16_t)x);
		__builtin_memcpy(p, &v16, 2);
	} else {
		v32 = big ? rte_cpu_to_be_32(x) : rte_cpu_to_le_32(x);
		__builtin_memcpy(p, &v32, 4);
	}
}

/* write_mask_flow_var as TRex computes it: 32-bit arithmetic on the var,
 * + add, shifted (left if positive), merged under mask into the field
 * read in the write's byte order. The high bit of off2 is "big endian". */
#define FE_MASK_BIG 0x8000u

static inline void fe_write_mask(const struct fe_insn *in, uint64_t var,
				 uint8_t *pkt)
{
	unsigned int size = in->off2 & 0xff;
	int big = (in->off2 & FE_MASK_BIG) != 0;
	int16_t shift = (int16_t)in->off3;
	uint32_t val = (uint32_t)var + (uint32_t)in->add, f;
	uint32_t mask = (uint32_t)(in->add >> 32);

	if (shift > 0)
		val <<= shift;
	else if (shift < 0)
		val >>= -shift;
	f = fe_rd_field(pkt + in->off, size, big);
	fe_wr_field(pkt + in->off, size, big, (f & ~mask) | (val & mask));
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

/* Advance an LCG state by n steps at once (the affine map squared). */
static inline uint32_t fe_lcg_skip(uint32_t s, uint64_t n)
{
	uint32_t a = FE_LCG_A, c = FE_LCG_C, ra = 1, rc = 0;

	while (n) {
		if (n & 1) {
			ra *= a;
			rc = rc * a + c;
		}
		c = c * (a + 1);
		a *= a;
		n >>= 1;
	}
	return ra * s + rc;
}

/* rand_limit: put the var at value (cnt - n) of its cycle; the cycle
 * repeats, so crossing its start wraps. cnt == limit and cnt == 0 are the
 * same point (the next value restarts the cycle). */
static inline void fe_rand_limit_back(struct fe_var *v, uint64_t n)
{
	uint64_t q = (v->cnt % v->limit + v->limit - n % v->limit) % v->limit;

	v->cnt = q;
	v->seed = fe_lcg_skip(v->seed0, q * fe_lcg_steps(v->size));
}

/* tuple: put the pair n pairs back. Pair k of the sequence (k from 0) is
 * (ip_min + k mod ips, port_min + (k / ips) mod ports); it cycles after
 * limit pairs, or after ips x ports without a limit. */
static inline void fe_tuple_back(struct fe_var *v, uint64_t limit, uint64_t n)
{
	struct fe_var *ip = v, *port = v + 1, *fid = v + 2;
	uint64_t ips = ip->range + 1, ports = port->range + 1;
	uint64_t cycle = limit ? limit : ips * ports, k;

	if (limit)
		k = fid->cur == 0 ? cycle - 1 : fid->cur - 1;
	else
		k = (port->cur - port->min) * ips + (ip->cur - ip->min);
	k = (k + cycle - n % cycle) % cycle;
	ip->cur = ip->min + k % ips;
	port->cur = port->min + (k / ips) % ports;
	fid->cur = limit ? k + 1 : 0;
}

/*
 * Take back the last n packets built: the PMD refused them and they stay
 * owed, so the packets built in their place must carry the values they had.
 * Without this every refusal (a full ring, retried every few µs under
 * overload) would skip values: a stream whose every packet must be a new
 * flow (the churn workload, one range per trial) would wrap and repeat
 * flows. inc/dec vars, tuples and rand_limit vars (whose cycle must stay
 * `limit` values long) step back; random vars have no sequence to restore.
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
		else if (in->op == FE_TUPLE)
			fe_tuple_back(&p->var[in->var], in->add, n);
		else if (in->op == FE_VAR_RAND_LIMIT)
			fe_rand_limit_back(&p->var[in->var], n);
	}
}

/* Run the program on one packet of len bytes (the template already copied
 * in). Returns the packet's length, which trim_pkt_size may have cut. */
static inline uint16_t fe_run(struct fe_prog *p, uint8_t *pkt, uint16_t len)
{
	unsigned int i;

	for (i = 0; i < p->n_insn; i++) {
		const struct fe_insn *in = &p->insn[i];

		switch (in->op) {
		case FE_VAR_INC: fe_var_inc(&p->var[in->var]); break;
		case FE_VAR_DEC: fe_var_dec(&p->var[in->var]); break;
		case FE_VAR_RAND: fe_var_rand(p, &p->var[in->var]); break;
		case FE_VAR_RAND_LIMIT:
			fe_var_rand_limit(&p->var[in->var]);
			break;
		case FE_TUPLE: fe_tuple_next(&p->var[in->var], in->add); break;
		case FE_WR_MASK:
			fe_write_mask(in, p->var[in->var].cur, pkt);
			break;
		case FE_TRIM: len = (uint16_t)p->var[in->var].cur; break;
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
	return len;
}

#endif
