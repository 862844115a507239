/*
 * scale_msg.h: the scaling protocols' messages. A message is a buffer of the "sp_scmsg" mempool passed
 * by pointer on the receiver's inbox ring (multi-producer, single consumer); sending one also wakes the
 * receiver if it sleeps. Inboxes: one per instance slot, one for serpensd's control thread and one for
 * the OpenNF controller. The OpenNF controller hands buffered packets to an instance on that slot's
 * packet ring, and serpensd's data plane diverts packets to the controller on the divert ring.
 *
 * A STATE message carries one flow's entries (struct sc_ent, each followed by its key and value); a
 * flow with more than fits is sent in several, all but the last with `more` set.
 */
#ifndef SERPENS_SCALE_MSG_H
#define SERPENS_SCALE_MSG_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "state.h"

struct sp_ctl;

#define SC_MSG_POOL "sp_scmsg"
#define SC_MSG_BUF 4096
#define SC_MSG_COUNT 8191
#define SC_INBOX_CTL SM_MAX_INSTANCES       /* serpensd's control thread */
#define SC_INBOX_ONF (SM_MAX_INSTANCES + 1) /* the OpenNF controller */
#define SC_NINBOX (SM_MAX_INSTANCES + 2)
#define SC_DIVERT_RING "sp_scdiv"

enum sc_msg_type {
	SC_M_IMPORT = 1, /* ctl -> new: a move into you begins (its record is ctl's sc_move) */
	SC_M_EXPORT,     /* ctl/controller -> old: once past the drain mark, give up the move's flows */
	SC_M_STATE,      /* one flow's state */
	SC_M_DONE,       /* old -> new/controller/ctl: every flow of the move was exported (or flushed) */
	SC_M_PULL,       /* s6, new -> owner: send me this flow's state */
	SC_M_NONE,       /* s6, owner -> new: I hold no state of this flow */
	SC_M_ACK,        /* opennf, new -> controller: imported */
	SC_M_MOVE,       /* opennf, ctl -> controller: run this move */
	SC_M_MOVED,      /* opennf, controller -> ctl: every flow's state imported and acknowledged */
	SC_M_ROUTED,     /* opennf, ctl -> controller: the route now points at the new instance */
	SC_M_RELEASED,   /* opennf, controller -> new and ctl: the buffer was handed over */
	SC_M_READY,      /* s6, old -> ctl: past the drain mark, serving pulls */
	SC_M_FAIL,       /* anyone -> ctl: the move cannot go on (text in data) */
};

struct sc_msg {
	uint16_t type;
	int16_t src;     /* inbox of the sender */
	uint16_t more;   /* STATE: more messages of this flow follow */
	uint16_t nent;   /* STATE: entries in data */
	uint32_t flow;   /* the flow's gateway hash (STATE, PULL, NONE, ACK) */
	uint32_t len;    /* bytes used in data */
	uint64_t move;   /* the move's id */
	uint64_t tsc;    /* when it was sent */
	uint8_t data[];
};

struct sc_ent {
	uint16_t table; /* the table's index in the instance (every instance of an SFC creates the same
			 * tables in the same order) */
	uint16_t key_size;
	uint32_t value_size;
	/* key, then value */
};

#define SC_MSG_ROOM (SC_MSG_BUF - sizeof(struct sc_msg))

/* serpensd: create the pool and the rings (before any runtime starts); 0 or -1 (said why). */
int sc_msg_create(struct sp_ctl *ctl);
/* a runtime or the controller: find them; 0 or -1. */
int sc_msg_attach(struct sp_ctl *ctl);
bool sc_msg_ready(void);

struct sc_msg *sc_msg_new(enum sc_msg_type type, uint64_t move, uint32_t flow); /* NULL if none left */
void sc_msg_free(struct sc_msg *m);
/* Queue m on inbox `to` and wake its reader; on failure m is freed and -1 returned. */
int sc_send(int from, int to, struct sc_msg *m);
/* The next message on inbox `box`, or NULL. */
struct sc_msg *sc_recv(int box);
bool sc_inbox_empty(int box);
/* opennf: the packet rings */
struct rte_ring *sc_pkt_ring(int slot); /* controller -> instance, released packets */
struct rte_ring *sc_divert_ring(void);  /* data plane -> controller */

/* Wake the reader of inbox `box` (its futex doorbell), as a send does. */
void sc_wake(int box);

#endif /* SERPENS_SCALE_MSG_H */
