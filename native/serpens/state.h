/*
 * state.h: the Serpens State Manager's shared-memory state (paper Section III-B).
 *
 * One region per tenant holds that tenant's NFs' tables, its table directory and its instance slots'
 * pause words. serpensd creates each outside the EAL memory (tenant_region.c) and maps every one; a
 * runtime maps only its SFC's tenant's, at the same virtual address, so tables and the pointers inside
 * them are valid in every process that has them. The region outlives every instance: destroy all instances of
 * an SFC and start a new one, and the new one finds every flow's state where the old ones left it.
 *
 * Tables are open-addressing hash tables of fixed-size keys and values, safe for concurrent use by
 * several instances under the Serpens invariant that one key (flow) is written by one instance at a
 * time (the router sends a flow to one instance): a slot is claimed with a compare-and-swap, and made
 * visible to readers with a release store once its key and value are written.
 *
 * Global/write tables keep, per key, a base value plus one value per instance slot
 * (SM_MAX_INSTANCES): the instance's sub-state (release consistency) or replica (eventual). split /
 * merge / update move state between them while packet processing is paused server-wide — the pause is
 * between batches (sm_batch_begin / sm_batch_end bracket each batch an instance processes).
 *
 * The same code runs on any memory: tests and the NF test driver put a region in ordinary memory.
 */
#ifndef SERPENS_STATE_H
#define SERPENS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_NO_FIG8_NAMES
#include "serpens/nf.h"

#define SM_MAX_TABLES 2048 /* tables per server: 500+ deployed NFs of a few tables each (Fig. 11(b)) */
/* Instance slots per server, at most (a region's slots are its tenant's instances). How many a region has
 * is chosen when it is created (sm_set_region_slots: serpensd --max-instances, default SM_DEFAULT_INSTANCES):
 * every key of a global|write table holds a value per slot of its region, so the slots are memory in every
 * such table (NAT's pool: ~260 KB per slot per key), and a server that runs 16 instances at once should not
 * pay for 100. SM_MAX_INSTANCES bounds the arrays indexed by slot; 100 is Fig. 11(a)'s most instances started
 * together (docs/startup.md), and each slot needs a DPDK lcore id of its own (ctl.h). */
#define SM_MAX_INSTANCES 100
#define SM_DEFAULT_INSTANCES 16
#define SM_NAME_LEN 64

struct sm_region; /* the shared region (opaque) */

/* Create a region in [mem, mem+size) (zeroed by the caller), or attach to one created there. */
struct sm_region *sm_region_create(void *mem, size_t size);
struct sm_region *sm_region_attach(void *mem);
size_t sm_region_used(const struct sm_region *r);
/* The instance slots of the regions this process creates from now on (1..SM_MAX_INSTANCES; 0 or -EINVAL),
 * and of a region (its creator's setting, read by every process that attaches). */
int sm_set_region_slots(unsigned int n);
unsigned int sm_region_slots(const struct sm_region *r);

/* Per-process context: which region, which instance slot this process is (-1: the State Manager
 * itself, which sees base values), whether create_table may create (deploy) or only attach (run),
 * and the deployment arguments of the NF whose init is running. */
/* Select the region this process's NF API works on. A process may use several (serpensd: one per
 * tenant, docs/security.md); each keeps its own table handles. 0, or -ENOMEM (SM_MAX_REGIONS in use). */
#define SM_MAX_REGIONS 16
int sm_set_region(struct sm_region *r);
struct sm_region *sm_get_region(void);
/* Drop this process's handles of r (before r is unmapped); if it is the current region, none is. */
void sm_forget_region(const struct sm_region *r);
void sm_set_instance(int slot);
int sm_get_instance(void);
void sm_set_phase_deploy(bool deploying);      /* true in the State Manager (deploys NFs) */
void sm_set_nf(const char *nf_name, const char *const *args); /* args: NULL-terminated key,value,... */
/* The tenant this process creates or attaches tables for (docs/security.md): serpensd sets the
 * deployment's before its init, a runtime its SFC's before loading the NFs. A table belongs to the tenant
 * that created it; create_table of another tenant's table is refused (counted, sm_last_error). Tables of
 * the tenant "default" are named "<nf>/<table>", any other tenant's "<tenant>:<nf>/<table>". Not in nf.h,
 * and not exported by the runtime (native/serpens/runtime.map): NF code cannot change it. */
#define SM_TENANT_LEN 32
#define SM_DEFAULT_TENANT "default"
int sm_set_tenant(const char *tenant); /* 0, or -EINVAL: not 1..31 of [A-Za-z0-9_-] */
const char *sm_tenant(void);
bool sm_tenant_valid(const char *tenant);
const char *sm_table_tenant(const struct sm_region *r, unsigned int i);

/* ALWAYS run an NF's init through this: on deployment (sm_set_phase_deploy(true)) tables are created and
 * init's state writes land in the base values; in a runtime process (false) create_table attaches and
 * init's state writes are skipped — deployment already made them (Fig. 9's put_state of the pool must
 * not reset it when an instance starts). Handlers called afterwards write normally. */
int sm_nf_init(const struct sp_nf *nf);

/* Instance slots: the Instance Manager claims one for each instance it starts and releases it when the
 * instance is gone. Claiming splits every global/write table's state for the new instance; releasing
 * merges the instance's state back (the paper's scale-out / scale-in). */
int sm_instance_claim(struct sm_region *r);       /* slot index, or -ENOSPC */
int sm_instance_claim_at(struct sm_region *r, int slot); /* that slot, or -EBUSY */
/* Forget this process's table handles (after its NFs were unloaded, before other NFs are loaded). */
void sm_forget_local(void);
void sm_instance_release(struct sm_region *r, int slot);
bool sm_instance_active(const struct sm_region *r, int slot);

/* Bracket every batch an instance processes; sm_pause/sm_resume stop all batches server-wide. */
void sm_batch_begin(struct sm_region *r, int slot);
void sm_batch_end(struct sm_region *r, int slot);
uint64_t sm_pause(struct sm_region *r, int self_slot); /* returns the ns it waited for instances */
void sm_resume(struct sm_region *r);

/* How long packet processing was paused (sm_pause to resume) for each kind of state operation: split
 * (an instance slot claimed), merge (one released) and update (timers, update/trigger from an NF). */
enum sm_hook_kind { SM_HOOK_SPLIT, SM_HOOK_MERGE, SM_HOOK_UPDATE };
#define SM_PAUSE_KINDS 3
struct sm_pause_stats {
	uint64_t count, last_ns, max_ns, total_ns;
	/* of those, waiting for instances to leave the batch they were in (the rest is the hook's own work) */
	uint64_t wait_total_ns, wait_max_ns;
	uint64_t last_at_ns; /* when the last one ended (CLOCK_MONOTONIC): the latest of several regions' */
};
void sm_pause_stats(const struct sm_region *r, enum sm_hook_kind kind, struct sm_pause_stats *out);
/* sm_resume, recording the pause (from sm_pause to now) under kind. */
void sm_resume_as(struct sm_region *r, enum sm_hook_kind kind);

/* The Chainer's per-packet hints (state.c explains them). Before an NF handles its share of a batch,
 * sm_hint_batch(nf, pkts, hints, n) fills hints[i] from pkts[i] (the packet's flow, hashed once) and
 * prefetches the slots of the deployment nf's tables that the NF's lookups will name; while the handler
 * runs on pkts[i], sm_hint_cur points at hints[i] (NULL otherwise), and a lookup whose key is the
 * packet's flow or source address takes its hash from there. Only a speed-up: results are the same
 * without it. */
struct sm_hint {
	struct sp_flow flow;
	uint64_t h_flow; /* the lookup hash of flow, if has_flow */
	uint64_t h_src;  /* ... of flow.src_ip, if has_src */
	uint8_t ok;      /* the packet is IPv4 (flow is set) */
	uint8_t has_flow, has_src;
};
extern const struct sm_hint *sm_hint_cur;
void sm_hint_batch(const char *nf, const struct sp_pkt *pkts, struct sm_hint *hints, unsigned int n);

/* Periodic work of the State Manager: run update() of every table whose timer is due. */
void sm_run_timers(struct sm_region *r, uint64_t now_us);

/* Inspection for the control plane. */
unsigned int sm_table_count(const struct sm_region *r);
/* Did this process create any of the tables [first, end) with an NF's own split/merge/update hook (a
 * pointer into that NF's code, which must then stay loaded here)? */
bool sm_tables_hooked(unsigned int first, unsigned int end);
/* serpensd: take the tables [first, end) of r, created by another process (a tenant's deployer,
 * deployer.h), into this process's handles as if it had created them, with the default hooks: its splits,
 * merges and timers then run on them. Each is checked first (name, tenant, its slots inside r), since
 * tenant code wrote it. 0, or -1 with err. */
int sm_adopt_tables(struct sm_region *r, unsigned int first, unsigned int end, const char *tenant, char *err,
		   size_t errlen);
const char *sm_table_name(const struct sm_region *r, unsigned int i);
/* The merged value of key: base + every active replica for eventual tables; for release pools the base
 * pool with nfree = free resources of base and every sub-state together; the value otherwise. */
int sm_table_lookup(struct sm_region *r, const char *table, const void *key, uint32_t key_size,
		    void *value_out, uint32_t value_size);
int sm_table_info(struct sm_region *r, const char *table, uint32_t *flags, uint32_t *key_size,
		  uint32_t *value_size, uint64_t *count);
/* Iterate keys: calls fn(key, merged value, ctx) for every live key. */
int sm_table_foreach(struct sm_region *r, const char *table,
		     void (*fn)(const void *key, const void *value, void *ctx), void *ctx);
uint64_t sm_errors(const struct sm_region *r); /* API misuse counted (e.g. delete_state on global) */
const char *sm_last_error(const struct sm_region *r);
uint64_t sm_last_error_ns(const struct sm_region *r); /* when (CLOCK_MONOTONIC), 0: never */

/* The base value of key in a global|write table (NULL: none such); for moving a share of a release pool
 * to another server's State Manager (state_transfer.c), under sm_pause. */
void *sm_base_value(struct sm_region *r, const char *table, const void *key, uint32_t key_size,
		    uint32_t *flags, uint32_t *value_size);

/* ---- for other state backends (remote_*.c, state_backend.c) ----------------------------------- */

/* The State Manager's own create_table (what sp_create_table does when no creator is installed). */
sp_table *sm_create_table(const char *name, uint32_t flags, const struct sp_table_opts *opts);
/* Validate create_table's arguments as the State Manager does (errors reported); full = "<nf>/<name>". */
int sm_check_table_args(const char *name, uint32_t flags, const struct sp_table_opts *opts, char *full,
			size_t fulllen);
/* Record a table that lives in another store in the region's directory (no slots), so that every
 * process and the control plane see its name, flags and sizes. Index, or a negative errno. */
int sm_register_remote(const char *name, uint32_t flags, const struct sp_table_opts *opts);
bool sm_table_is_remote(struct sm_region *r, const char *table);
/* Count an API misuse or a store failure and keep its message (stats.state.last_error). */
void sm_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool sm_phase_deploy(void); /* inside sm_nf_init in the State Manager */
bool sm_phase_attach(void); /* inside sm_nf_init in a runtime process */
const char *sm_nf_name(void);

/* A global|write table's hook (custom, or the defaults of nf.h) over one key's values: base and
 * vals[SM_MAX_INSTANCES] (NULL where no instance is active). For MERGE, `merging` names the departing
 * slot (only vals[merging] need be set); -1 for a merge an NF asked for. */
struct sm_hook_set {
	sp_hook_fn split, merge, update;
};
void sm_apply_hook(const struct sm_hook_set *h, uint32_t flags, uint32_t value_size, enum sm_hook_kind kind,
		   void *base, void **vals, int merging);

/* What the State Manager asks of a remote store: state movements on scale-out/in (called with the pause
 * held, after the shared-memory tables were done) and the control plane's inspection of remote tables. */
struct sm_remote_hooks {
	void (*claim)(struct sm_region *r, int slot);
	void (*release)(struct sm_region *r, int slot);
	int (*lookup)(const char *table, uint32_t flags, const void *key, uint32_t key_size, void *out,
		      uint32_t value_size);
	int (*foreach)(const char *table, uint32_t flags, uint32_t key_size, uint32_t value_size,
		       void (*fn)(const void *key, const void *value, void *ctx), void *ctx);
	int64_t (*count)(const char *table, uint32_t flags, uint32_t key_size);
};
void sm_set_remote_hooks(const struct sm_remote_hooks *h);

#endif /* SERPENS_STATE_H */
