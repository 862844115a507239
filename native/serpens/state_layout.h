/*
 * state_layout.h: the State Manager's shared-memory layout — a region's header, its table directory and a
 * table's entry. Private to state.c; test_state.c includes it too, to play a hostile runtime that
 * rewrites a directory entry in its own region (every runtime of a tenant maps that region writable).
 */
#ifndef SERPENS_STATE_LAYOUT_H
#define SERPENS_STATE_LAYOUT_H

#include <stdint.h>

#include "state.h"

#define SM_MAGIC 0x5345525053544154ull /* "SERPSTAT" */
#define SLOT_EMPTY 0u
#define SLOT_BUSY 1u
#define SLOT_FULL 2u
#define SLOT_TOMB 3u
#define SM_TIMER_KEY_MAX 64
#define SM_PAUSE_TIMEOUT_NS 1000000000ull

struct sm_table_shm {
	char name[SM_NAME_LEN];
	uint32_t flags;
	uint32_t key_size;
	uint32_t value_size;
	uint32_t key_stride;
	uint32_t val_stride;
	uint32_t nvals; /* 1, or 1 + the region's slots for global|write */
	uint32_t slot_size;
	uint32_t lock;
	uint64_t nslots; /* power of two */
	uint64_t count;
	uint8_t *slots;
	uint32_t *live;   /* indexes of every slot that ever held a key, so whole-table work (update on a timer,
			   * dumps) touches live keys only instead of scanning every slot */
	uint64_t nlive;
	uint64_t timer_us;
	uint64_t timer_next_us;
	uint32_t timer_has_key;
	uint8_t timer_key[SM_TIMER_KEY_MAX];
	uint32_t remote; /* a directory entry only: the table lives in a remote store (remote_table.c) */
	char tenant[SM_TENANT_LEN]; /* who created it: only that tenant's NFs may attach (sm_set_tenant) */
};

struct sm_region {
	uint64_t magic;
	uint64_t size;
	uint64_t used;
	uint32_t ntables;
	uint32_t dir_lock;
	uint32_t pause;
	uint32_t ninst; /* instance slots (sm_set_region_slots at creation): 0..ninst-1 may be claimed */
	uint32_t busy[SM_MAX_INSTANCES];
	uint32_t active[SM_MAX_INSTANCES];
	uint64_t errors;
	uint64_t last_error_ns; /* when last_error was written (CLOCK_MONOTONIC): the newest of several regions */
	char last_error[256];
	uint64_t pause_t0;                       /* when the current pause began (ns) */
	uint64_t pause_wait;                     /* of it, ns spent waiting for instances to leave a batch */
	struct sm_pause_stats pauses[SM_PAUSE_KINDS]; /* written by the pause holder only */
	struct sm_table_shm tables[SM_MAX_TABLES];
	uint8_t heap[] __attribute__((aligned(64)));
};

#endif /* SERPENS_STATE_LAYOUT_H */
