/*
 * ctl.h: what serpensd shares with its runtime processes besides the state regions — the deployed NFs,
 * the SFCs as label graphs, and one control block per instance slot (rings, wake-up words, counters).
 *
 * It lives in a memzone ("serpens_ctl") that the runtime processes (DPDK secondaries) look up by name.
 * The routing table itself is private to serpensd's data plane (see serpensd.c).
 */
#ifndef SERPENS_CTL_H
#define SERPENS_CTL_H

#include <stdint.h>

#include <rte_config.h>

#include "loader.h"
#include "remote_state.h"
#include "sleeper.h"
#include "scaling/scale_shared.h"
#include "state.h"
#include "tenant_region.h"

#define SP_CTL_MZ "serpens_ctl"
#define SP_CTL_MAGIC 0x5345525043544c31ull /* "SERPCTL1" */
#define SP_MAX_NFS 512 /* deployed NFs (Fig. 11(b) deploys 500); each costs a descriptor here, in hugepages */
#define SP_MAX_SFCS 32
#define SP_MAX_POS 16     /* NFs in one SFC's flattened label graph */
#define SP_MAX_BRANCH 8
#define SP_MAX_BATCH 128  /* most packets in one runtime batch (serpensd --batch) */
#define SP_NAME_LEN 64
#define SP_PATH_LEN 256
#define SP_ARGS_LEN 2048  /* "k\0v\0k\0v\0\0" */
/* DPDK lcore ids of serpensd's runtimes, on the instance CPU: one per instance slot (SM_MAX_INSTANCES of
 * them), one for the local proxy (--chaining local-proxy), one for the OpenNF controller, each range of its
 * own, so no two processes ever use per-lcore state (mempool caches) under one id. serpensd's own lcore
 * ids (its -l, i.e. its CPU numbers) must be below SP_INSTANCE_LCORE0 (serpensd checks). The ranges are
 * checked against SM_MAX_INSTANCES and RTE_MAX_LCORE (128 in Debian's build) below: 100 slots leave 24 ids
 * for serpensd's own and four for the rest. */
#define SP_INSTANCE_LCORE0 24
#define SP_PROXY_LCORE (SP_INSTANCE_LCORE0 + SM_MAX_INSTANCES)
#define SP_ONF_LCORE (SP_PROXY_LCORE + 1) /* the OpenNF controller (--scaling opennf) */
/* Every pooled runtime while it waits (sp_pool_proc). They all share this one id: a waiting runtime
 * touches no per-lcore state (no mempool, no ring, no timer: it sleeps on its doorbell), and it takes
 * its instance slot's id (SP_INSTANCE_LCORE0 + slot, st_set_lcore) before anything of the instance runs,
 * so no two processes ever use per-lcore state under one id — what the distinct ids are for. */
#define SP_POOL_LCORE (SP_ONF_LCORE + 1)
/* Every SFC's zygote (--startup fork), for the same reason as the pool's: a zygote initialises the EAL and
 * its NFs (attach mode: no mempool, no packet) and then only waits on its doorbell; the child it forks
 * takes the target slot's id (st_set_lcore) before anything of the instance runs. One id for all of them
 * (not one per SFC, as before the slots grew to 100): 32 more ids would not fit under RTE_MAX_LCORE. */
#define SP_ZYGOTE_LCORE (SP_POOL_LCORE + 1)
_Static_assert(SP_ZYGOTE_LCORE < RTE_MAX_LCORE, "serpensd's runtimes' lcore ids beyond RTE_MAX_LCORE");
#define SP_LABEL_END 0xfe
#define SP_LABEL_DROP 0xff

struct sp_nf_desc {
	uint32_t used;
	char name[SP_NAME_LEN]; /* deployment name: tables are name/table */
	char path[SP_PATH_LEN];
	char args[SP_ARGS_LEN];
	uint32_t args_len;
	/* With --startup serpens or snapshot: the NF's image, built once by serpensd into a memfd (image_fd in
	 * serpensd, owner_pid), mapped by runtimes at image.base from a descriptor serpensd passes them
	 * (handover.h; native/serpens/loader), or — the snapshot method — from the same bytes saved to the
	 * file `snapshot`. */
	uint32_t has_image;
	int32_t image_fd;
	int32_t owner_pid;
	struct ldr_image image;
	char snapshot[SP_PATH_LEN]; /* "" unless --startup snapshot */
	/* the tenant the deployment belongs to (deploy_nf's "tenant", default "default"): its tables are
	 * that tenant's in the State Manager, and only SFCs of that tenant may use it (docs/security.md) */
	char tenant[SP_NAME_LEN];
};

#define SP_NF_IMAGE_BASE 0x5e0000000000ull /* reserved range for NF images, one span per NF slot */
#define SP_NF_IMAGE_SPAN (64ull << 20)

/* One position of an SFC's flattened label graph: run NF `nf`, then go to next_pass, or — if the
 * position has a selector — to next[selector(verdict)]. Positions are in topological order: every next
 * is greater than its own index (or SP_LABEL_END), so the Chainer needs one pass per batch. */
struct sp_pos {
	uint16_t nf;
	uint8_t next_pass;
	uint8_t nbranch;
	uint8_t next[SP_MAX_BRANCH];
	char selector[SP_NAME_LEN]; /* "" or the symbol suffix: serpens_selector_<selector> */
};

struct sp_match {
	uint32_t dst, dst_mask, src, src_mask; /* network order */
	uint16_t dport;                        /* network order; 0 = any */
	uint8_t proto;                         /* 0 = any */
};

struct sp_sfc_desc {
	uint32_t used;
	char name[SP_NAME_LEN];
	struct sp_match match;
	uint32_t npos;
	struct sp_pos pos[SP_MAX_POS];
	/* data-plane counters */
	uint64_t rx, tx, no_instance, ring_full;
	uint64_t stranded; /* consolidated chaining: left in an instance's rx ring when it stopped or crashed */
	/* the tenant owning the SFC (deploy_sfc's "tenant"): every NF of it is that tenant's, and its
	 * runtimes attach to the State Manager as that tenant (chainer_load) */
	char tenant[SP_NAME_LEN];
};

/* How packets get from one NF of an SFC to the next (serpensd --chaining; docs/chaining.md). */
enum sp_chaining {
	SP_CHAIN_CONSOLIDATED = 0, /* Serpens: the whole SFC in one instance, the Chainer's label array */
	SP_CHAIN_LOCAL_PROXY,      /* SAND: one instance per NF, a proxy process per server between them */
	SP_CHAIN_GLOBAL_PROXY,     /* Fission: one instance per NF, one proxy for the deployment (memif) */
};

enum sp_inst_state { INST_FREE = 0, INST_STARTING, INST_READY, INST_STOPPING, INST_DEAD };

#define SP_STOP_SERVE 1 /* an instance stops serving: it exits, or its pooled runtime returns to the pool */
#define SP_STOP_EXIT 2  /* a waiting pooled runtime (or the local proxy) exits */

/* The pool (--startup load, serpens): up to SP_MAX_POOL pre-launched runtimes (EAL initialised, no SFC,
 * no instance slot), each waiting on its own doorbell. A start hands a waiting one an instance slot
 * (`slot`, then the doorbell); it serves that slot's instance and, when the instance stops, comes back
 * here. Pool processes are not instance slots: a pool larger than the slots only means more starts
 * find one waiting, and memory is what it costs (Fig. 11(b): Serpens's pool of 100, and Load's one
 * pre-initialised process per deployed NF, up to 500). */
#define SP_MAX_POOL 512
enum sp_pool_state {
	POOL_NONE = 0, /* no process */
	POOL_STARTING, /* launched, in its EAL init */
	POOL_WAITING,  /* waiting on its doorbell (written by the runtime) */
	POOL_BUSY,     /* handed a slot (written by serpensd): it serves that slot's instance */
};

struct sp_pool_proc {
	uint32_t state;    /* enum sp_pool_state */
	uint32_t doorbell; /* futex: bumped by serpensd with every request (a slot, or stop) */
	int32_t slot;      /* the instance slot to serve (set before the doorbell), -1: none */
	uint32_t stop;     /* SP_STOP_EXIT: leave the pool */
	int32_t pid;
	char error[256];   /* why it could not join the pool */
	/* serpensd --start-placement: the CPUs (bit i: CPU i) it waits on and runs its start on; serpensd
	 * moves it to its lcore's CPU once it has seen it ready. 0: it stays there (the default) */
	uint64_t cpus;
};

struct sp_instance {
	uint32_t state;
	int32_t sfc;
	int32_t pid;
	int32_t exit_status;
	/* wake-up protocol (futex words, see runtime.c); `sl` names the four together for hop.c */
	union {
		struct sp_sleeper sl;
		struct {
			uint32_t doorbell;
			uint32_t sleeping;
			uint32_t done;
			uint32_t stop;
		};
	};
	/* the position of its SFC's label graph it runs: -1 = the whole SFC (consolidated chaining), else
	 * exactly one NF (proxy chainings). Set by serpensd before the runtime is started or woken. */
	int32_t position;
	/* Per slot, cumulative since serpensd started and never reset when the slot gets a new instance, so
	 * the sum over slots is the work of every instance that ever ran, the retired ones included (the
	 * `instance` and `remote_state` stages, docs/stages.md). Written by the runtime that holds the slot. */
	uint64_t slot_work_cycles;  /* TSC from before a dequeue that returned packets to after their enqueue */
	uint64_t slot_work_packets; /* packets in those batches */
	uint64_t slot_remote_ns;    /* of that work, waiting on the remote store (fission/snf) */
	uint64_t slot_starts;       /* instances that became ready in this slot: tells a replaced one apart */
	uint64_t slot_chain_packets; /* of slot_work_packets, those entering their SFC (consolidated: all; per
				      * NF: only at position 0), so instance time per SFC packet adds up */
	/* counters written by the runtime (zeroed when an instance starts) */
	uint64_t pkts_in, pkts_out, nf_drops, batches, sleeps;
	uint64_t busy_cycles; /* TSC cycles from a batch's dequeue to its last NF (Table II's processing time) */
	uint64_t work_cycles; /* this instance's share of slot_work_cycles */
	uint64_t work_remote_ns; /* this instance's share of slot_remote_ns */
	uint64_t ready_tsc; /* when the runtime became ready (for startup time) */
	/* Table II's delivery time (per-NF instances): per batch that came from another NF, TSC from when
	 * that NF's instance handed it over (the tag's stamp of the batch's first packet) to this batch's
	 * start (after its dequeue). */
	uint64_t delivery_cycles, delivery_batches;
	/* start_instance's steps (docs/startup.md, "serpensd's start path, step by step"): CLOCK_MONOTONIC ns,
	 * the clock of serpensd's mono_ns, written by the runtime during its start (zeroed with the counters
	 * above when serpensd claims the slot, before it wakes or spawns the runtime) */
	uint64_t start_woke_ns;  /* its first instruction after its wait returned (exec'd: after EAL init) */
	uint64_t start_map_ns;   /* sum over the NFs it loaded of the loader's map (dlopen, image, snapshot) */
	uint64_t start_init_ns;  /* sum over them of init (attach mode) */
	uint64_t start_ready_ns; /* just before it published READY */
	/* counters written by serpensd */
	uint64_t wakeups, last_pkt_tsc, enq;
	struct rs_stats remote; /* remote state access (fission/snf backends), written by the runtime */
	char rx_ring[32];
	char tx_ring[32];
	char error[256]; /* why the runtime refused to start */
	/* --startup fork: the instance is a child of its SFC's zygote, which reaps it and reports here */
	uint32_t exited;
	int32_t exited_status;
	char loader[16]; /* the starter's loader that brought the NFs in (start_instance's reply) */
	/* the runtime asks for its descriptors (handover.h): set to 1 by the runtime with a wake of `state`;
	 * serpensd hands the slot's process the region of the tenant it started the slot for and the images
	 * of the SFC it started there (its private records, not this memzone), and clears it. */
	uint32_t region_req;
};

/* --startup fork: one zygote runtime per SFC (EAL initialised, the SFC's NFs loaded and initialised in
 * attach mode) forks every instance of it into the slot `target` (native/serpens/startup/fork.c). */
enum sp_zygote_state { ZY_NONE = 0, ZY_STARTING, ZY_WAITING, ZY_FAILED };

struct sp_zygote {
	uint32_t state;
	uint32_t doorbell; /* futex: bumped with every request (a target, or stop) */
	int32_t target;    /* the slot to fork an instance into, -1: none */
	uint32_t stop;
	int32_t pid;
	char error[256];
	uint32_t region_req; /* as sp_instance's: the zygote asks for its SFC's region and images */
};

/* The gateway stage of serpensd's data plane (docs/stages.md), cumulative since it started: TSC time
 * around receive + classify + route + enqueue of bursts that brought packets, waking instances (with
 * --colocate: the whole hand-off less the instance's own work during it), and transmit of what instances
 * produced. Idle polling and the State Manager's timers are not counted. Written by the data plane only,
 * on a cache line of its own. */
struct sp_gateway_stage {
	uint64_t busy_cycles;
	uint64_t packets;     /* received from the port */
	uint64_t wake_cycles; /* of busy_cycles: waking instances and handing the core over */
} __attribute__((aligned(64)));

/* Per SFC and position ("hop": the delivery to that NF, or at SP_MAX_POS the delivery out of the SFC to
 * serpensd's transmit), cumulative since serpensd started: in = out + nf_drops + stranded (+ queued)
 * for an NF hop; every packet that entered the SFC leaves through one drop counter or the exit.
 * Written by the proxy (in, out, no_instance, ring_full), the NF's instances (nf_drops, delivery_*:
 * atomic adds, one per batch) and the control thread (stranded). */
struct sp_hop_stats {
	uint64_t in;          /* packets queued on an instance of this NF (exit: on the proxy's tx ring) */
	uint64_t out;         /* packets taken back from its instances' tx rings */
	uint64_t nf_drops;    /* dropped by the NF (verdict, selector) or its instance's full tx ring */
	uint64_t no_instance; /* dropped: no ready instance of this NF */
	uint64_t ring_full;   /* dropped: the chosen instance's rx ring (exit: the proxy's tx ring) full */
	uint64_t stranded;    /* dropped: left in an instance's rx ring when it stopped or crashed */
	uint64_t delivery_cycles, delivery_batches; /* as in sp_instance, summed over its instances */
};

/* The proxy process of local-proxy chaining (SAND's per-server bus; delivery_local_proxy.c,
 * local_proxy.c). One per serpensd, outside the instance slots. */
struct sp_proxy {
	struct sp_sleeper sl;
	uint32_t state;       /* INST_FREE, INST_STARTING, INST_READY, INST_DEAD */
	int32_t pid;
	uint32_t kick;        /* the control thread asks serpensd to wake the proxy (an instance stopped) */
	uint64_t wake_at;     /* TSC before which the proxy need not run again (its earliest flush_us
			       * deadline, 0: none); written by the proxy before it sleeps, read by serpensd */
	uint64_t gen_seen;    /* the instance generation (sp_delivery_shared.gen) its view was built from */
	uint64_t restarts;
	/* counters written by the proxy, cumulative */
	uint64_t rx, tx;      /* from the gateway / to serpensd's transmit */
	uint64_t runs, sleeps, wakeups; /* activations, sleeps, instances it woke */
	uint64_t handoffs, handoff_timeouts, handoff_max_ns;
	/* the proxy stage (docs/stages.md): TSC around its own work (moving packets, waking instances;
	 * a hand-off to an instance less that instance's work), packets = rx */
	uint64_t busy_cycles, wake_cycles;
	char rx_ring[32];
	char tx_ring[32];
	char error[256];
};

/* What serpensd shares about packet delivery between NFs (proxy chainings). */
struct sp_delivery_shared {
	uint32_t mode;         /* enum sp_chaining */
	uint32_t flush_us;     /* serpensd --flush-us: the wake rule's timeout, for the proxy's hops too */
	uint64_t gen;          /* bumped by the control thread whenever the set of ready instances changes */
	uint64_t want_start[SP_MAX_SFCS]; /* per SFC, bit p: a packet found no instance of position p */
	struct sp_hop_stats hop[SP_MAX_SFCS][SP_MAX_POS + 1];
	struct sp_proxy proxy;
};

/* the range --tsc-hz accepts (serpensd, serpens-wire; the generator's is the same) */
#define SP_MIN_TSC_HZ 100000000ull
#define SP_MAX_TSC_HZ 100000000000ull

struct sp_ctl {
	uint64_t magic;
	uint64_t tsc_hz; /* the kernel's calibration when serpensd got --tsc-hz, else DPDK's estimate */
	uint32_t wake_batch;
	uint32_t batch;     /* most packets a runtime takes from its ring per batch (one request, Sec. II-B) */
	uint32_t colocate;
	/* where NF state lives (serpensd --state-backend; docs/state-backends.md), read by every runtime */
	uint32_t state_backend;  /* enum rs_backend */
	char redis_host[64];
	uint32_t redis_port;
	uint32_t redis_timeout_ms;
	struct sp_nf_desc nfs[SP_MAX_NFS];
	struct sp_sfc_desc sfcs[SP_MAX_SFCS];
	struct sp_instance inst[SM_MAX_INSTANCES];
	/* serpensd --max-instances: slots 0..max_instances-1 may hold an instance (the State Manager's regions
	 * have that many, sm_set_region_slots) */
	uint32_t max_instances;
	/* 1 + the highest slot that is not INST_FREE (0: none), raised by the control thread before it claims a
	 * slot and lowered after it freed the highest: every loop over the slots on the data path (the gateway,
	 * the proxies) stops here, so its cost is the instances in use, not SM_MAX_INSTANCES */
	uint32_t slots_hi;
	struct sp_gateway_stage gateway;
	struct sp_delivery_shared delivery;
	uint32_t startup; /* enum st_method (native/serpens/startup/starter.h): how runtimes load the NFs */
	struct sp_zygote zygote[SP_MAX_SFCS];
	struct sc_shared scaling; /* serpensd --scaling (scaling/scale_shared.h) */
	struct sp_pool_proc pool[SP_MAX_POOL]; /* --pool N: the first N */
	/* serpensd's mempool handlers, in its index order. A process finds a pool's handler by index in its
	 * own table, filled in the order its drivers registered; serpens-runtime links DPDK statically with
	 * only the ring handlers (native/serpens/meson.build), so it orders its table by these names before
	 * it touches a pool, and checks that the mbuf pool's handler (mbuf_ops_index) is the one it has. */
	char mempool_ops[16][32];
	uint32_t n_mempool_ops;
	int32_t mbuf_ops_index;
	/* bumped by deploy_sfc, which then rings every waiting pool process, having sent the new SFC's NF
	 * images to those of its tenant (handover.h): they prewarm their imports while they wait, not in a
	 * start (runtime.c, pool_loop) */
	uint32_t images_gen;
	/* the tenants' state regions (tenant_region.h): where each is mapped, for the runtimes of that tenant */
	struct sp_tenant_region regions[SP_MAX_TENANTS];
};

/* The bound of every loop over the slots on the data path (sp_ctl.slots_hi): slots at and beyond it are FREE. */
static inline unsigned int sp_slots_hi(const struct sp_ctl *ctl)
{
	return __atomic_load_n(&ctl->slots_hi, __ATOMIC_ACQUIRE);
}

/* Futex helpers on shared (not process-private) words. */
int sp_futex_wait(uint32_t *addr, uint32_t val, long timeout_ns);
int sp_futex_wake(uint32_t *addr, int n);

#endif /* SERPENS_CTL_H */
