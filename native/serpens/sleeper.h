/*
 * sleeper.h: the futex words of a process that sleeps when it has nothing to do, shared by serpensd and
 * the processes it wakes (instances, the local proxy, the OpenNF controller). Separate from ctl.h so that
 * the scaling axis's shared block (scaling/scale_shared.h), which ctl.h includes, can name it too.
 */
#ifndef SERPENS_SLEEPER_H
#define SERPENS_SLEEPER_H

#include <stdint.h>

/* The futex words of a process that sleeps when its ring is empty and is woken by whoever feeds it (an
 * instance by serpensd or the proxy, the proxy by serpensd). Protocol: runtime.c's header; the waking
 * side is hop.c. */
struct sp_sleeper {
	uint32_t doorbell; /* bumped (and futex-woken) to wake it */
	uint32_t sleeping; /* 1 while it is (about to be) asleep */
	uint32_t done;     /* bumped when it goes to sleep: a waker that handed it the core waits on this */
	uint32_t stop;     /* SP_STOP_* */
};

#endif /* SERPENS_SLEEPER_H */
