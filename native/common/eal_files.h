/*
 * eal_files.h: removes the hugepage files and runtime directory a DPDK
 * primary process leaves behind.
 *
 * Why: a primary started with --file-prefix (as serpens-wire and serpensd
 * are, so that secondaries can attach) keeps its hugepage files
 * (<hugedir>/<prefix>map_N) and /var/run/dpdk/<prefix>/ after
 * rte_eal_cleanup() in DPDK 22.11. Left behind they pin hugepages and make
 * the next trial fail for lack of memory. The file names are collected
 * before rte_eal_cleanup() (from the memseg file descriptors) and deleted
 * after it.
 */
#ifndef SERPENS_EAL_FILES_H
#define SERPENS_EAL_FILES_H

#include <limits.h>

#define EAL_FILES_MAX 1024

struct eal_files {
	unsigned int n;
	char *paths[EAL_FILES_MAX];
	char rundir[PATH_MAX];
};

/* (Re)collect the file names (primary process only; no-op otherwise).
 * Call after every step that may map more hugepages, and last right before
 * rte_eal_cleanup(). */
void eal_files_collect(struct eal_files *f);
/* Call after rte_eal_cleanup(): unlink the files, empty and remove the
 * runtime directory (only the file names DPDK itself creates). */
void eal_files_remove(struct eal_files *f);
/* The end of a DPDK process, instead of rte_eal_cleanup(): collect and remove the files, but leave the
 * memory to exit(). Why: rte_eal_cleanup() unmaps DPDK's memory while the EAL interrupt thread may still
 * be handling a memif peer's disconnect in that memory; in DPDK 22.11 that crashed serpens-wire with
 * SIGSEGV in librte_net_memif in about 1 of 6 short runs (core dumps: main thread in rte_mem_unmap,
 * eal-intr-thread in the PMD). The kernel releases the memory at exit either way. Call after the ports
 * are stopped and closed. */
void eal_files_finish(struct eal_files *f);

/* Right after a successful rte_eal_init(): collect now and remove f's files
 * at exit() too, so that an rte_exit() on a later error (which runs
 * rte_eal_cleanup() and then exit()) does not leave them behind. */
void eal_files_arm(struct eal_files *f);

#endif
