/*
 * state_backend.c: which state backend a process runs, and where each of its tables lives.
 *
 *   serpens  nothing is installed: create_table goes to the State Manager (state.c), Redis is never used;
 *   fission  every table in Redis (remote_table.c);
 *   snf      per-flow tables in the State Manager, the rest in Redis.
 *
 * serpensd parses --state-backend (rs_backend_parse) and records the choice in the control memzone
 * (ctl.h); on fission and snf, serpensd and each runtime call rs_setup with it, which installs in that
 * process the create_table router below (sp_state_set_creator), the Chainer's batch hooks
 * (sp_batch_hooks, remote_batch.c) and, in serpensd, the State Manager's remote hooks
 * (remote_manager.c). From then on a table's handle names its sp_state_ops, and nf.h's calls
 * dispatch on that in state.c, not here: there the State Manager's ops are compared first and called
 * directly (inlined), so the serpens fast path pays one compare and no indirect call.
 * docs/state-backends.md.
 */
#include "remote_internal.h"

#include <errno.h>

const char *rs_backend_name(enum rs_backend b)
{
	return b == RS_FISSION ? "fission" : b == RS_SNF ? "snf" : "serpens";
}

int rs_backend_parse(const char *s)
{
	if (!strcmp(s, "serpens"))
		return RS_SERPENS;
	if (!strcmp(s, "fission"))
		return RS_FISSION;
	if (!strcmp(s, "snf"))
		return RS_SNF;
	return -1;
}

/* create_table on the fission and snf backends. */
static sp_table *route_create_table(const char *name, uint32_t flags, const struct sp_table_opts *o)
{
	if (rs_cfg.backend == RS_SNF && (flags & SP_PER_FLOW) && !(flags & SP_GLOBAL))
		return sm_create_table(name, flags, o); /* SNF: per-flow state is local */
	return rs_table_create(name, flags, o);
}

int rs_setup(const struct rs_config *c)
{
	if (c->backend != RS_SERPENS && c->backend != RS_FISSION && c->backend != RS_SNF)
		return -EINVAL;
	rs_conn_configure(c);
	if (c->backend == RS_SERPENS)
		return 0; /* the State Manager alone: nothing to install, Redis is never touched */
	rs_init_words();
	sp_state_set_creator(route_create_table);
	sp_batch_hooks = &rs_batch_hooks;
	if (c->manager)
		sm_set_remote_hooks(&rs_mgr_hooks);
	return 0;
}

void rs_forget(void)
{
	memset(rs_tables, 0, sizeof(rs_tables));
	rs_ntables = 0;
	rs_cache_reset();
	rs_batch.active = false;
	rs_conn_close();
}

void rs_disconnect(void)
{
	rs_cache_reset();
	rs_batch.active = false;
	rs_conn_close();
}
