/*
 * fe.c: compiles a TRex STL "vm" object into a fe_prog (see fe.h).
 *
 * Everything that could go wrong per packet is checked here, once: offsets
 * inside the template, sizes, value ranges, and that no write can change the
 * fields a checksum fix relies on (IP version/IHL/length), so the hot path
 * needs no bounds checks.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fe.h"

struct fe_ctx {
	struct fe_prog *p;
	const uint8_t *pkt;
	uint16_t len;
	uint16_t protect_off;
	unsigned int idx;       /* instruction index, for messages */
	char *err;
	size_t errlen;
};

static int fe_fail(struct fe_ctx *c, const char *field, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "field 'vm.instructions[%u].%s': %s",
		 c->idx, field, msg);
	return -1;
}

/* Read a non-negative integer (an integral real is accepted too). */
static int fe_get_u64(struct fe_ctx *c, json_t *o, const char *key,
		      uint64_t *out)
{
	json_t *v = json_object_get(o, key);
	double d;

	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return fe_fail(c, key, "must not be negative");
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		d = json_real_value(v);
		if (d < 0 || d > 9.2e18 || d != (double)(uint64_t)d)
			return fe_fail(c, key, "must be a non-negative integer");
		*out = (uint64_t)d;
		return 0;
	}
	return fe_fail(c, key, v ? "must be an integer" : "is missing");
}

/* Read an integer in [lo, hi] that may be negative (add_value, shift). */
static int fe_get_i64(struct fe_ctx *c, json_t *o, const char *key,
		      int64_t lo, int64_t hi, int64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return fe_fail(c, key, v ? "must be an integer" : "is missing");
	if (json_integer_value(v) < lo || json_integer_value(v) > hi)
		return fe_fail(c, key, "%lld is outside %lld..%lld",
			       (long long)json_integer_value(v), (long long)lo,
			       (long long)hi);
	*out = json_integer_value(v);
	return 0;
}

static int fe_get_str(struct fe_ctx *c, json_t *o, const char *key,
		      const char **out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return fe_fail(c, key, v ? "must be a string" : "is missing");
	*out = json_string_value(v);
	return 0;
}

static struct fe_insn *fe_emit(struct fe_ctx *c, uint8_t op)
{
	struct fe_insn *in;

	if (c->p->n_insn >= FE_MAX_INSN) {
		fe_fail(c, "type", "too many instructions (max %d)",
			FE_MAX_INSN);
		return NULL;
	}
	in = &c->p->insn[c->p->n_insn++];
	memset(in, 0, sizeof(*in));
	in->op = op;
	return in;
}

static int fe_find_var(const struct fe_prog *p, const char *name)
{
	unsigned int i;

	for (i = 0; i < p->n_var; i++)
		if (strcmp(p->var[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int fe_var_op(struct fe_ctx *c, const char *op, uint8_t *code)
{
	if (strcmp(op, "inc") == 0)
		*code = FE_VAR_INC;
	else if (strcmp(op, "dec") == 0)
		*code = FE_VAR_DEC;
	else if (strcmp(op, "random") == 0)
		*code = FE_VAR_RAND;
	else
		return fe_fail(c, "op", "'%s' is not supported "
			       "(inc, dec, random)", op);
	return 0;
}

static int fe_var_size(struct fe_ctx *c, json_t *o, uint8_t *size)
{
	uint64_t s = 0;

	if (fe_get_u64(c, o, "size", &s) != 0)
		return -1;
	if (s != 1 && s != 2 && s != 4 && s != 8)
		return fe_fail(c, "size", "%lu is not 1, 2, 4 or 8",
			       (unsigned long)s);
	*size = (uint8_t)s;
	return 0;
}

static int fe_reject_extras(struct fe_ctx *c, json_t *o)
{
	json_t *nv = json_object_get(o, "next_var");

	if (json_object_get(o, "value_list") != NULL)
		return fe_fail(c, "value_list", "is not supported");
	if (nv != NULL && !json_is_null(nv) &&
	    !(json_is_string(nv) && json_string_length(nv) == 0))
		return fe_fail(c, "next_var", "is not supported");
	return 0;
}

/* Value of the var one step "before" init, so the first packet gets init. */
static uint64_t fe_pre_init(const struct fe_var *v, uint8_t op, uint64_t init)
{
	struct fe_var t = *v;

	t.cur = init;
	if (op == FE_VAR_INC)
		fe_var_dec(&t);
	else if (op == FE_VAR_DEC)
		fe_var_inc(&t);
	return t.cur;
}

static int fe_var_values(struct fe_ctx *c, json_t *o, struct fe_var *v,
			 uint8_t op)
{
	uint64_t init = 0, max = 0, step, lim;

	step = 1;
	if (fe_get_u64(c, o, "min_value", &v->min) ||
	    fe_get_u64(c, o, "max_value", &max) ||
	    fe_get_u64(c, o, "init_value", &init))
		return -1;
	if (json_object_get(o, "step") && fe_get_u64(c, o, "step", &step))
		return -1;
	lim = v->size == 8 ? UINT64_MAX : (1ull << (8 * v->size)) - 1;
	if (max > lim)
		return fe_fail(c, "max_value", "%lu does not fit in %u byte(s)",
			       (unsigned long)max, v->size);
	if (v->min > max)
		return fe_fail(c, "min_value", "is greater than max_value");
	if (init < v->min || init > max)
		return fe_fail(c, "init_value", "is outside [min_value, "
			       "max_value]");
	v->range = max - v->min;
	v->step = step % (v->range + 1);
	v->cur = fe_pre_init(v, op, init);
	return 0;
}

/* A new var named prefix + suffix, zeroed; NULL (err set) if the name is
 * taken, too long, or there is no room. */
static struct fe_var *fe_new_var(struct fe_ctx *c, const char *prefix,
				 const char *suffix)
{
	struct fe_prog *p = c->p;
	struct fe_var *v;
	char name[sizeof(v->name)];

	if (strlen(prefix) == 0 ||
	    strlen(prefix) + strlen(suffix) >= sizeof(v->name)) {
		fe_fail(c, "name", "must be 1..%zu characters",
			sizeof(v->name) - 1 - strlen(suffix));
		return NULL;
	}
	memcpy(name, prefix, strlen(prefix));
	memcpy(name + strlen(prefix), suffix, strlen(suffix) + 1);
	if (fe_find_var(p, name) >= 0) {
		fe_fail(c, "name", "'%s' is defined twice", name);
		return NULL;
	}
	if (p->n_var >= FE_MAX_VARS) {
		fe_fail(c, "name", "too many flow vars (max %d; a "
			"tuple_flow_var takes 3)", FE_MAX_VARS);
		return NULL;
	}
	v = &p->var[p->n_var++];
	memset(v, 0, sizeof(*v));
	memcpy(v->name, name, sizeof(name));
	return v;
}

static int fe_emit_var(struct fe_ctx *c, uint8_t code, const struct fe_var *v)
{
	struct fe_insn *in = fe_emit(c, code);

	if (in == NULL)
		return -1;
	in->var = (uint8_t)(v - c->p->var);
	return 0;
}

static int fe_flow_var(struct fe_ctx *c, json_t *o)
{
	struct fe_var *v;
	const char *name = NULL, *op = NULL;
	uint8_t code = 0;

	if (fe_get_str(c, o, "name", &name) || fe_get_str(c, o, "op", &op) ||
	    fe_var_op(c, op, &code) || fe_reject_extras(c, o))
		return -1;
	v = fe_new_var(c, name, "");
	if (v == NULL || fe_var_size(c, o, &v->size) ||
	    fe_var_values(c, o, v, code))
		return -1;
	return fe_emit_var(c, code, v);
}

/*
 * flow_var_rand_limit: `limit` draws from TRex's LCG seeded with `seed`,
 * then the same draws again. TRex refuses a limit of 0 or one that does not
 * fit in the var; so do we.
 */
static int fe_rand_limit_var(struct fe_ctx *c, json_t *o)
{
	const char *name = NULL;
	uint64_t limit = 0, seed = 0, max = 0, lim;
	struct fe_var *v;

	if (fe_get_str(c, o, "name", &name) || fe_reject_extras(c, o))
		return -1;
	v = fe_new_var(c, name, "");
	if (v == NULL || fe_var_size(c, o, &v->size) ||
	    fe_get_u64(c, o, "limit", &limit) ||
	    fe_get_u64(c, o, "seed", &seed) ||
	    fe_get_u64(c, o, "min_value", &v->min) ||
	    fe_get_u64(c, o, "max_value", &max))
		return -1;
	lim = v->size == 8 ? UINT64_MAX : (1ull << (8 * v->size)) - 1;
	if (limit == 0 || limit > lim)
		return fe_fail(c, "limit", "must be 1..%llu for a %u-byte var",
			       (unsigned long long)lim, v->size);
	if (max > lim)
		return fe_fail(c, "max_value", "%lu does not fit in %u byte(s)",
			       (unsigned long)max, v->size);
	if (v->min > max)
		return fe_fail(c, "min_value", "is greater than max_value");
	v->range = max - v->min;
	v->limit = limit;
	v->seed0 = v->seed = (uint32_t)seed;
	v->cur = v->min;
	return fe_emit_var(c, FE_VAR_RAND_LIMIT, v);
}

static int fe_tuple_ranges(struct fe_ctx *c, json_t *o, struct fe_var *ip,
			   struct fe_var *port, uint64_t *limit)
{
	uint64_t ip_max = 0, port_max = 0, flags = 0;

	if (fe_get_u64(c, o, "ip_min", &ip->min) ||
	    fe_get_u64(c, o, "ip_max", &ip_max) ||
	    fe_get_u64(c, o, "port_min", &port->min) ||
	    fe_get_u64(c, o, "port_max", &port_max) ||
	    fe_get_u64(c, o, "limit_flows", limit))
		return -1;
	if (json_object_get(o, "flags") && fe_get_u64(c, o, "flags", &flags))
		return -1;
	if (flags != 0)
		return fe_fail(c, "flags", "%lu is not supported (only 0: with "
			       "flag 1, \"unlimited flows\", TRex versions "
			       "differ in where the port starts)",
			       (unsigned long)flags);
	if (ip_max > UINT32_MAX || ip->min > ip_max)
		return fe_fail(c, "ip_max", "ip_min..ip_max must be a range of "
			       "IPv4 addresses (ip_min <= ip_max < 2^32)");
	if (port_max > UINT16_MAX || port->min > port_max)
		return fe_fail(c, "port_max", "port_min..port_max must be a "
			       "range of ports (port_min <= port_max <= 65535)");
	if (*limit > UINT32_MAX)
		return fe_fail(c, "limit_flows", "must be 0..4294967295");
	ip->range = ip_max - ip->min;
	port->range = port_max - port->min;
	return 0;
}

/*
 * tuple_flow_var: vars NAME.ip (4 bytes), NAME.port (2) and NAME.flow_limit
 * (4, the flow's number from 1 when limit_flows is set, else 0), as in TRex.
 * They start one pair before (ip_min, port_min), so the first packet
 * carries it.
 */
static int fe_tuple_var(struct fe_ctx *c, json_t *o)
{
	struct fe_var *ip, *port, *fid;
	struct fe_insn *in;
	const char *name = NULL;
	uint64_t limit = 0;

	if (fe_get_str(c, o, "name", &name))
		return -1;
	ip = fe_new_var(c, name, ".ip");
	port = ip ? fe_new_var(c, name, ".port") : NULL;
	fid = port ? fe_new_var(c, name, ".flow_limit") : NULL;
	if (fid == NULL || fe_tuple_ranges(c, o, ip, port, &limit))
		return -1;
	ip->size = 4;
	port->size = 2;
	fid->size = 4;
	fid->range = UINT32_MAX;
	ip->cur = ip->min + ip->range;
	port->cur = port->min + port->range;
	fid->cur = 0;
	in = fe_emit(c, FE_TUPLE);
	if (in == NULL)
		return -1;
	in->var = (uint8_t)(ip - c->p->var);
	in->add = limit;
	return 0;
}

static uint8_t fe_write_op(uint8_t size, int big)
{
	switch (size) {
	case 1: return FE_WR1;
	case 2: return big ? FE_WR2_BE : FE_WR2_LE;
	case 4: return big ? FE_WR4_BE : FE_WR4_LE;
	default: return big ? FE_WR8_BE : FE_WR8_LE;
	}
}

/* The var a write names, and its offset checked against the writable part
 * of the packet for a field of `size` bytes (0: the var's size). */
static int fe_write_target(struct fe_ctx *c, json_t *o, unsigned int size,
			   int *vi, uint64_t *off)
{
	const char *name = NULL;

	if (fe_get_str(c, o, "name", &name) ||
	    fe_get_u64(c, o, "pkt_offset", off))
		return -1;
	*vi = fe_find_var(c->p, name);
	if (*vi < 0)
		return fe_fail(c, "name", "flow var '%s' is not defined "
			       "before this write", name);
	if (size == 0)
		size = c->p->var[*vi].size;
	if (*off + size > c->protect_off)
		return fe_fail(c, "pkt_offset", "%lu + %u bytes is past the "
			       "writable part of the packet (%u bytes%s)",
			       (unsigned long)*off, size, c->protect_off,
			       c->protect_off < c->len ?
			       ", the last 16 carry the latency signature" :
			       "");
	return 0;
}

static int fe_get_big(struct fe_ctx *c, json_t *o, int *big)
{
	json_t *v = json_object_get(o, "is_big_endian");

	if (v != NULL && !json_is_boolean(v))
		return fe_fail(c, "is_big_endian", "must be true or false");
	*big = v == NULL || json_is_true(v);
	return 0;
}

/* add_value may be negative (TRex: a signed 32-bit offset, e.g. -14 to turn
 * a frame length into an IP length); the sum wraps in the var's size. */
static int fe_write_flow_var(struct fe_ctx *c, json_t *o)
{
	uint64_t off = 0;
	int64_t add = 0;
	struct fe_insn *in;
	int vi = 0, big = 1;

	if (fe_write_target(c, o, 0, &vi, &off) || fe_get_big(c, o, &big))
		return -1;
	if (json_object_get(o, "add_value") != NULL &&
	    fe_get_i64(c, o, "add_value", INT32_MIN, UINT32_MAX, &add) != 0)
		return -1;
	in = fe_emit(c, fe_write_op(c->p->var[vi].size, big));
	if (in == NULL)
		return -1;
	in->var = (uint8_t)vi;
	in->off = (uint16_t)off;
	in->add = (uint64_t)add;
	return 0;
}

/* write_mask_flow_var: TRex reads at most 4 bytes of the var. */
static int fe_write_mask_var(struct fe_ctx *c, json_t *o)
{
	uint64_t off = 0, size = 0, mask = 0;
	int64_t shift = 0, add = 0;
	struct fe_insn *in;
	int vi = 0, big = 1;

	if (fe_get_u64(c, o, "pkt_cast_size", &size))
		return -1;
	if (size != 1 && size != 2 && size != 4)
		return fe_fail(c, "pkt_cast_size", "%lu is not 1, 2 or 4",
			       (unsigned long)size);
	if (fe_write_target(c, o, (unsigned int)size, &vi, &off) ||
	    fe_get_big(c, o, &big) || fe_get_u64(c, o, "mask", &mask) ||
	    fe_get_i64(c, o, "shift", -31, 31, &shift) ||
	    fe_get_i64(c, o, "add_value", INT32_MIN, UINT32_MAX, &add))
		return -1;
	if (mask > UINT32_MAX)
		return fe_fail(c, "mask", "must fit in 32 bits");
	if (c->p->var[vi].size > 4)
		return fe_fail(c, "name", "an 8-byte var cannot be written "
			       "with a mask (TRex reads 1, 2 or 4 bytes)");
	in = fe_emit(c, FE_WR_MASK);
	if (in == NULL)
		return -1;
	in->var = (uint8_t)vi;
	in->off = (uint16_t)off;
	in->off2 = (uint16_t)(size | (big ? FE_MASK_BIG : 0));
	in->off3 = (uint16_t)(int16_t)shift;
	in->add = mask << 32 | (uint32_t)add;
	return 0;
}

/* trim_pkt_size: the packet is as long as the var says, which must stay
 * within the template (TRex: a 2-byte var) and keep an Ethernet header. A
 * latency stream's signature sits at the end of the template: refused. */
static int fe_trim_insn(struct fe_ctx *c, json_t *o)
{
	const char *name = NULL;
	const struct fe_var *v;
	struct fe_insn *in;
	int vi;

	if (fe_get_str(c, o, "name", &name))
		return -1;
	vi = fe_find_var(c->p, name);
	if (vi < 0)
		return fe_fail(c, "name", "flow var '%s' is not defined "
			       "before this instruction", name);
	v = &c->p->var[vi];
	if (v->size != 2)
		return fe_fail(c, "name", "'%s' must be a 2-byte var (as in "
			       "TRex)", name);
	if (v->min < 14 || v->min + v->range > c->len)
		return fe_fail(c, "name", "'%s' ranges over %lu..%lu: the "
			       "length must stay within 14..%u (the template)",
			       name, (unsigned long)v->min,
			       (unsigned long)(v->min + v->range), c->len);
	if (c->protect_off < c->len)
		return fe_fail(c, "type", "trim_pkt_size would cut the "
			       "latency signature off a latency stream");
	in = fe_emit(c, FE_TRIM);
	if (in == NULL)
		return -1;
	in->var = (uint8_t)vi;
	c->p->trims = 1;
	return 0;
}

static int fe_check_ipv4_at(struct fe_ctx *c, const char *field, uint64_t off)
{
	const uint8_t *ip = c->pkt + off;
	unsigned int ihl;

	if (off + 20 > c->len)
		return fe_fail(c, field, "IPv4 header at %lu does not fit in "
			       "the %u-byte packet", (unsigned long)off, c->len);
	ihl = (ip[0] & 0x0f) * 4u;
	if ((ip[0] >> 4) != 4 || ihl < 20 || off + ihl > c->len)
		return fe_fail(c, field, "no valid IPv4 header at offset %lu",
			       (unsigned long)off);
	return 0;
}

static int fe_emit_fix_ipv4(struct fe_ctx *c, uint64_t off)
{
	struct fe_insn *in = fe_emit(c, FE_FIX_IPV4);

	if (in == NULL)
		return -1;
	in->off = (uint16_t)off;
	return 0;
}

static int fe_fix_ipv4_insn(struct fe_ctx *c, json_t *o)
{
	uint64_t off = 0;

	if (fe_get_u64(c, o, "pkt_offset", &off) ||
	    fe_check_ipv4_at(c, "pkt_offset", off))
		return -1;
	return fe_emit_fix_ipv4(c, off);
}

/* Check the L3 header at l2 and its length field against the template. */
static int fe_check_l3(struct fe_ctx *c, uint64_t l2, uint64_t l4_end,
		       int *is_v6)
{
	const uint8_t *ip = c->pkt + l2;
	unsigned int ver = l2 < c->len ? ip[0] >> 4 : 0;
	uint64_t end;

	*is_v6 = ver == 6;
	if (ver == 4) {
		if (fe_check_ipv4_at(c, "l2_len", l2))
			return -1;
		end = l2 + (((unsigned int)ip[2] << 8) | ip[3]);
	} else if (ver == 6 && l2 + 40 <= c->len) {
		end = l2 + 40 + (((unsigned int)ip[4] << 8) | ip[5]);
	} else {
		return fe_fail(c, "l2_len", "no IPv4/IPv6 header at offset "
			       "%lu (l2_len must be the L3 header offset)",
			       (unsigned long)l2);
	}
	if (end > c->len || end < l4_end)
		return fe_fail(c, "l3_len", "IP length field does not cover "
			       "the L4 header or exceeds the %u-byte packet",
			       c->len);
	return 0;
}

static int fe_fix_hw_l4(struct fe_ctx *c, uint64_t l2, uint64_t l3,
			uint64_t type)
{
	uint64_t l4 = l2 + l3, hdr = type == 11 ? 8 : 20;
	struct fe_insn *in;
	int v6;

	if (fe_check_l3(c, l2, l4 + hdr, &v6))
		return -1;
	if (!v6 && fe_emit_fix_ipv4(c, l2) != 0)
		return -1;
	in = fe_emit(c, v6 ? FE_FIX_L4_IPV6 : FE_FIX_L4_IPV4);
	if (in == NULL)
		return -1;
	in->off = (uint16_t)l2;
	in->off2 = (uint16_t)l4;
	in->off3 = (uint16_t)(l4 + (type == 11 ? 6 : 16));
	return 0;
}

/* fix_checksum_hw done in software: l4_type 11 UDP, 13 TCP, 1 = IP only. */
static int fe_fix_hw_insn(struct fe_ctx *c, json_t *o)
{
	uint64_t l2 = 0, l3 = 0, type = 0;
	int v6;

	if (fe_get_u64(c, o, "l2_len", &l2) || fe_get_u64(c, o, "l3_len", &l3) ||
	    fe_get_u64(c, o, "l4_type", &type))
		return -1;
	if (type != 11 && type != 13 && type != 1)
		return fe_fail(c, "l4_type", "%lu is not supported (11 = UDP, "
			       "13 = TCP, 1 = IP only)", (unsigned long)type);
	if (l3 < 20)
		return fe_fail(c, "l3_len", "%lu is shorter than an IP header",
			       (unsigned long)l3);
	if (type != 1)
		return fe_fix_hw_l4(c, l2, l3, type);
	if (fe_check_l3(c, l2, l2 + l3, &v6))
		return -1;
	return v6 ? 0 : fe_emit_fix_ipv4(c, l2);
}

static int fe_insn(struct fe_ctx *c, json_t *o)
{
	const char *type = NULL;

	if (!json_is_object(o))
		return fe_fail(c, "type", "instruction is not an object");
	if (fe_get_str(c, o, "type", &type))
		return -1;
	if (strcmp(type, "flow_var") == 0)
		return fe_flow_var(c, o);
	if (strcmp(type, "flow_var_rand_limit") == 0)
		return fe_rand_limit_var(c, o);
	if (strcmp(type, "tuple_flow_var") == 0)
		return fe_tuple_var(c, o);
	if (strcmp(type, "write_flow_var") == 0)
		return fe_write_flow_var(c, o);
	if (strcmp(type, "write_mask_flow_var") == 0)
		return fe_write_mask_var(c, o);
	if (strcmp(type, "trim_pkt_size") == 0)
		return fe_trim_insn(c, o);
	if (strcmp(type, "fix_checksum_ipv4") == 0)
		return fe_fix_ipv4_insn(c, o);
	if (strcmp(type, "fix_checksum_hw") == 0)
		return fe_fix_hw_insn(c, o);
	return fe_fail(c, "type", "'%s' is not supported (flow_var, "
		       "flow_var_rand_limit, tuple_flow_var, write_flow_var, "
		       "write_mask_flow_var, trim_pkt_size, fix_checksum_ipv4, "
		       "fix_checksum_hw)", type);
}

static unsigned int fe_write_size(uint8_t op)
{
	switch (op) {
	case FE_WR1: return 1;
	case FE_WR2_BE: case FE_WR2_LE: return 2;
	case FE_WR4_BE: case FE_WR4_LE: return 4;
	case FE_WR8_BE: case FE_WR8_LE: return 8;
	default: return 0;
	}
}

static unsigned int fe_insn_write_size(const struct fe_insn *in)
{
	return in->op == FE_WR_MASK ? in->off2 & 0xffu : fe_write_size(in->op);
}

int fe_writes_overlap(const struct fe_prog *p, unsigned int off,
		      unsigned int n)
{
	unsigned int i, sz;

	for (i = 0; i < p->n_insn; i++) {
		sz = fe_insn_write_size(&p->insn[i]);
		if (sz && p->insn[i].off < off + n && off < p->insn[i].off + sz)
			return (int)i;
	}
	return -1;
}

/* A checksum fix trusts the IP version/IHL and length bytes of the
 * template; refuse programs that write over them. */
static int fe_check_protected(struct fe_ctx *c)
{
	const struct fe_insn *in;
	unsigned int i;
	int w;

	for (i = 0; i < c->p->n_insn; i++) {
		in = &c->p->insn[i];
		if (in->op == FE_FIX_IPV4)
			w = fe_writes_overlap(c->p, in->off, 1);
		else if (in->op == FE_FIX_L4_IPV4)
			w = fe_writes_overlap(c->p, in->off, 4);
		else if (in->op == FE_FIX_L4_IPV6)
			w = fe_writes_overlap(c->p, in->off + 4u, 2);
		else
			continue;
		if (w >= 0) {
			c->idx = (unsigned int)w;
			return fe_fail(c, "pkt_offset", "writes over the IP "
				       "version/length fields that a checksum "
				       "fix depends on");
		}
	}
	return 0;
}

int fe_compile(struct fe_prog *p, json_t *vm, const uint8_t *pkt,
	       uint16_t len, uint16_t protect_off, uint64_t seed,
	       char *err, size_t errlen)
{
	struct fe_ctx c = { p, pkt, len, protect_off, 0, err, errlen };
	json_t *insns, *o;
	size_t i;

	memset(p, 0, sizeof(*p));
	p->rng = seed;
	if (vm == NULL || json_is_null(vm))
		return 0;
	if (!json_is_object(vm)) {
		snprintf(err, errlen, "field 'vm': must be an object");
		return -1;
	}
	insns = json_object_get(vm, "instructions");
	if (insns == NULL)
		return 0;
	if (!json_is_array(insns)) {
		snprintf(err, errlen, "field 'vm.instructions': must be a list");
		return -1;
	}
	json_array_foreach(insns, i, o) {
		c.idx = (unsigned int)i;
		if (fe_insn(&c, o) != 0)
			return -1;
	}
	return fe_check_protected(&c);
}
