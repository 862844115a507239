/*
 * sig.h: signal handling shared by serpens-gen, serpens-wire and serpensd.
 *
 * Why: a DPDK busy-poll loop must never do real work inside a signal
 * handler. As in DPDK's l2fwd, the handlers only raise flags; the main loop
 * polls them once per iteration and does the work (stop, write a report or a
 * stats snapshot) in normal context.
 */
#ifndef SERPENS_SIG_H
#define SERPENS_SIG_H

#include <signal.h>

/* Set by SIGINT or SIGTERM: stop as soon as possible, cleanly. */
extern volatile sig_atomic_t sig_quit;
/* Set by SIGUSR1: the consumer writes a snapshot, then clears it. */
extern volatile sig_atomic_t sig_snapshot;

/* Install the handlers (SIGUSR1 only when want_usr1 is non-zero). */
void sig_install(int want_usr1);

#endif
