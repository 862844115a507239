/*
 * serpensd.h: what serpensd's data plane (serpensd.c) and its control thread (deployment, Instance
 * Manager, control socket: the files listed in control_int.h) share inside the daemon.
 */
#ifndef SERPENSD_H
#define SERPENSD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "ctl.h"
#include "delivery.h"
#include "hop.h"
#include "remote_state.h"
#include "starter.h"

#define RT_BUCKETS 256
#define RT_DIVERT (-2) /* a bucket whose packets go to the OpenNF controller (scaling/) */
_Static_assert(RT_BUCKETS == SC_BUCKETS, "the router's buckets are the scaling protocols' buckets");
#define DP_BURST 32     /* packets per receive, per staged enqueue, per transmit */
#define RING_SIZE 8192  /* every instance and proxy ring */

/* The routing table of the Router: per SFC, 5-tuple hash bucket → instance slot (-1: none). Built by the
 * control thread, published with one atomic pointer store; the data plane reads it once per burst. */
struct route_table {
	uint32_t nsfc;
	uint32_t sfc_id[SP_MAX_SFCS]; /* in match order */
	struct sp_match match[SP_MAX_SFCS];
	int8_t bucket[SP_MAX_SFCS][RT_BUCKETS];
	uint8_t ninst[SP_MAX_SFCS];
	/* --pin-flows: per SFC id, bucket and instance slot, the generation of the flows pinned to that slot
	 * in that bucket; a move of the bucket's flows away from the slot bumps it, so the gateway's pins to
	 * it lapse (delivery_consolidated.c). NULL without --pin-flows. */
	uint8_t (*pin_gen)[RT_BUCKETS][SM_MAX_INSTANCES];
};

/* --start-placement: the CPUs a pooled runtime waits on and runs its start on (docs/startup.md); it serves on
 * its lcore's CPU (the instance CPU) once ready. */
enum sp_placement {
	SP_PLACE_INSTANCE = 0, /* the instance CPU, where it serves (the default) */
	SP_PLACE_SAME,         /* the control thread's CPU (pinned to one): the wake is on the requester's vCPU */
	SP_PLACE_OTHER,        /* any CPU but the control thread's */
	SP_PLACE_ANY,          /* any online CPU: the kernel decides */
};

struct serpensd {
	/* configuration */
	const char *control_path;
	const char *runtime_path;
	const char *nf_dir;
	const char *file_prefix;
	/* Redis's admin user and password (SERPENS_REDIS_ADMIN, main): set, serpensd AUTHs as it and gives each
	 * tenant a Redis ACL user of its own (remote_acl.c); unset, nobody AUTHs (a Redis without ACLs) */
	char redis_admin_user[RS_USER_LEN], redis_admin_pass[RS_PASS_LEN];
	unsigned int lcore;
	unsigned int instance_lcore;
	unsigned int state_mb;
	unsigned int flush_us;
	double keep_warm_s;
	unsigned int rx_gap_ns;    /* --rx-gap-ns: after a burst that did not fill, the next receive waits this long */
	unsigned int pool_size;    /* runtimes pre-launched into ctl->pool[0..pool_size-1] (load, serpens) */
	enum sp_placement start_placement; /* --start-placement: where pooled runtimes wait and start */
	const struct sp_starter *starter; /* --startup (native/serpens/startup/starter.h) */
	bool auto_start;
	const struct sp_delivery_ops *delivery; /* --chaining (delivery.h) */
	bool pin_flows;            /* --pin-flows: a flow stays on its instance until moved explicitly (E2) */
	const char *gproxy_path;   /* --gproxy: serpens-gproxy, the global-proxy chaining's proxy */
	unsigned int gproxy_hold;  /* --gproxy-hold: its hold buffer per (SFC, position), packets */
	/* shared memory */
	struct sp_ctl *ctl;
	struct sm_region *state;   /* the default tenant's region (tenant_region.h: every tenant's) */
	struct rte_mempool *pool;
	struct rte_ring *rx[SM_MAX_INSTANCES];
	struct rte_ring *tx[SM_MAX_INSTANCES];
	int tag_off;               /* the chain tag's mbuf dynfield (chain_tag.h); proxy chainings only */
	/* routing */
	struct route_table *route; /* current, read by the data plane */
	uint64_t dp_epoch;         /* bumped every data-plane iteration (grace periods) */
	int dp_running;
	/* data-plane counters */
	uint64_t port_rx, port_tx, port_tx_dropped, gateway_miss;
	uint64_t rx_bursts;               /* receives that brought packets: port_rx / rx_bursts is the mean burst */
	struct sp_handoff_stats handoff; /* the 2-core hand-off (hop.h) */
	uint64_t loop_max_ns;            /* loop gaps */
	uint64_t timers_max_ns, tx_max_ns;
	uint64_t want_start[SP_MAX_SFCS]; /* packets that found no instance, for auto-start */
	int tick_fd;                      /* eventfd: the data plane asks the control thread for a tick now */
	/* control thread */
	pid_t pid[SM_MAX_INSTANCES];
	int pool_of[SM_MAX_INSTANCES]; /* the pool process serving the slot, -1: none (instance_process.c) */
	pid_t pool_pid[SP_MAX_POOL];
	bool forked[SM_MAX_INSTANCES]; /* the slot's process is a zygote's child, not serpensd's */
	pid_t zygote_pid[SP_MAX_SFCS];
	/* Which tenant's state region (tenant_region.h index) each SFC, instance slot and pool process is for.
	 * Kept here, in serpensd's private memory, not in the ctl memzone that every runtime can write: the
	 * region serpensd hands a process is decided by these alone. pool_tenant -1: a pool process that has
	 * served no tenant yet; one that has serves no other (its NF code ran in it). */
	int8_t sfc_tenant[SP_MAX_SFCS];
	int8_t slot_tenant[SM_MAX_INSTANCES];
	int8_t pool_tenant[SP_MAX_POOL];
	uint64_t startup_ns[SM_MAX_INSTANCES];
	volatile int quit;
};

/* the control thread (control_int.h lists its files) */
int control_start(struct serpensd *d);                  /* control_socket.c */
void control_stop(struct serpensd *d);                  /* control_socket.c */
/* routes.c: rebuild the routing table from ctl, swap it in, wait for a grace period */
void control_publish_routes(struct serpensd *d);
/* a runtime child under DPDK lcore id lcore_id on the instance CPU (the local proxy); instance_process.c */
pid_t control_spawn(struct serpensd *d, unsigned int lcore_id, char *const *args);
void control_stop_all(struct serpensd *d);              /* instance_manager.c */
void control_cleanup(struct serpensd *d);               /* nf_deploy.c: remove the NF copies */
int control_fill_pool(struct serpensd *d);              /* instance_process.c */
int control_setup_scaling(struct serpensd *d);          /* scaling/scale_control.c: 0, or -1 (said why) */

#endif
