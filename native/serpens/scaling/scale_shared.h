/*
 * scale_shared.h: what the scaling axis (serpensd --scaling; docs/scaling.md) keeps in the control
 * memzone, shared by serpensd's control thread, its data plane, the instances and the OpenNF controller.
 *
 * A move takes the flows of some of an SFC's router buckets from one instance to another. The control
 * thread runs one move at a time (scale_control.c); what it has to do to keep the moved flows' state
 * depends on the protocol:
 *
 *   shared   the state is where every instance reaches it (the State Manager's shared memory, or the
 *            remote store): the route moves, nothing else does (Serpens, and Fission/SAND, whose state is
 *            remote);
 *   snf      the old instance pushes each moved flow's state straight to the new one (SNF);
 *   s6       the new instance pulls a flow's state from its owner, found in a directory, on first access
 *            (S6);
 *   chc      the old instance flushes moved flows to the external store (the run's redis-server) and the
 *            new one fetches them from there once the store has them (CHC);
 *   opennf   a controller process: moved flows' packets are diverted to it and buffered, state goes
 *            through it one flow at a time, each import acknowledged, then the route moves and the
 *            buffer is released (OpenNF, loss-free and order-preserving; `opennf-loss-free`: loss-free
 *            only).
 *
 * With every protocol but `shared`, per-flow tables live in each instance's private memory
 * (scale_store.c), so a moved flow's state really has to travel.
 */
#ifndef SERPENS_SCALE_SHARED_H
#define SERPENS_SCALE_SHARED_H

#include <stdint.h>

#include "sleeper.h"
#include "state.h"

#define SC_BUCKETS 256 /* = RT_BUCKETS (serpensd.h; checked there) */
#define SC_MASK_WORDS (SC_BUCKETS / 64)
#define SC_DIR_SIZE 65536 /* S6's directory: flows per server, open addressing on the flow hash */

enum sc_protocol { SC_SHARED = 0, SC_SNF, SC_S6, SC_CHC, SC_OPENNF, SC_NPROTO };

/* OpenNF's guarantees (Gember-Jacobson et al., SIGCOMM'14, Sec. 5.1): loss-free, or loss-free and
 * order-preserving. */
enum sc_onf_mode { SC_ONF_LOSS_FREE = 0, SC_ONF_ORDER = 1 };

/* The move in progress, or the last one. Times are TSC, on the machine's one clock (the generator's
 * latency stamps use the same one, so a figure can place a move on its latency trace). */
struct sc_move {
	uint64_t id;        /* bumped per move; messages carry it */
	uint32_t active;
	uint32_t protocol;  /* enum sc_protocol */
	uint32_t pinned;    /* --pin-flows: only new flows moved (E2), no state */
	int32_t sfc, from, to;
	uint64_t buckets[SC_MASK_WORDS];
	uint64_t from_mark; /* the old instance's `enq` once the router stopped sending it moved flows: it
			     * has seen every packet of theirs when it has taken that many from its ring */
	uint64_t t_request, t_switch, t_state_done, t_end;
	/* the protocol's work, counted where it is done */
	uint64_t flows;       /* flows whose state was exported */
	uint64_t entries;     /* table entries in them */
	uint64_t bytes;       /* state bytes sent (keys and values) */
	uint64_t msgs;        /* protocol messages sent (ring messages, Redis commands) */
	uint64_t pulls;       /* s6: pulls served */
	uint64_t store_rtts;  /* chc: round trips to the store */
	uint64_t diverted;    /* opennf: packets that went to the controller */
	uint64_t released;    /* opennf: of those, handed to the new instance */
	uint64_t buffer_drops; /* opennf: packets the controller could not buffer */
	uint64_t t_last_state; /* TSC of the last state transfer of this move (s6 pulls come late) */
};

/* Per instance slot, written by the instance holding it (zeroed when an instance starts). */
struct sc_inst {
	uint64_t held;          /* packets that waited for their flow's state */
	uint64_t held_now;
	uint64_t held_max;      /* most waiting at once */
	uint64_t hold_cycles;   /* TSC summed over waiting packets, arrival to release */
	uint64_t hold_max_cycles;
	uint64_t hold_drops;    /* packets dropped because the hold queue was full */
	uint64_t flows_in, flows_out, msgs_in, msgs_out;
	uint64_t rx_taken;      /* packets taken from the rx ring (the drain mark is on this) */
	uint64_t private_entries; /* entries in its private per-flow tables */
	uint64_t store_errors;  /* chc: failed store commands */
	char error[160];
};

/* The OpenNF controller process (serpens-runtime -O). */
struct sc_onf_proc {
	struct sp_sleeper sl; /* woken, and with --colocate handed the core, by serpensd's data plane */
	uint32_t state;       /* enum sp_inst_state (STARTING, READY, STOPPING, DEAD) */
	int32_t pid;
	uint64_t buffered_now, buffered_max;
	char error[160];
};

struct sc_dir_ent {
	uint32_t flow;  /* 0: empty (a flow hash of 0 is stored as 1) */
	int32_t owner;
};

struct sc_shared {
	uint32_t protocol;  /* serpensd --scaling */
	uint32_t onf_mode;  /* enum sc_onf_mode: --scaling opennf (both guarantees) or opennf-loss-free */
	uint64_t msg_size;  /* bytes per message buffer */
	struct sc_move move;
	struct sc_inst inst[SM_MAX_INSTANCES];
	struct sc_onf_proc onf;
	struct sc_dir_ent dir[SC_DIR_SIZE]; /* s6: flow hash -> owning instance */
};

const char *sc_protocol_name(enum sc_protocol p);
/* The protocol (or -1 if unknown); `opennf` is OpenNF loss-free and order-preserving, `opennf-loss-free`
 * the same protocol with loss-free only (*onf_mode). */
int sc_protocol_parse(const char *s, uint32_t *onf_mode);
const char *sc_protocol_names(const char *sep);

static inline int sc_bucket_in(const uint64_t *mask, uint32_t flow)
{
	uint32_t b = flow & (SC_BUCKETS - 1);

	return (int)((mask[b / 64] >> (b % 64)) & 1);
}

#endif /* SERPENS_SCALE_SHARED_H */
