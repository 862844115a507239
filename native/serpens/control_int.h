/*
 * control_int.h: what the files of serpensd's control thread share. Not for the data plane (serpensd.c)
 * nor for the runtimes: their interface with the control thread is serpensd.h and ctl.h. One concern
 * per file:
 *
 *   control_socket.c    the thread and its JSON-lines socket (docs/serpens-control.md): an event loop
 *                       over every client (non-blocking, per-client buffers, limits) and the periodic
 *                       duties; dispatch of each request; the runtime knobs (`set`) and `shutdown`
 *   control_fields.c    requests' numeric fields checked for type and range, unknown fields refused
 *   nf_deploy.c         deploy_nf, the NF Manager's side: the deployment's own copy of the object, init
 *                       in deploy mode (asked of the tenant's deployer), the tables taken from the region,
 *                       the shared-memory image; the NF copies' directory
 *   deployer_client.c   the tenants' deployers (deployer.h): start one, hand it its region, ask it
 *   sfc_graph.c         deploy_sfc: the match, the graph flattened into label positions, the selectors
 *   instance_manager.c  the Instance Manager's requests: claim a slot, start an instance (or, with per-NF
 *                       chaining, an instance set), retire and stop one, stop them all
 *   instance_process.c  the process behind a slot: spawn a runtime, the pool, the zygotes (--startup
 *                       fork), has it exited, kill it
 *   instance_tick.c     the periodic duties: reap and restart crashed instances, keep-warm, auto-start
 *   routes.c            publish a new routing table and wait for the data plane's grace period
 *   control_stats.c     stats (with its stages) and state inspection: read_state, dump_table
 *
 * Everything here runs on the control thread (and before it exists on the main thread, through
 * serpensd.h's control_* functions), one request at a time, so nothing needs a lock. The executable
 * exports its symbols to NF objects (--export-dynamic); nothing declared here is for NFs to resolve
 * (an NF's own `ok` or `D` must not bind to these), so it is all hidden.
 */
#ifndef SERPENS_CONTROL_INT_H
#define SERPENS_CONTROL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <jansson.h>

#include "serpensd.h"
#include "scaling/scale_control.h"

#pragma GCC visibility push(hidden)

#define READY_TIMEOUT_NS (15ull * 1000000000ull)
#define STOP_TIMEOUT_NS (3ull * 1000000000ull)

/* The daemon. Set by control_start, and earlier by control_spawn and control_fill_pool, which main and
 * the chaining's setup call before the control thread exists. (control_socket.c) */
extern struct serpensd *D;

static inline uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void sleep_us(unsigned int us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

/* Replies (control_socket.c): {"ok": false, "error": <formatted>} and {"ok": true}. */
json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
json_t *ok(void);

/* control_fields.c: a request's field checked before use. NULL: fine (*out = the value, or dflt when the
 * field is absent); else the error reply, naming cmd, the field, the range and what was given. */
json_t *int_field(json_t *req, const char *cmd, const char *field, json_int_t min, json_int_t max, json_int_t dflt,
		  json_int_t *out);
json_t *num_field(json_t *req, const char *cmd, const char *field, double min, double max, double dflt,
		  double *out);
/* NULL, or the error for a field of req (besides "cmd") not in known (NULL-terminated) */
json_t *only_fields(json_t *req, const char *cmd, const char *const *known);
/* The request's "tenant" (default "default"; 1..31 of [A-Za-z0-9_-], sm_tenant_valid) into out[SM_TENANT_LEN]. */
json_t *tenant_field(json_t *req, const char *cmd, char *out);
/* A key given as hex ("0a0b..."), at most max bytes, into out: its length, or -1 (odd length, not hex, long) */
int hex_field_decode(const char *hex, uint8_t *out, size_t max);

/* nf_deploy.c */
int nf_dir_setup(const struct serpensd *d); /* the directory of the NF copies: 0, or -1 (said why) */
int find_nf(const char *name);              /* its NF slot, or -1 */
bool nf_defines(int nf, const char *sym);   /* does the NF define `sym` as a non-NULL pointer (a selector)? */
json_t *deploy_nf(json_t *req);

/* sfc_graph.c */
int find_sfc(const char *name); /* its SFC id, or -1 */
json_t *deploy_sfc(json_t *req);
/* state_transfer.c: share_export / share_import of a release pool between servers */
json_t *state_share_request(json_t *req);

/* instance_process.c */
pid_t spawn_runtime(int slot); /* a cold runtime for the slot: the instance's own process */
bool slot_exited(int slot, int *status);
void slot_kill(int slot, int *status);
int zygote_launch(int sfc, char *err, size_t errlen);
void zygote_stop(int sfc);
/* the pool (ctl.h sp_pool_proc; D->pool_of[slot]: which pool process serves a slot) */
int pool_fill(int p);              /* launch pool process p and wait until it waits: 0, or -1 (said why) */
int pool_pick(int tenant);         /* a waiting pool process for that tenant's region index, or -1 */
void pool_prewarm(int sfc); /* deploy_sfc: waiting pool processes of its tenant get its NFs' images */
void pool_hand(int p, int slot, int sfc); /* wake it to serve `slot` (SFC sfc; its control block is ready) */
bool pool_back(int slot);          /* the slot's pool process left it and waits again */
void pool_leave(int slot, bool back); /* the slot is done with its pool process: back, or gone (refilled) */
bool pool_reaped(pid_t pid);       /* a waiting pool process died (refilled): true; else false */
void pool_stop_all(void);

/* instance_manager.c */
json_t *start_one(int sfc, int pos, bool pin);
json_t *start_instance(int sfc, bool pin); /* pin: --pin-flows, only new flows go to it */
/* ... for a request received at t_req (mono_ns; 0: now), where its steps and startup_us begin */
json_t *start_instance_at(int sfc, bool pin, uint64_t t_req);
/* n instances of sfc started together (Fig. 11(a)): the same launch, await and finish as start_instance */
json_t *start_instances_at(int sfc, unsigned int n, bool pooled_only, uint64_t t_req);
uint64_t retire(int slot, bool crashed);
void start_placement_setup(void); /* --start-placement, once, on the control thread */
json_t *stop_instance(int slot);
bool stop_loses_state(int slot);

/* instance_tick.c: per SFC, instances that exited on their own, and how the last one did (for stats) */
extern uint64_t crashes[SP_MAX_SFCS];
extern char crash_msg[SP_MAX_SFCS][160];
void tick(void);

/* routes.c: which instance each router bucket of an SFC goes to (consolidated chaining; -1 none,
 * RT_DIVERT) */
int route_owner_get(int sfc, int bucket);
void route_owner_set(int sfc, const uint64_t *mask, int slot);
/* --pin-flows: the flows of these buckets pinned to `slot` are no longer (a move took them away) */
void route_unpin(int sfc, const uint64_t *mask, int slot);

/* control_stats.c */
json_t *stats(void);
json_t *read_state(json_t *req);
json_t *dump_table(json_t *req);

#pragma GCC visibility pop

#endif /* SERPENS_CONTROL_INT_H */
