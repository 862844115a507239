/*
 * tenant_region.c: each tenant's State Manager region in a memfd of serpensd's, and how a runtime gets its
 * tenant's (tenant_region.h has the model; docs/security.md the attacks it stops and those it does not).
 */
#include "tenant_region.h"
#include "ctl.h"
#include "handover.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* serpensd */
static bool g_owner;
static struct sp_ctl *g_ctl;
static struct sm_region *g_reg[SP_MAX_TENANTS];
static size_t g_size;
/* a runtime */
static int g_mapped = -1;       /* index of the region mapped here */
static struct sm_region *g_cur; /* ... and its State Manager region */

static void *region_addr(int idx) { return (void *)(uintptr_t)(SP_REGION_BASE + (uint64_t)idx * SP_REGION_STRIDE); }

/* ---------------------------------------------------------------------------------------------- */
/* serpensd                                                                                       */

int tr_reserve(char *err, size_t errlen)
{
	size_t len = (size_t)SP_MAX_TENANTS * SP_REGION_STRIDE;
	void *p = mmap((void *)(uintptr_t)SP_REGION_BASE, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED || p != (void *)(uintptr_t)SP_REGION_BASE) {
		if (p != MAP_FAILED)
			munmap(p, len); /* a kernel without MAP_FIXED_NOREPLACE put it elsewhere */
		snprintf(err, errlen, "cannot reserve the tenants' state address range at %#llx: %s",
			 (unsigned long long)SP_REGION_BASE, p == MAP_FAILED ? strerror(errno) : "taken");
		return -1;
	}
	g_owner = true;
	return 0;
}

/* Map a new memfd of g_size bytes at region idx's address: hugepages if the kernel has them to give, else
 * 4 KiB pages (a region that exists beats a deployment that fails; the reason is logged and published). */
static int region_map(int idx, const char *tenant, char *backing, size_t blen, char *err, size_t errlen)
{
	char name[64], why[160] = "";
	void *want = region_addr(idx), *p = MAP_FAILED;
	int fd, pass;

	snprintf(name, sizeof(name), SP_REGION_NAME "%s", tenant);
	for (pass = 0; pass < 2 && p == MAP_FAILED; pass++) {
		unsigned int flags = MFD_CLOEXEC | (pass == 0 ? MFD_HUGETLB | MFD_HUGE_2MB : 0);

		fd = memfd_create(name, flags);
		if (fd < 0 || ftruncate(fd, (off_t)g_size) != 0) {
			if (pass == 0)
				snprintf(why, sizeof(why), "%s: %s", fd < 0 ? "memfd_create(MFD_HUGETLB)" : "ftruncate",
					 strerror(errno));
			else
				snprintf(err, errlen, "cannot reserve a %zu MiB state region for tenant %s: memfd: %s",
					 g_size >> 20, tenant, strerror(errno));
			if (fd >= 0)
				close(fd);
			continue;
		}
		/* MAP_FIXED over serpensd's own PROT_NONE reservation (a hugetlb mapping reserves its pages
		 * here: too few free hugepages fail now, not at a later fault) */
		p = mmap(want, g_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
		if (p == MAP_FAILED) {
			if (pass == 0)
				snprintf(why, sizeof(why), "mmap of %zu MiB of hugepages: %s", g_size >> 20, strerror(errno));
			else
				snprintf(err, errlen, "cannot reserve a %zu MiB state region for tenant %s: mmap: %s",
					 g_size >> 20, tenant, strerror(errno));
			/* a failed MAP_FIXED may have unmapped the reservation: put it back */
			mmap(want, g_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
		}
		close(fd); /* the mapping keeps the memfd: no descriptor of it stays for /proc/<pid>/fd */
		if (p != MAP_FAILED)
			snprintf(backing, blen, "%s", pass == 0 ? "hugetlb" : "memfd");
	}
	if (p == MAP_FAILED)
		return -1;
	if (why[0])
		fprintf(stderr, "serpensd: tenant %s: state region in 4 KiB pages, not hugepages (%s)\n", tenant, why);
	return 0;
}

static int region_create(int idx, const char *tenant, char *err, size_t errlen)
{
	struct sp_tenant_region *tr = &g_ctl->regions[idx];
	char backing[sizeof(tr->backing)];

	if (region_map(idx, tenant, backing, sizeof(backing), err, errlen) != 0)
		return -1;
	g_reg[idx] = sm_region_create(region_addr(idx), g_size); /* a new memfd is zeroed */
	if (!g_reg[idx]) {
		snprintf(err, errlen, "tenant %s: state region of %zu bytes is too small", tenant, g_size);
		return -1;
	}
	snprintf(tr->tenant, sizeof(tr->tenant), "%s", tenant);
	snprintf(tr->backing, sizeof(tr->backing), "%s", backing);
	tr->addr = (uint64_t)(uintptr_t)region_addr(idx);
	tr->size = g_size;
	__atomic_store_n(&tr->used, 1, __ATOMIC_RELEASE);
	return 0;
}

int tr_setup(struct sp_ctl *ctl, size_t size, char *err, size_t errlen)
{
	g_ctl = ctl;
	g_size = (size + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1); /* hugepages: whole 2 MiB pages */
	if (g_size > SP_REGION_STRIDE) {
		snprintf(err, errlen, "cannot reserve a %zu MiB state region: a tenant's region has %llu GiB of "
			 "address space (--state-mb)", size >> 20, SP_REGION_STRIDE >> 30);
		return -1;
	}
	return tr_index(SM_DEFAULT_TENANT, true, err, errlen) < 0 ? -1 : 0;
}

int tr_index(const char *tenant, bool create, char *err, size_t errlen)
{
	int i, free_idx = -1;

	for (i = 0; i < SP_MAX_TENANTS; i++) {
		if (g_reg[i] && strcmp(g_ctl->regions[i].tenant, tenant) == 0)
			return i;
		if (!g_reg[i] && free_idx < 0)
			free_idx = i;
	}
	if (!create) {
		snprintf(err, errlen, "tenant %s has no state region (none of its NFs is deployed)", tenant);
		return -1;
	}
	if (free_idx < 0) {
		snprintf(err, errlen, "tenant %s: serpensd holds the state regions of %d tenants already", tenant,
			 SP_MAX_TENANTS);
		return -1;
	}
	return region_create(free_idx, tenant, err, errlen) == 0 ? free_idx : -1;
}

struct sm_region *tr_region(int idx) { return idx >= 0 && idx < SP_MAX_TENANTS ? g_reg[idx] : NULL; }

struct sm_region *tr_region_of_table(const char *table)
{
	const char *colon = strchr(table, ':'), *slash = strchr(table, '/');
	char tenant[SM_TENANT_LEN], err[8];
	size_t n;

	if (!colon || (slash && slash < colon)) /* "<nf>/<table>": the default tenant's */
		return tr_region(tr_index(SM_DEFAULT_TENANT, false, err, sizeof(err)));
	n = (size_t)(colon - table);
	if (n == 0 || n >= sizeof(tenant))
		return NULL;
	memcpy(tenant, table, n);
	tenant[n] = '\0';
	return tr_region(tr_index(tenant, false, err, sizeof(err)));
}

int tr_region_fd(int idx, char *err, size_t errlen)
{
	const struct sp_tenant_region *tr;
	char path[80];
	int fd;

	if (!tr_region(idx)) {
		snprintf(err, errlen, "no state region %d to hand over", idx);
		return -1;
	}
	tr = &g_ctl->regions[idx];
	snprintf(path, sizeof(path), "/proc/self/map_files/%llx-%llx", (unsigned long long)tr->addr,
		 (unsigned long long)(tr->addr + tr->size));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		snprintf(err, errlen, "cannot reopen tenant %s's state region (%s): %s", tr->tenant, path,
			 strerror(errno));
	return fd;
}

/* ---------------------------------------------------------------------------------------------- */
/* a runtime                                                                                      */

int tr_attach(const struct sp_ctl *ctl, const char *tenant, char *err, size_t errlen)
{
	const struct sp_tenant_region *tr = NULL;
	struct sm_region *r;
	void *p;
	int i, idx = -1, fd;

	if (g_owner) { /* serpensd itself: every region is mapped here */
		r = tr_region(tr_index(tenant, false, err, errlen));
		return r ? sm_set_region(r) : -1;
	}
	for (i = 0; i < SP_MAX_TENANTS && idx < 0; i++)
		if (__atomic_load_n(&ctl->regions[i].used, __ATOMIC_ACQUIRE) && !strcmp(ctl->regions[i].tenant, tenant))
			idx = i;
	if (idx < 0) {
		snprintf(err, errlen, "tenant %s has no state region (none of its NFs is deployed)", tenant);
		return -1;
	}
	if (idx == g_mapped) /* a pool process's next start for the same tenant: no syscall (~5 µs) */
		return sm_set_region(g_cur);
	if (g_cur) { /* another tenant's: gone before this tenant's NFs run here */
		sm_forget_region(g_cur);
		munmap(g_cur, ctl->regions[g_mapped].size);
		g_cur = NULL;
		g_mapped = -1;
	}
	tr = &ctl->regions[idx];
	/* a pooled start: serpensd sent it (ho_send from pool_hand) before it woke us; not sent ahead (an
	 * exec'd runtime, a zygote, a failed send): ask and wait */
	ho_drain();
	fd = ho_take_region(idx);
	if (fd < 0 && ho_request(err, errlen) != 0)
		return -1;
	if (fd < 0 && (fd = ho_take_region(idx)) < 0) {
		snprintf(err, errlen, "serpensd did not hand over tenant %s's state region", tenant);
		return -1;
	}
	p = mmap((void *)(uintptr_t)tr->addr, tr->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	close(fd); /* the mapping keeps it; no descriptor of it stays in this process */
	if (p == MAP_FAILED || p != (void *)(uintptr_t)tr->addr) {
		snprintf(err, errlen, "cannot map tenant %s's state region at %#llx: %s", tenant,
			 (unsigned long long)tr->addr, p == MAP_FAILED ? strerror(errno) : "placed elsewhere");
		if (p != MAP_FAILED)
			munmap(p, tr->size);
		return -1;
	}
	r = sm_region_attach(p);
	if (!r || sm_set_region(r) != 0) {
		snprintf(err, errlen, "tenant %s's state region is not initialised", tenant);
		munmap(p, tr->size);
		return -1;
	}
	g_cur = r;
	g_mapped = idx;
	return 0;
}
