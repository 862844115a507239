/*
 * runtime_trim.h: what a runtime (DPDK secondary) gives back after its EAL init, so that a pool of 100
 * of them costs what it must (docs/startup.md, "Memory").
 */
#ifndef SERPENS_RUNTIME_TRIM_H
#define SERPENS_RUNTIME_TRIM_H

#include <stddef.h>

/* Punch the all-zero pages out of this process's own copies of the memseg lists' arrays
 * (<runtime dir>/fbarray_memseg-*_<pid>): bytes given back, or -1 with err. */
long rt_trim_fbarrays(char *err, size_t errlen);

#endif
