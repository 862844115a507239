/*
 * dp_guard.h: keeps a busy-polling data-plane loop alive when a PMD unmaps
 * shared memory from another thread.
 *
 * Why: DPDK 22.11's memif PMD handles a peer's disconnect in the EAL
 * interrupt thread: it clears its "connected" flag and then munmap()s the
 * shared rings right away, with no synchronisation with an lcore that may be
 * inside rte_eth_rx_burst/tx_burst on the same port. If the lcore is in the
 * middle of a burst it touches unmapped memory and the process dies with
 * SIGSEGV (observed: serpens-wire crashed after a handful of generator runs
 * connected and disconnected). The PMD cannot be changed, so this module
 * interposes munmap(): when a thread other than the registered data-plane
 * thread calls it while the guard is armed, it first waits (at most
 * DP_GUARD_WAIT_MS) until the loop has passed a quiescent point, i.e. every
 * burst that could have started before the flag was cleared has finished.
 * Later bursts see the flag cleared and do not touch the rings.
 *
 * Use: dp_guard_arm() on the lcore that runs the loop, dp_guard_quiescent()
 * once per loop iteration (outside any burst), dp_guard_disarm() after the
 * loop. The executable must export munmap (see native/common/meson.build).
 */
#ifndef SERPENS_DP_GUARD_H
#define SERPENS_DP_GUARD_H

#include <stdint.h>

#define DP_GUARD_WAIT_MS 100

extern uint64_t dp_guard_epoch;

void dp_guard_arm(void);
void dp_guard_disarm(void);

/* Full barrier + counter bump: everything before it (bursts) is finished
 * and everything after it sees flags the other thread cleared before
 * reading the counter. */
static inline void dp_guard_quiescent(void)
{
	__atomic_fetch_add(&dp_guard_epoch, 1, __ATOMIC_SEQ_CST);
}

#endif
