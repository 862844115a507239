/*
 * eal_init_lock.h: the DPDK secondaries of one primary initialise their EAL one at a time.
 *
 * Why: in DPDK 22.11 two secondaries initialising together can make one of them fail with "Cannot
 * initialize local memory map" (seen at Fig. 11's Exec with 100 instances started together; docs/startup.md).
 * Every process ends rte_eal_init() by cleaning the runtime directory (eal_clean_runtime_dir): it opens
 * each fbarray_* file there, and unlinks it if flock(LOCK_EX | LOCK_NB) succeeds, i.e. if no process
 * holds it. A secondary creates its own local memseg fbarrays (fbarray_memseg-..._<pid>) in that
 * directory earlier in rte_eal_init() with open(O_CREAT) and only then flock(LOCK_EX | LOCK_NB). If
 * another secondary's clean-up locks the new file between the two, the creator's flock fails (EAGAIN),
 * rte_fbarray_init fails and so does its EAL init. The directory lock the clean-up takes does not help:
 * the creator does not take it. Nothing about address space (ASLR, --base-virtaddr) is involved.
 *
 * So the primary names a lock file in the environment before it execs any secondary, and each
 * secondary holds that lock (flock, released at close or exit) around its rte_eal_init(): no secondary
 * creates its fbarrays while another cleans the directory.
 */
#ifndef SERPENS_EAL_INIT_LOCK_H
#define SERPENS_EAL_INIT_LOCK_H

#include <stddef.h>

#define EAL_INIT_LOCK_ENV "SERPENS_EAL_INIT_LOCK"

/* Primary, after its own rte_eal_init() and before it execs a secondary: create the lock file `path` and
 * name it in EAL_INIT_LOCK_ENV, which every process it execs inherits. 0, or -1 with err. */
int eal_init_lock_publish(const char *path, char *err, size_t errlen);

/* rte_eal_init(argc, argv), holding the lock EAL_INIT_LOCK_ENV names if it is set (a secondary of a
 * primary that published one); plain rte_eal_init() otherwise. Returns what rte_eal_init() returns, or
 * -1 (with a message on stderr) if the named lock cannot be taken. */
int eal_init_serialised(int argc, char **argv);

#endif
