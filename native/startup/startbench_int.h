/* startbench_int.h: declarations shared by startbench.c (orchestrator) and worker.c. */
#ifndef SERPENS_STARTBENCH_INT_H
#define SERPENS_STARTBENCH_INT_H

#include <stdint.h>

#include "startbench.h"
#include "state.h"

void sb_set_state(struct sb_slot *s, uint32_t st);
/* The DPDK lcore id of whatever runs in `slot` (a process, a forked or a threaded instance): distinct per
 * slot, since per-lcore DPDK state must never be shared. */
static inline unsigned int sb_slot_lcore(int slot) { return 1 + (unsigned int)slot % 126; }
int sb_worker_main(const char *role, int slot, int nfi, int method, uint64_t t_start);

#endif
