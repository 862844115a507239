/*
 * state_transfer.c: moving a share of global|write|release state (a resource pool such as NAT's IP/port
 * pairs, struct sp_pool) from one server's State Manager to another's (docs/multiserver.md, "State").
 *
 * Every server deploys the same NFs, so each State Manager starts with the whole pool: two servers
 * handing out ports from it would hand the same port out twice. The controller therefore makes one
 * State Manager (the gateway's) the owner and, before an instance starts on a worker, moves a share:
 * share_export takes free items out of the owner's base value (so the owner can never hand them out),
 * share_import on the worker replaces its base with exactly those items. The worker's Instance Manager
 * then splits that share among its instances as on one server. Items are only ever moved, never
 * copied, so across servers every item has one holder.
 *
 *   {"cmd":"share_export","table":T,"key":HEX,"count":N} -> {"items":[...], "left":n}  (at most N)
 *   {"cmd":"share_import","table":T,"key":HEX,"items":[...],"replace":true|false} -> {"nfree":n}
 *   {"cmd":"share_list"} -> {"pools":[{"table","key","nfree","cap"}, ...]}: every release pool here (merged)
 *
 * replace empties the base first and needs a server with no instance holding a sub-pool of it (their
 * items came from the server's own initial pool); without it the items are added to the base, where the
 * next split or trigger deals them out.
 *
 * A table lives in its tenant's State Manager region (tenant_region.h); the pause and the update hooks
 * run on that region, made the current one for the request (sm_set_region) and then the default again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_int.h"
#include "state.h"
#include "tenant_region.h"

#define SHARE_KEY_MAX 64

/* The pool value named by the request, or an error reply in *err. */
static struct sp_pool *pool_of(json_t *req, const char *cmd, struct sm_region **region, json_t **err)
{
	const char *table = json_string_value(json_object_get(req, "table"));
	const char *hex = json_string_value(json_object_get(req, "key"));
	uint8_t key[SHARE_KEY_MAX];
	uint32_t flags = 0, ks = 0, vs = 0;
	uint64_t count;
	struct sp_pool *p;
	int n;

	*err = NULL;
	if (!table || !hex) {
		*err = fail("%s: 'table' and 'key' (hex) are required", cmd);
		return NULL;
	}
	*region = tr_region_of_table(table);
	if (!*region || sm_table_info(*region, table, &flags, &ks, &vs, &count) != 0) {
		*err = fail("%s: no table named '%s'", cmd, table);
		return NULL;
	}
	if ((flags & (SP_GLOBAL | SP_WRITE | SP_RELEASE)) != (SP_GLOBAL | SP_WRITE | SP_RELEASE)) {
		*err = fail("%s: %s is not global|write|release state: only a release pool is moved in shares", cmd,
			    table);
		return NULL;
	}
	n = hex_field_decode(hex, key, sizeof(key));
	if (n != (int)ks) {
		*err = fail("%s %s: key must be %u bytes of hex", cmd, table, ks);
		return NULL;
	}
	p = sm_base_value(*region, table, key, ks, &flags, &vs);
	if (!p || vs < sizeof(*p) || p->cap == 0 || SP_POOL_SIZE(p->cap) > vs)
		*err = fail("%s %s: no pool under key %s", cmd, table, hex);
	return *err ? NULL : p;
}

static json_t *share_export(json_t *req)
{
	static const char *const known[] = {"cmd", "table", "key", "count", NULL};
	json_t *err, *items;
	struct sm_region *r;
	json_int_t want;
	struct sp_pool *p;
	uint32_t i, n;

	if ((err = only_fields(req, "share_export", known)))
		return err;
	if ((err = int_field(req, "share_export", "count", 1, 1 << 24, 1, &want)))
		return err;
	if (!(p = pool_of(req, "share_export", &r, &err)))
		return err;
	items = json_array();
	sm_set_region(r);
	sm_pause(r, -1); /* no instance inside a batch: nobody takes from or gives to the base meanwhile */
	n = p->nfree < (uint64_t)want ? p->nfree : (uint32_t)want;
	for (i = 0; i < n; i++)
		json_array_append_new(items, json_integer(p->item[p->nfree - n + i]));
	p->nfree -= n;
	sm_resume_as(r, SM_HOOK_UPDATE);
	sm_set_region(D->state);
	return json_pack("{s:b, s:o, s:i}", "ok", 1, "items", items, "left", (json_int_t)p->nfree);
}

static json_t *share_import(json_t *req)
{
	static const char *const known[] = {"cmd", "table", "key", "items", "replace", NULL};
	json_t *err, *items = json_object_get(req, "items"), *v, *rep = json_object_get(req, "replace");
	struct sm_region *r;
	struct sp_pool *p;
	size_t i, n;
	int s;

	if ((err = only_fields(req, "share_import", known)))
		return err;
	if (!json_is_array(items))
		return fail("share_import: 'items' is a list of pool items (numbers)");
	if (rep && !json_is_boolean(rep))
		return fail("share_import: 'replace' is true or false");
	if (!(p = pool_of(req, "share_import", &r, &err)))
		return err;
	n = json_array_size(items);
	json_array_foreach(items, i, v)
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
			return fail("share_import: item %zu is not a 32-bit pool item", i);
	if (json_is_true(rep))
		for (s = 0; s < SM_MAX_INSTANCES; s++)
			if (sm_instance_active(r, s))
				return fail("share_import: instance slot %d holds a share of this server's own pool; "
					    "replace it before any instance starts", s);
	if (!json_is_true(rep) && p->nfree + n > p->cap)
		return fail("share_import: %zu items do not fit: the pool holds %u of %u", n, p->nfree, p->cap);
	if (n > p->cap)
		return fail("share_import: %zu items do not fit: the pool holds at most %u", n, p->cap);
	sm_set_region(r);
	sm_pause(r, -1);
	if (json_is_true(rep))
		p->nfree = 0;
	json_array_foreach(items, i, v)
		p->item[p->nfree++] = (uint32_t)json_integer_value(v);
	sm_resume_as(r, SM_HOOK_UPDATE);
	sm_set_region(D->state);
	return json_pack("{s:b, s:i}", "ok", 1, "nfree", (json_int_t)p->nfree);
}

struct list_ctx {
	json_t *pools;
	const char *table;
	uint32_t ks;
};

static void list_one(const void *key, const void *value, void *arg)
{
	struct list_ctx *c = arg;
	const struct sp_pool *p = value;
	char hex[2 * SHARE_KEY_MAX + 1];
	uint32_t i;

	for (i = 0; i < c->ks && i < SHARE_KEY_MAX; i++)
		snprintf(hex + 2 * i, 3, "%02x", ((const uint8_t *)key)[i]);
	hex[2 * i] = 0;
	json_array_append_new(c->pools, json_pack("{s:s, s:s, s:i, s:i}", "table", c->table, "key", hex, "nfree",
						  (json_int_t)p->nfree, "cap", (json_int_t)p->cap));
}

static json_t *share_list(void)
{
	struct list_ctx c = {.pools = json_array()};
	struct sm_region *r;
	uint32_t flags, vs;
	uint64_t count;
	unsigned int i;
	int t;

	for (t = 0; t < SP_MAX_TENANTS; t++) { /* every tenant's region */
		if (!(r = tr_region(t)))
			continue;
		sm_set_region(r);
		for (i = 0; i < sm_table_count(r); i++) {
			c.table = sm_table_name(r, i);
			if (!c.table || sm_table_info(r, c.table, &flags, &c.ks, &vs, &count) != 0 ||
			    (flags & (SP_GLOBAL | SP_WRITE | SP_RELEASE)) != (SP_GLOBAL | SP_WRITE | SP_RELEASE) ||
			    vs < sizeof(struct sp_pool) || sm_table_is_remote(r, c.table))
				continue;
			sm_table_foreach(r, c.table, list_one, &c);
		}
	}
	sm_set_region(D->state);
	return json_pack("{s:b, s:o}", "ok", 1, "pools", c.pools);
}

json_t *state_share_request(json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (!strcmp(cmd, "share_export"))
		return share_export(req);
	if (!strcmp(cmd, "share_import"))
		return share_import(req);
	if (!strcmp(cmd, "share_list"))
		return share_list();
	return fail("unknown command '%s'", cmd);
}
