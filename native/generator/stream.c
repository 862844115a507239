/*
 * stream.c: loads STLStream.to_json() objects into gen_streams (see
 * stream.h). The accepted subset:
 *   mode.type        "continuous", "single_burst" (total_pkts),
 *                    "multi_burst" (pkts_per_burst, ibg, count)
 *   mode.rate.type   "pps", "bps_L1" (frame + FCS + 20 B preamble/IFG),
 *                    "bps_L2" (frame + FCS); never "percentage"
 *   enabled          false streams are skipped
 *   self_start       must be true
 *   isg              start delay in microseconds (honoured)
 *   packet.binary    14..GEN_MAX_PKT bytes
 *   vm               see fe.c
 *   flow_stats       disabled, or rule_type "latency" / "stats" with
 *                    stream_id = pg_id
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_malloc.h>

#include "stream.h"

struct load_ctx {
	unsigned int idx;
	double mult;
	char *err;
	size_t errlen;
};

static int load_fail(struct load_ctx *c, const char *field,
		     const char *fmt, ...)
{
	char msg[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(c->err, c->errlen, "stream %u: field '%s': %s", c->idx,
		 field, msg);
	return -1;
}

static int b64_val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

/* Decode base64 (padding optional). Returns length or -1. */
static long b64_decode(const char *in, uint8_t *out, size_t cap)
{
	uint32_t acc = 0;
	size_t n = 0;
	int bits = 0, v;

	for (; *in && *in != '='; in++) {
		if (*in == '\n' || *in == '\r')
			continue;
		v = b64_val((unsigned char)*in);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	return (long)n;
}

/* The decode buffer is as large as the text can decode to, so that a frame
 * too long is refused for its length, not as bad base64. */
static int load_packet(struct load_ctx *c, json_t *o, struct gen_stream *s)
{
	json_t *pkt = json_object_get(o, "packet");
	json_t *bin = json_object_get(pkt, "binary");
	size_t cap;
	uint8_t *buf;
	long n;

	if (!json_is_string(bin))
		return load_fail(c, "packet.binary", "missing or not a "
				 "base64 string");
	cap = json_string_length(bin) / 4 * 3 + 3;
	buf = malloc(cap);
	if (buf == NULL)
		return load_fail(c, "packet", "out of memory");
	n = b64_decode(json_string_value(bin), buf, cap);
	if (n < 0 || n < 14 || n > GEN_MAX_PKT) {
		free(buf);
		if (n < 0)
			return load_fail(c, "packet.binary", "not valid base64");
		return load_fail(c, "packet.binary", "frame of %ld bytes "
				 "(must be 14..%d without FCS)", n,
				 GEN_MAX_PKT);
	}
	s->len = (uint16_t)n;
	s->tmpl = rte_zmalloc("tmpl", (size_t)n, RTE_CACHE_LINE_SIZE);
	if (s->tmpl != NULL)
		memcpy(s->tmpl, buf, (size_t)n);
	free(buf);
	if (s->tmpl == NULL)
		return load_fail(c, "packet", "out of memory");
	return 0;
}

/* A positive integer field of mode (an integral real is accepted). */
static int load_count(struct load_ctx *c, json_t *mode, const char *key,
		      uint64_t *out)
{
	json_t *v = json_object_get(mode, key);
	char field[64];
	double d;

	snprintf(field, sizeof(field), "mode.%s", key);
	d = json_is_number(v) ? json_number_value(v) : -1;
	if (d < 1 || d > 1e15 || d != (double)(uint64_t)d)
		return load_fail(c, field, "must be an integer >= 1");
	*out = (uint64_t)d;
	return 0;
}

/* mode.type: continuous, or TRex's bursts. A burst stream ends when its
 * packets are sent (or skipped); the trial still lasts --duration. */
static int load_mode(struct load_ctx *c, json_t *mode, struct gen_stream *s)
{
	const char *mt = json_string_value(json_object_get(mode, "type"));
	json_t *ibg;
	uint64_t count = 0;

	if (mt != NULL && strcmp(mt, "continuous") == 0) {
		s->mode = GEN_MODE_CONTINUOUS;
		return 0;
	}
	if (mt != NULL && strcmp(mt, "single_burst") == 0) {
		s->mode = GEN_MODE_SINGLE_BURST;
		return load_count(c, mode, "total_pkts", &s->total);
	}
	if (mt == NULL || strcmp(mt, "multi_burst") != 0)
		return load_fail(c, "mode.type", "'%s' is not supported "
				 "(continuous, single_burst, multi_burst)",
				 mt ? mt : "(missing)");
	s->mode = GEN_MODE_MULTI_BURST;
	if (load_count(c, mode, "pkts_per_burst", &s->ppb) ||
	    load_count(c, mode, "count", &count))
		return -1;
	ibg = json_object_get(mode, "ibg");
	if (ibg != NULL && (!json_is_number(ibg) ||
			    json_number_value(ibg) < 0))
		return load_fail(c, "mode.ibg", "must be a number >= 0 "
				 "(microseconds)");
	s->ibg_us = ibg ? json_number_value(ibg) : 0.0;
	if (s->ppb > UINT64_MAX / count)
		return load_fail(c, "mode.count", "pkts_per_burst x count "
				 "overflows");
	s->total = s->ppb * count;
	return 0;
}

static int load_rate(struct load_ctx *c, json_t *o, struct gen_stream *s)
{
	json_t *mode = json_object_get(o, "mode");
	json_t *rate = json_object_get(mode, "rate");
	const char *rt = json_string_value(json_object_get(rate, "type"));
	json_t *val = json_object_get(rate, "value");
	double v;

	if (load_mode(c, mode, s) != 0)
		return -1;
	if (!json_is_number(val) || json_number_value(val) <= 0)
		return load_fail(c, "mode.rate.value", "must be a number > 0");
	v = json_number_value(val);
	if (rt && strcmp(rt, "pps") == 0)
		s->pps = v;
	else if (rt && strcmp(rt, "bps_L1") == 0)
		s->pps = v / ((s->len + 4.0 + 20.0) * 8.0);
	else if (rt && strcmp(rt, "bps_L2") == 0)
		s->pps = v / ((s->len + 4.0) * 8.0);
	else if (rt && strcmp(rt, "percentage") == 0)
		return load_fail(c, "mode.rate.type", "'percentage' is not "
				 "supported: virtual devices have no line "
				 "rate; use pps, bps_L1 or bps_L2");
	else
		return load_fail(c, "mode.rate.type", "'%s' is not supported "
				 "(pps, bps_L1, bps_L2)", rt ? rt : "(missing)");
	s->pps *= c->mult;
	return 0;
}

/* Fields that would change the schedule: refuse all but the defaults. */
static int load_schedule(struct load_ctx *c, json_t *o, struct gen_stream *s)
{
	json_t *v;

	v = json_object_get(o, "self_start");
	if (v != NULL && !json_is_true(v))
		return load_fail(c, "self_start", "must be true (streams "
				 "started by other streams are not supported)");
	v = json_object_get(o, "start_paused");
	if (v != NULL && !json_is_false(v))
		return load_fail(c, "start_paused", "must be false");
	v = json_object_get(o, "next_stream_id");
	if (v != NULL && !(json_is_integer(v) && json_integer_value(v) == -1))
		return load_fail(c, "next_stream_id", "stream chaining is not "
				 "supported");
	v = json_object_get(o, "action_count");
	if (v != NULL && !(json_is_integer(v) && json_integer_value(v) == 0))
		return load_fail(c, "action_count", "must be 0");
	v = json_object_get(o, "isg");
	if (v != NULL && (!json_is_number(v) || json_number_value(v) < 0))
		return load_fail(c, "isg", "must be a number >= 0 "
				 "(microseconds)");
	s->isg_us = v ? json_number_value(v) : 0.0;
	return 0;
}

static int load_flow_stats(struct load_ctx *c, json_t *o, struct gen_stream *s)
{
	json_t *fs = json_object_get(o, "flow_stats");
	json_t *en = json_object_get(fs, "enabled");
	json_t *id = json_object_get(fs, "stream_id");
	const char *rt = json_string_value(json_object_get(fs, "rule_type"));

	s->pg_id = -1;
	if (fs == NULL || json_is_null(fs) || !json_is_true(en))
		return 0;
	if (rt == NULL || (strcmp(rt, "latency") != 0 &&
			   strcmp(rt, "stats") != 0))
		return load_fail(c, "flow_stats.rule_type", "'%s' is not "
				 "supported ('latency' or 'stats')",
				 rt ? rt : "(missing)");
	s->pg_stats = strcmp(rt, "stats") == 0;
	if (!json_is_integer(id) || json_integer_value(id) < 0 ||
	    json_integer_value(id) > 65535)
		return load_fail(c, "flow_stats.stream_id", "pg_id must be an "
				 "integer in 0..65535");
	if (s->len < LAT_MIN_PKT)
		return load_fail(c, "packet.binary", "a flow_stats stream "
				 "needs at least %d bytes (headers + 16-byte "
				 "signature), got %u", LAT_MIN_PKT, s->len);
	s->pg_id = (int)json_integer_value(id);
	return 0;
}

static uint64_t load_seed(json_t *o, unsigned int idx)
{
	json_t *v = json_object_get(o, "random_seed");

	if (json_is_integer(v) && json_integer_value(v) > 0)
		return (uint64_t)json_integer_value(v);
	return rte_rdtsc() ^ ((uint64_t)idx * 0x9e3779b97f4a7c15ull);
}

/* The latency checksum fix trusts the template's IP length fields. */
static int load_check_lat_fields(struct load_ctx *c, struct gen_stream *s)
{
	unsigned int off = s->ltx.ip_off, n = 4;
	int w;

	if (s->ltx.l4 == LAT_L4_NONE)
		return 0;
	if (s->ltx.l4 == LAT_L4_IPV6) {
		off += 4;
		n = 2;
	}
	w = fe_writes_overlap(&s->fe, off, n);
	if (w >= 0)
		return load_fail(c, "vm.instructions", "instruction %d writes "
				 "over the IP length fields of a latency "
				 "stream", w);
	return 0;
}

static int load_vm(struct load_ctx *c, json_t *o, struct gen_stream *s)
{
	uint16_t protect = s->pg_id >= 0 ? s->len - LAT_SIG_LEN : s->len;
	char ferr[320];

	if (s->pg_id >= 0)
		lat_tx_init(&s->ltx, (uint16_t)s->pg_id, s->tmpl, s->len);
	if (fe_compile(&s->fe, json_object_get(o, "vm"), s->tmpl, s->len,
		       protect, load_seed(o, c->idx), ferr, sizeof(ferr)) != 0) {
		snprintf(c->err, c->errlen, "stream %u: %s", c->idx, ferr);
		return -1;
	}
	s->has_fe = s->fe.n_insn > 0;
	return s->pg_id >= 0 ? load_check_lat_fields(c, s) : 0;
}

static int load_one(struct load_ctx *c, json_t *o, struct stream_set *set)
{
	struct gen_stream *s = &set->s[set->n];
	json_t *en = json_object_get(o, "enabled");

	if (!json_is_object(o))
		return load_fail(c, "(stream)", "not a JSON object");
	if (en != NULL && !json_is_boolean(en))
		return load_fail(c, "enabled", "must be true or false");
	if (json_is_false(en))
		return 0;
	memset(s, 0, sizeof(*s));
	s->index = c->idx;
	s->lat = -1;
	set->n++;       /* from here on streams_free() owns s->tmpl */
	if (load_packet(c, o, s) || load_rate(c, o, s) ||
	    load_schedule(c, o, s) || load_flow_stats(c, o, s) ||
	    load_vm(c, o, s))
		return -1;
	if (s->pg_id >= 0) {
		s->lat = (int8_t)lat_table_add(&set->lat, (uint16_t)s->pg_id);
		if (s->lat < 0)
			return load_fail(c, "flow_stats.stream_id", "pg_id %d "
					 "is used twice (or more than %d "
					 "latency streams)", s->pg_id,
					 LAT_MAX_PG);
	}
	return 0;
}

static json_t *load_list(json_t *root, char *err, size_t errlen)
{
	json_t *list = json_is_array(root) ? root :
		json_object_get(root, "streams");

	if (!json_is_array(list)) {
		snprintf(err, errlen, "expected a list of streams or "
			 "{\"streams\": [...]}");
		return NULL;
	}
	if (json_array_size(list) > GEN_MAX_STREAMS) {
		snprintf(err, errlen, "%zu streams (max %d)",
			 json_array_size(list), GEN_MAX_STREAMS);
		return NULL;
	}
	return list;
}

static int load_all(json_t *list, double mult, struct stream_set *set,
		    char *err, size_t errlen)
{
	struct load_ctx c = { 0, mult, err, errlen };
	json_t *o;
	size_t i;

	set->n_input = (unsigned int)json_array_size(list);
	set->s = calloc(set->n_input ? set->n_input : 1, sizeof(*set->s));
	if (set->s == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	json_array_foreach(list, i, o) {
		c.idx = (unsigned int)i;
		if (load_one(&c, o, set) != 0)
			return -1;
	}
	if (set->n == 0) {
		snprintf(err, errlen, "no enabled stream");
		return -1;
	}
	return 0;
}

int streams_load(const char *path, double mult, struct stream_set *set,
		 char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *list;
	int ret = -1;

	memset(set, 0, sizeof(*set));
	root = json_load_file(path, 0, &jerr);
	if (root == NULL) {
		snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
		return -1;
	}
	list = load_list(root, err, errlen);
	if (list != NULL)
		ret = load_all(list, mult, set, err, errlen);
	json_decref(root);
	return ret;
}

void streams_free(struct stream_set *set)
{
	unsigned int i;

	for (i = 0; i < set->n; i++)
		rte_free(set->s[i].tmpl);
	free(set->s);
	set->s = NULL;
	set->n = 0;
	lat_table_free(&set->lat);
}

uint16_t streams_max_len(const struct stream_set *set)
{
	uint16_t max = 0;
	unsigned int i;

	for (i = 0; i < set->n; i++)
		if (set->s[i].len > max)
			max = set->s[i].len;
	return max;
}

const char *stream_mode_name(const struct gen_stream *s)
{
	switch (s->mode) {
	case GEN_MODE_SINGLE_BURST: return "single_burst";
	case GEN_MODE_MULTI_BURST: return "multi_burst";
	default: return "continuous";
	}
}

double streams_offered_pps(const struct stream_set *set)
{
	double sum = 0.0;
	unsigned int i;

	for (i = 0; i < set->n; i++)
		sum += set->s[i].pps;
	return sum;
}
