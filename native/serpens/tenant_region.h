/*
 * tenant_region.h: each tenant's State Manager region, outside the EAL memory (docs/security.md).
 *
 * Every runtime is a DPDK secondary of serpensd and maps all of its hugepage memory read-write, so a
 * state region in a memzone is every tenant's to read and overwrite. Instead serpensd (the State Manager,
 * trusted) creates one region per tenant in a memfd of its own (hugepages if it can, MFD_HUGETLB; else an
 * ordinary memfd, the reason logged), maps every one, and closes the descriptor. A runtime gets only its
 * SFC's tenant's: it asks through its slot's (or zygote's) region_req word in the ctl memzone, and
 * serpensd, which knows privately which tenant it started that process for, reopens the region from its
 * own mapping (/proc/self/map_files, which needs CAP_SYS_ADMIN: runtimes dropped it) and passes the
 * descriptor over the socket the runtime listens on (handover.h, which passes its NF images too).
 * The runtime maps it and closes the descriptor: no process but serpensd, and only for the moment it
 * hands one over, holds a region's descriptor that /proc/<pid>/fd or pidfd_getfd could reach.
 *
 * Each region is mapped at a fixed address (SP_REGION_BASE + index * SP_REGION_STRIDE, reserved by
 * serpensd before EAL initialisation; runtimes map with MAP_FIXED_NOREPLACE), so the pointers the State
 * Manager keeps inside a region (a table's slots) are valid in every process that maps it and the
 * per-packet code stays what it was. Offsets instead would cost an add per access and a change of every
 * table's hot path; fixed addresses cost one reserved range of address space.
 */
#ifndef SERPENS_TENANT_REGION_H
#define SERPENS_TENANT_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "state.h"

#define SP_MAX_TENANTS 8                          /* state regions per serpensd: tenants with an NF */
#define SP_REGION_BASE 0x600000000000ull          /* far above the EAL's memsegs, below the mmap area */
#define SP_REGION_STRIDE (64ull << 30)            /* address space per region: at most 64 GiB each */
#define SP_REGION_NAME "serpens-state-"           /* memfd name prefix: "serpens-state-<tenant>" */

/* One tenant's region, published in the ctl memzone (written by serpensd only). */
struct sp_tenant_region {
	uint32_t used;
	char tenant[SM_TENANT_LEN];
	uint64_t addr;    /* where every process maps it */
	uint64_t size;
	char backing[16]; /* "hugetlb" or "memfd" (4 KiB pages: the hugepages were short, logged) */
};

struct sp_ctl;

/* ---- serpensd (the State Manager) ------------------------------------------------------------ */

/* Reserve the regions' address space (PROT_NONE) before EAL initialisation, so that nothing of serpensd
 * lands there. 0, or -1 with err. */
int tr_reserve(char *err, size_t errlen);
/* After EAL initialisation: regions of `size` bytes, published in ctl; creates the "default" tenant's. */
int tr_setup(struct sp_ctl *ctl, size_t size, char *err, size_t errlen);
/* The tenant's region index, creating the region if create (a tenant's first deploy_nf); -1 with err. */
int tr_index(const char *tenant, bool create, char *err, size_t errlen);
struct sm_region *tr_region(int idx); /* NULL if no such region */
/* The region a table's full name lives in ("<tenant>:<nf>/<t>", or "<nf>/<t>" for the default tenant). */
struct sm_region *tr_region_of_table(const char *table);
/* A new read-write descriptor of region idx, reopened from serpensd's own mapping, for ho_send to hand
 * over (handover.h) and close. The descriptor, or -1 with err. */
int tr_region_fd(int idx, char *err, size_t errlen);

/* ---- a runtime -------------------------------------------------------------------------------- */

/* Map the tenant's region (unless it is mapped here already; another tenant's is unmapped first), taking
 * its descriptor from serpensd's message (handover.h: queued already, or asked for and waited on), and
 * make it the State Manager's current region. In serpensd itself (a thread starter's host is a runtime,
 * not serpensd) it only selects the region. 0, or -1 with err. */
int tr_attach(const struct sp_ctl *ctl, const char *tenant, char *err, size_t errlen);

#endif /* SERPENS_TENANT_REGION_H */
