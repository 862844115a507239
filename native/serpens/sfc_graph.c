/*
 * sfc_graph.c: deploy_sfc. An SFC's traffic match (IPv4 prefixes, protocol, port) and its graph (Fig. 8:
 * NF names, distribute with a selector, aggregate) flattened into the label positions of ctl.h, in
 * topological order, so that the Chainer runs it in one pass per batch. Separate because it is pure
 * graph work on the deployed NFs: it starts nothing, except with --startup fork the SFC's zygote.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_int.h"
#include "handover.h"

int find_sfc(const char *name)
{
	int i;

	for (i = 0; i < SP_MAX_SFCS; i++)
		if (D->ctl->sfcs[i].used && strcmp(D->ctl->sfcs[i].name, name) == 0)
			return i;
	return -1;
}

static int parse_prefix(const char *s, uint32_t *net, uint32_t *mask)
{
	char buf[64], *slash, *end;
	struct in_addr a;
	long len = 32;

	if (strlen(s) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	if (slash) {
		*slash = '\0';
		/* the whole of it a number 0..32: "/8x" or "/" is a typo, not /8 or /0 */
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		len = strtol(slash + 1, &end, 10);
		if (*end != '\0')
			return -1;
	}
	if (inet_pton(AF_INET, buf, &a) != 1 || len < 0 || len > 32)
		return -1;
	*mask = len ? htonl(~0u << (32 - len)) : 0;
	*net = a.s_addr & *mask;
	return 0;
}

/* Flatten a graph element into positions; returns -1 with err set. `tails` collects the positions whose
 * next must point at whatever comes after this element (aggregate). */
struct flat {
	struct sp_sfc_desc *s;
	char *err;
	size_t errlen;
	int tails[SP_MAX_POS];
	int ntails;
};

static int add_nf_pos(struct flat *f, const char *nf)
{
	int k = find_nf(nf), p, i;

	if (k < 0) {
		snprintf(f->err, f->errlen, "SFC %s names NF '%s', which is not deployed", f->s->name, nf);
		return -1;
	}
	/* an SFC runs only its own tenant's NFs: its runtimes attach to their tables (docs/security.md) */
	if (strcmp(D->ctl->nfs[k].tenant, f->s->tenant) != 0) {
		snprintf(f->err, f->errlen, "SFC %s of tenant %s names NF '%s', which belongs to tenant %s: refused",
			 f->s->name, f->s->tenant, nf, D->ctl->nfs[k].tenant);
		return -1;
	}
	if (f->s->npos >= SP_MAX_POS) {
		snprintf(f->err, f->errlen, "SFC %s: more than %d NFs", f->s->name, SP_MAX_POS);
		return -1;
	}
	p = (int)f->s->npos++;
	f->s->pos[p].nf = (uint16_t)k;
	f->s->pos[p].next_pass = SP_LABEL_END;
	for (i = 0; i < f->ntails; i++)
		f->s->pos[f->tails[i]].next_pass = (uint8_t)p;
	f->ntails = 1;
	f->tails[0] = p;
	return p;
}

static int flatten(struct flat *f, json_t *graph);

static int add_distribute(struct flat *f, json_t *el)
{
	json_t *branches = json_object_get(el, "distribute"), *b;
	const char *sel = json_string_value(json_object_get(el, "selector")), *dot;
	int up, tails[SP_MAX_POS], nt = 0, i, start;
	size_t bi;

	if (!json_is_array(branches) || json_array_size(branches) == 0 ||
	    json_array_size(branches) > SP_MAX_BRANCH || !sel) {
		snprintf(f->err, f->errlen, "SFC %s: distribute needs 1..%d branches and a selector \"nf.name\"",
			 f->s->name, SP_MAX_BRANCH);
		return -1;
	}
	if (f->ntails != 1) {
		snprintf(f->err, f->errlen, "SFC %s: distribute must follow exactly one NF (its verdict selects)",
			 f->s->name);
		return -1;
	}
	up = f->tails[0];
	dot = strchr(sel, '.');
	if (!dot || (size_t)(dot - sel) != strlen(D->ctl->nfs[f->s->pos[up].nf].name) ||
	    strncmp(sel, D->ctl->nfs[f->s->pos[up].nf].name, (size_t)(dot - sel)) != 0) {
		snprintf(f->err, f->errlen, "SFC %s: selector '%s' must belong to the NF before the distribute "
			 "('%s.<selector>')", f->s->name, sel, D->ctl->nfs[f->s->pos[up].nf].name);
		return -1;
	}
	snprintf(f->s->pos[up].selector, sizeof(f->s->pos[up].selector), "%s", dot + 1);
	f->s->pos[up].nbranch = (uint8_t)json_array_size(branches);
	json_array_foreach(branches, bi, b) {
		start = (int)f->s->npos;
		f->ntails = 0;
		if (json_is_string(b)) {
			if (add_nf_pos(f, json_string_value(b)) < 0)
				return -1;
		} else if (json_is_array(b) && json_array_size(b) > 0) {
			if (flatten(f, b) < 0)
				return -1;
		} else {
			snprintf(f->err, f->errlen, "SFC %s: a branch is an NF name or a list of them", f->s->name);
			return -1;
		}
		f->s->pos[up].next[bi] = (uint8_t)start;
		for (i = 0; i < f->ntails; i++)
			tails[nt++] = f->tails[i];
	}
	f->s->pos[up].next_pass = SP_LABEL_DROP; /* with a selector, next[] decides */
	memcpy(f->tails, tails, sizeof(int) * (size_t)nt);
	f->ntails = nt; /* aggregate: all branch ends lead to what follows */
	return 0;
}

static int flatten(struct flat *f, json_t *graph)
{
	json_t *el;
	size_t i;

	json_array_foreach(graph, i, el) {
		if (json_is_string(el)) {
			if (add_nf_pos(f, json_string_value(el)) < 0)
				return -1;
		} else if (json_is_object(el) && json_object_get(el, "distribute")) {
			if (add_distribute(f, el) < 0)
				return -1;
		} else if (json_is_object(el) && json_object_get(el, "aggregate")) {
			continue; /* branches aggregate implicitly into the next element */
		} else {
			snprintf(f->err, f->errlen, "SFC %s: graph element %zu is neither an NF name nor a "
				 "distribute", f->s->name, i);
			return -1;
		}
	}
	return 0;
}

static int selectors_exist(struct sp_sfc_desc *s, char *err, size_t errlen)
{
	unsigned int i;

	for (i = 0; i < s->npos; i++) {
		char sym[SP_NAME_LEN + 32];

		if (!s->pos[i].selector[0])
			continue;
		snprintf(sym, sizeof(sym), "serpens_selector_%s", s->pos[i].selector);
		if (!nf_defines(s->pos[i].nf, sym)) {
			snprintf(err, errlen, "SFC %s: NF %s defines no selector '%s' (SP_SELECTOR)", s->name,
				 D->ctl->nfs[s->pos[i].nf].name, s->pos[i].selector);
			return -1;
		}
	}
	return 0;
}

/* The flattened label graph, for the reply: [{"nf": name, "next": [..] or "next_pass": n}, ...]. */
static json_t *positions_json(const struct sp_sfc_desc *s)
{
	json_t *out = json_array();
	unsigned int i, b;

	for (i = 0; i < s->npos; i++) {
		const struct sp_pos *p = &s->pos[i];
		json_t *o = json_pack("{s:s}", "nf", D->ctl->nfs[p->nf].name);

		if (p->selector[0]) {
			json_t *next = json_array();

			for (b = 0; b < p->nbranch; b++)
				json_array_append_new(next, json_integer(p->next[b]));
			json_object_set_new(o, "selector", json_string(p->selector));
			json_object_set_new(o, "next", next);
		} else {
			json_object_set_new(o, "next_pass", p->next_pass == SP_LABEL_END ? json_string("end")
							    : json_integer(p->next_pass));
		}
		json_array_append_new(out, o);
	}
	return out;
}

json_t *deploy_sfc(json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	json_t *graph = json_object_get(req, "graph"), *match = json_object_get(req, "match"), *v, *err_rep;
	static const char *const match_keys[] = {"dst", "src", "proto", "dport", NULL};
	json_int_t num;
	struct sp_sfc_desc tmp;
	struct flat f;
	char err[512];
	int i, slot = -1, tidx;

	if (!name || !*name || strlen(name) >= SP_NAME_LEN)
		return fail("deploy_sfc: 'name' is required (< %d chars)", SP_NAME_LEN);
	if (find_sfc(name) >= 0)
		return fail("deploy_sfc: an SFC named '%s' exists already", name);
	if (!json_is_array(graph) || json_array_size(graph) == 0)
		return fail("deploy_sfc %s: 'graph' must be a non-empty list", name);
	memset(&tmp, 0, sizeof(tmp));
	snprintf(tmp.name, sizeof(tmp.name), "%s", name);
	if ((err_rep = tenant_field(req, "deploy_sfc", tmp.tenant)))
		return err_rep;
	if (match && !json_is_object(match))
		return fail("deploy_sfc %s: 'match' must be an object", name);
	if ((v = json_object_get(match, "dst")) &&
	    (!json_is_string(v) || parse_prefix(json_string_value(v), &tmp.match.dst, &tmp.match.dst_mask)))
		return fail("deploy_sfc %s: match.dst must be an IPv4 prefix like 48.0.0.0/8", name);
	if ((v = json_object_get(match, "src")) &&
	    (!json_is_string(v) || parse_prefix(json_string_value(v), &tmp.match.src, &tmp.match.src_mask)))
		return fail("deploy_sfc %s: match.src must be an IPv4 prefix", name);
	if ((err_rep = only_fields(match, "deploy_sfc: match", match_keys)) ||
	    (err_rep = int_field(match, "deploy_sfc: match", "proto", 0, 255, 0, &num)))
		return err_rep;
	tmp.match.proto = (uint8_t)num; /* 0: any */
	if ((err_rep = int_field(match, "deploy_sfc: match", "dport", 0, 65535, 0, &num)))
		return err_rep;
	tmp.match.dport = htons((uint16_t)num); /* 0: any */
	f = (struct flat){.s = &tmp, .err = err, .errlen = sizeof(err)};
	if (flatten(&f, graph) != 0 || selectors_exist(&tmp, err, sizeof(err)) != 0)
		return fail("deploy_sfc: %s", err);
	for (i = 0; i < SP_MAX_SFCS && slot < 0; i++)
		if (!D->ctl->sfcs[i].used)
			slot = i;
	if (slot < 0)
		return fail("deploy_sfc: %d SFCs deployed already", SP_MAX_SFCS);
	/* its runtimes get this tenant's state region, decided here in serpensd's own memory (tenant_region.h) */
	tidx = tr_index(tmp.tenant, true, err, sizeof(err));
	if (tidx < 0)
		return fail("deploy_sfc %s: %s", name, err);
	D->sfc_tenant[slot] = (int8_t)tidx;
	ho_sfc_add(slot, &tmp, tidx); /* the NFs whose images its runtimes get: from this copy (handover.h) */
	tmp.used = 1;
	D->ctl->sfcs[slot] = tmp;
	if (D->starter->resident == ST_RES_ZYGOTE && zygote_launch(slot, err, sizeof(err)) != 0) {
		D->ctl->sfcs[slot].used = 0;
		return fail("deploy_sfc: %s", err);
	}
	control_publish_routes(D);
	pool_prewarm(slot);
	return json_pack("{s:b, s:i, s:o, s:s}", "ok", 1, "sfc", slot, "positions", positions_json(&tmp), "tenant",
			 tmp.tenant);
}
