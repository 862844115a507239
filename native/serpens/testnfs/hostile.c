/*
 * hostile.c: a test NF that attacks the other tenants of its serpensd (tests/integration/test_isolation.py,
 * docs/security.md). Built for tests only. In a runtime (not in serpensd's deploy-mode init, which runs
 * in serpensd: there it only creates its table) its init tries, in order:
 *
 *   internal   bind the State Manager's and loader's internals (sm_set_tenant, sm_set_nf, ...) with
 *              dlsym: the process exports only the NF API (nf_api.sym);
 *   table      create_table of the victim's NAT table through the NF API ("../<victim>/nat_map"): names
 *              are made by the State Manager from the runtime's tenant and deployment, so this is a
 *              table that was never deployed;
 *   memfd      its own images (handed to it read-only by serpensd: handover.h), reopened read-write
 *              through /proc/self/fd and then written: write(), ftruncate and a MAP_SHARED|PROT_WRITE
 *              mapping ("memfd-own"; sealed: startup/nfm.c); then serpensd's descriptors
 *              (/proc/<serpensd>/fd, each link needs ptrace rights: "proc-fd") and, if it can read them,
 *              the victim's image memfd ("memfd:<victim>") attacked the same way; serpensd's other
 *              memfds are only opened (reported as memfd-other);
 *   file       the victim's dlopen copy (<nf-dir>/<victim>.so) and its own: open for writing, clearing
 *              the immutable flag, unlink (immutable; CAP_LINUX_IMMUTABLE dropped: privs.c);
 *   text       its own code: mprotect(PROT_WRITE) and a write through /proc/self/mem (an image's code is
 *              a read-only shared mapping: refused; a dlopen'd one is private: the write stays in this
 *              process);
 *   region     the victim tenant's state (tenant_region.h): the State Manager's old memzone
 *              (rte_memzone_lookup("serpens_state"), if the process lets it be bound), a scan of every
 *              readable byte of its own address space (the EAL's hugepages among them) for the victim's
 *              table directory entry "<victim_tenant>:<victim>/nat_map", its own mappings for the victim's
 *              region ("memfd:serpens-state-<victim_tenant>"), serpensd's descriptors of it
 *              (/proc/<serpensd>/fd: opened and mapped writable if found), serpensd's mapping of it
 *              reopened through /proc/<serpensd>/map_files, serpensd's memory through /proc/<serpensd>/mem
 *              ("proc-mem": every region is mapped there) and a ptrace attach to serpensd ("ptrace"): a
 *              runtime has no capability left, so no ptrace rights over serpensd (privs.c);
 *   peer       the other runtimes of its serpensd (another tenant's instance, pool processes): ptrace
 *              attach, /proc/<pid>/mem, the links of /proc/<pid>/fd (runtimes are not dumpable);
 *   code       the victim's code through its own process: a descriptor of the victim's image memfd
 *              ("memfd:<victim>") among its own (/proc/self/fd; serpensd hands a process only its own
 *              tenant's images), read if found.
 *
 * Each attempt appends "<attack> <what> blocked|SUCCEEDED <detail>" to the file named by the argument
 * `report`; `victim` is the victim's deployment name. init returns 0, so its instance runs (forwarding
 * every packet): whatever it did is confined to it, or the test sees it in the victim's packets and state.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <unistd.h>

#include "serpens/nf.h"

#include "attack_report.h"

SP_NF_ARGS("report", "victim", "victim_tenant");

static void try_own_fds(const char *victim);

static void try_internals(void)
{
	static const char *const names[] = {"sm_set_tenant", "sm_set_nf", "sm_set_phase_deploy", "sm_create_table",
					    "sm_region_attach", "sm_get_region", "sm_table_foreach", "ldr_map",
					    "st_load_dlopen", "rs_ping", "sc_runtime_setup", NULL};
	const char *const *n;

	for (n = names; *n; n++) {
		void *p = dlsym(RTLD_DEFAULT, *n);

		report("internal", *n, p != NULL, "%p", p);
	}
}

static void try_table(const char *victim)
{
	struct sp_table_opts o = {.key_size = 16, .value_size = 8, .capacity = 1024};
	char name[128];
	sp_table *t;

	snprintf(name, sizeof(name), "../%s/nat_map", victim);
	errno = 0;
	t = create_table(name, SP_PER_FLOW | SP_WRITE, &o);
	report("table", name, t != NULL, "errno=%d", errno);
}

/* write(), ftruncate and a MAP_SHARED|PROT_WRITE mapping of an image memfd through the descriptor at path
 * (sealed: startup/nfm.c), reported as <attack>. */
static void attack_memfd(const char *attack, const char *path, const char *link)
{
	int fd, rc;
	void *m;

	fd = open(path, O_RDWR);
	if (fd < 0) {
		report(attack, link, 0, "open O_RDWR: %s", strerror(errno));
		return;
	}
	/* each call before its report: arguments are evaluated in no set order, errno must be its */
	errno = 0;
	rc = pwrite(fd, "\xcc", 1, 0) == 1;
	report(attack, "write", rc, "%s: %s", link, strerror(errno));
	errno = 0;
	rc = ftruncate(fd, 4096) == 0;
	report(attack, "ftruncate", rc, "%s: %s", link, strerror(errno));
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	report(attack, "mmap-shared-write", m != MAP_FAILED, "%s: %s", link, m == MAP_FAILED ? strerror(errno) : "mapped");
	if (m != MAP_FAILED) {
		((volatile unsigned char *)m)[0] = 0xcc;
		munmap(m, 4096);
	}
	close(fd);
}

static void try_memfds(const char *victim)
{
	char dir[64], path[384], link[256];
	struct dirent *e;
	DIR *d;
	int n = 0, own = 0, fd, entries = 0, links = 0, why = 0;

	/* its own images, which serpensd handed this process (handover.h): reopened read-write through
	 * /proc/self/fd, then written */
	d = opendir("/proc/self/fd");
	while (d && (e = readdir(d))) {
		ssize_t l;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = '\0';
		if (strncmp(link, "/memfd:", 7) != 0 || !strncmp(link, "/memfd:serpens-state-", 21))
			continue;
		own++;
		attack_memfd("memfd-own", path, link);
	}
	if (d)
		closedir(d);
	report("memfd-own", "found", 0, "%d", own); /* 0 with the dlopen loader */

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)getppid()); /* serpensd spawned this runtime */
	/* the directory lists for any root process; each entry's link and open need ptrace rights over serpensd */
	d = opendir(dir);
	if (!d) {
		report("memfd", "proc-fd", 0, "opendir %s: %s", dir, strerror(errno));
		report("memfd", "found", 0, "0");
		return;
	}
	while ((e = readdir(d))) {
		ssize_t l;

		if (e->d_name[0] == '.')
			continue;
		entries++;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l <= 0) {
			why = errno;
			continue;
		}
		links++;
		link[l] = '\0';
		if (strncmp(link, "/memfd:", 7) != 0)
			continue;
		/* the victim's image ("memfd:<victim> (deleted)"); other memfds of serpensd (a memif region:
		 * packet buffers) are only opened, not written, and reported apart (docs/security.md) */
		if (strncmp(link + 7, victim, strlen(victim)) != 0 || link[7 + strlen(victim)] != ' ') {
			fd = open(path, O_RDWR);
			report("memfd-other", link, fd >= 0, "open O_RDWR: %s", fd >= 0 ? "opened" : strerror(errno));
			if (fd >= 0)
				close(fd);
			continue;
		}
		n++;
		attack_memfd("memfd", path, link);
	}
	closedir(d);
	report("memfd", "proc-fd", links > 0, "%s: %d of %d links read%s%s", dir, links, entries, links ? "" : ": ",
	       links ? "" : strerror(why));
	report("memfd", "found", 0, "%d", n); /* the victim's images tried (0 with the dlopen loader) */
}

/* The other runtimes of its serpensd (pool processes, other tenants' instances: /proc/<pid>/stat names the
 * parent): ptrace attach, their memory through /proc/<pid>/mem, their descriptors through /proc/<pid>/fd.
 * Each reported once, with how many it reached of how many it tried. */
static void try_peers(void)
{
	int ppid = (int)getppid(), self = (int)getpid(), peers = 0, traced = 0, mem = 0, fds = 0;
	char path[300], line[512];
	struct dirent *e;
	DIR *d = opendir("/proc");

	while (d && (e = readdir(d))) {
		int pid = atoi(e->d_name), parent = 0, fd;
		char *close_paren;
		FILE *f;
		DIR *fdd;
		struct dirent *fe;

		if (pid <= 0 || pid == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		fclose(f);
		close_paren = strrchr(line, ')');
		if (!strstr(line, "(serpens-runt") || !close_paren || sscanf(close_paren + 2, "%*c %d", &parent) != 1 ||
		    parent != ppid)
			continue;
		peers++;
		if (ptrace(PTRACE_SEIZE, pid, NULL, NULL) == 0) {
			traced++;
			ptrace(PTRACE_DETACH, pid, NULL, NULL);
		}
		snprintf(path, sizeof(path), "/proc/%d/mem", pid);
		fd = open(path, O_RDWR);
		if (fd >= 0) {
			mem++;
			close(fd);
		}
		/* listed for any root process: what counts is a link read */
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		fdd = opendir(path);
		while (fdd && (fe = readdir(fdd))) {
			char fdp[600], link[256];

			snprintf(fdp, sizeof(fdp), "%s/%s", path, fe->d_name);
			if (fe->d_name[0] != '.' && readlink(fdp, link, sizeof(link)) > 0) {
				fds++;
				break;
			}
		}
		if (fdd)
			closedir(fdd);
	}
	if (d)
		closedir(d);
	report("peer", "ptrace", traced > 0, "%d of %d other runtimes attached", traced, peers);
	report("peer", "proc-mem", mem > 0, "%d of %d other runtimes' /proc/<pid>/mem opened", mem, peers);
	report("peer", "proc-fd", fds > 0, "%d of %d other runtimes' /proc/<pid>/fd links read", fds, peers);
}

static void try_file(const char *path, const char *who)
{
	int fd, flags = 0, rc;

	fd = open(path, O_WRONLY);
	report("file", who, fd >= 0, "open %s for writing: %s", path, fd >= 0 ? "opened" : strerror(errno));
	if (fd >= 0) {
		rc = write(fd, "\x7f", 1) == 1;
		report("file", "write", rc, "%s", path);
		close(fd);
	}
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
			int cleared = flags & ~FS_IMMUTABLE_FL;

			errno = 0;
			rc = ioctl(fd, FS_IOC_SETFLAGS, &cleared) == 0 && flags != cleared;
			report("file", "clear-immutable", rc, "%s: flags %#x: %s", path, flags, strerror(errno));
		}
		close(fd);
	}
	errno = 0;
	rc = unlink(path) == 0;
	report("file", "unlink", rc, "%s: %s", path, strerror(errno));
}

static void try_files(const char *victim)
{
	char dir[512], path[600];
	Dl_info info;
	char *slash;

	if (!dladdr((void *)try_files, &info) || !info.dli_fname || !strchr(info.dli_fname, '/')) {
		report("file", "self", 0, "not dlopen'd (an image): no file of its own");
		return;
	}
	snprintf(dir, sizeof(dir), "%s", info.dli_fname);
	slash = strrchr(dir, '/');
	*slash = '\0';
	snprintf(path, sizeof(path), "%s/%s.so", dir, victim);
	try_file(path, "victim");
	try_file(info.dli_fname, "self");
}

/* a function this NF never calls after init: the target of its own text writes */
__attribute__((noinline)) static int spare(int x) { return x * 3 + 1; }

static void try_text(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	void *page = (void *)((unsigned long)spare & ~(unsigned long)(pg - 1));
	unsigned char b = *(volatile unsigned char *)spare;
	int fd, rc;

	errno = 0;
	rc = mprotect(page, (size_t)pg, PROT_READ | PROT_WRITE | PROT_EXEC);
	report("text", "mprotect-write", rc == 0, "%s", rc == 0 ? "own text made writable" : strerror(errno));
	if (rc == 0)
		mprotect(page, (size_t)pg, PROT_READ | PROT_EXEC);
	fd = open("/proc/self/mem", O_RDWR);
	errno = 0;
	rc = fd >= 0 && pwrite(fd, &b, 1, (off_t)(unsigned long)spare) == 1;
	report("text", "proc-self-mem", rc, "%s", rc ? "wrote own text (same byte)" : strerror(errno));
	if (fd >= 0)
		close(fd);
	(void)spare(1);
}

/* Hits of needle[0..n) in this process's readable memory, outside [skip, skip + skiplen) (the needle's and
 * the scan buffer's own mapping); *where names the first mapping with one. Read through /proc/self/mem, so
 * that a mapped but unbacked page is an error to step over, not a crash. */
static int scan_self(const char *needle, size_t n, const void *skip, size_t skiplen, char *where, size_t wlen,
		     unsigned char *buf, size_t buflen, unsigned long *bytes)
{
	char line[512], perms[8], path[256];
	unsigned long lo, hi, a;
	FILE *maps = fopen("/proc/self/maps", "r");
	int mem = open("/proc/self/mem", O_RDONLY), hits = 0;

	if (!maps || mem < 0) {
		if (maps)
			fclose(maps);
		if (mem >= 0)
			close(mem);
		return -1;
	}
	while (fgets(line, sizeof(line), maps)) {
		path[0] = '\0';
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %255[^\n]", &lo, &hi, perms, path) < 3 || perms[0] != 'r')
			continue;
		/* its own tenant's region is skipped (reading it would allocate its untouched hugepages); the
		 * victim's, were it mapped here, is scanned (and the "maps" attack names it) */
		if (!strncmp(path, "/memfd:serpens-state-", 21) && strncmp(path + 21, needle, strcspn(needle, ":")))
			continue;
		if (strstr(path, "[vvar") || strstr(path, "[vsyscall]") ||
		    (lo < (unsigned long)skip + skiplen && hi > (unsigned long)skip))
			continue;
		for (a = lo; a < hi; a += buflen) {
			size_t len = hi - a < buflen ? hi - a : buflen;
			ssize_t got = pread(mem, buf, len, (off_t)a);
			unsigned char *p = buf;

			if (got <= 0)
				continue;
			*bytes += (unsigned long)got;
			/* a hit across two chunks is missed: the entry is 8-aligned in a 64-byte field, chunks are
			 * 1 MiB-aligned reads of mappings that start page-aligned */
			while ((p = memmem(p, (size_t)got - (size_t)(p - buf), needle, n))) {
				if (!hits++)
					snprintf(where, wlen, "%lx in %s", a + (unsigned long)(p - buf), path[0] ? path : "(anonymous)");
				p += n;
				if (p >= buf + got)
					break;
			}
		}
	}
	fclose(maps);
	close(mem);
	return hits;
}

static void try_regions(const char *victim, const char *vtenant)
{
	const size_t buflen = 1 << 20, maplen = buflen + 4096;
	char path[128], link[256], where[320] = "", name[96], line[512];
	void *(*lookup)(const char *) = (void *(*)(const char *))dlsym(RTLD_DEFAULT, "rte_memzone_lookup");
	unsigned char *area;
	unsigned long bytes = 0, lo = 0, hi = 0;
	struct dirent *e;
	int hits, n = 0, fd, ppid = (int)getppid(), maps_err;
	FILE *f;
	DIR *d;

	/* the State Manager's memzone of old: every tenant's tables in the EAL memory */
	if (!lookup) {
		report("region", "memzone", 0, "rte_memzone_lookup is not exported to NFs");
	} else {
		void *mz = lookup("serpens_state");

		report("region", "memzone", mz != NULL, "rte_memzone_lookup(\"serpens_state\") = %p", mz);
	}
	/* the victim's table directory entry anywhere in this process; needle and scan buffer in a mapping of
	 * their own, skipped */
	area = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		report("region", "scan", 0, "mmap: %s", strerror(errno));
	} else {
		char *needle = (char *)area + buflen;
		size_t nl = (size_t)snprintf(needle, 4096, "%s:%s/nat_map", vtenant, victim) + 1; /* and its NUL */

		hits = scan_self(needle, nl, area, maplen, where, sizeof(where), area, buflen, &bytes);
		report("region", "scan", hits > 0, "%d hits of the victim's table entry in %lu MiB readable%s%s", hits,
		       bytes >> 20, hits > 0 ? ": first at " : "", where);
		munmap(area, maplen);
	}
	/* the victim's region among its own mappings */
	snprintf(name, sizeof(name), "/memfd:serpens-state-%s ", vtenant);
	f = fopen("/proc/self/maps", "r");
	hits = 0;
	while (f && fgets(line, sizeof(line), f))
		hits += strstr(line, name) != NULL;
	if (f)
		fclose(f);
	report("region", "maps", hits > 0, "%d mappings of %s", hits, name + 1);
	/* serpensd's descriptors of it */
	snprintf(path, sizeof(path), "/proc/%d/fd", ppid);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		char fdp[384];
		ssize_t l;
		void *m;

		snprintf(fdp, sizeof(fdp), "%s/%s", path, e->d_name);
		l = readlink(fdp, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = '\0';
		if (strncmp(link, "/memfd:serpens-state-", 21) != 0)
			continue;
		n++;
		fd = open(fdp, O_RDWR);
		m = fd >= 0 ? mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
		report("region", "fd-open", m != MAP_FAILED, "%s: %s", link, m != MAP_FAILED ? "mapped writable" : strerror(errno));
		if (m != MAP_FAILED)
			munmap(m, 4096);
		if (fd >= 0)
			close(fd);
	}
	if (d)
		closedir(d);
	report("region", "fd", n > 0, "%d state region descriptors in %s", n, path);
	/* serpensd's mapping of it, reopened by address */
	snprintf(path, sizeof(path), "/proc/%d/maps", ppid);
	f = fopen(path, "r");
	maps_err = f ? 0 : errno;
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, name) && sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			break;
	if (f)
		fclose(f);
	if (!hi) {
		report("region", "map-files", 0, "no mapping of %s in %s: %s", name + 1, path,
		       maps_err ? strerror(maps_err) : "not mapped");
		lo = 0x600000000000ul; /* tenant_region.h, SP_REGION_BASE: the first region's address */
	} else {
		snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", ppid, lo, hi);
		errno = 0;
		fd = open(path, O_RDWR);
		report("region", "map-files", fd >= 0, "%s: %s", path, fd >= 0 ? "opened" : strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	/* serpensd's memory, where every tenant's region is mapped: ptrace rights over serpensd */
	snprintf(path, sizeof(path), "/proc/%d/mem", ppid);
	errno = 0;
	fd = open(path, O_RDWR);
	{
		uint64_t magic = 0;
		int rc = fd >= 0 && pread(fd, &magic, sizeof(magic), (off_t)lo) == (ssize_t)sizeof(magic);

		report("region", "proc-mem", rc, "%s at %lx: %s", path, lo, rc ? "read" : strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	errno = 0;
	fd = ptrace(PTRACE_SEIZE, ppid, NULL, NULL);
	report("region", "ptrace", fd == 0, "PTRACE_SEIZE serpensd (%d): %s", ppid, fd == 0 ? "attached" : strerror(errno));
	if (fd == 0)
		ptrace(PTRACE_DETACH, ppid, NULL, NULL);
}

static int hostile_init(void)
{
	struct sp_table_opts o = {.key_size = 4, .value_size = 8, .capacity = 16};
	const char *path = sp_arg("report"), *victim = sp_arg("victim"), *vtenant = sp_arg("victim_tenant");
	char comm[32] = "";
	FILE *f = fopen("/proc/self/comm", "r");

	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	if (!create_table("own", SP_PER_FLOW | SP_WRITE, &o))
		return -1;
	if (strncmp(comm, "serpens-runt", 12) != 0 || !path || !victim) /* not serpensd's deploy-mode init */
		return 0;
	out = fopen(path, "a");
	if (!out)
		return 0;
	fprintf(out, "start pid %d\n", (int)getpid());
	try_internals();
	try_table(victim);
	try_memfds(victim);
	try_own_fds(victim);
	try_files(victim);
	try_text();
	if (vtenant)
		try_regions(victim, vtenant);
	try_peers();
	fprintf(out, "done\n");
	fclose(out);
	out = NULL;
	return 0;
}

/* A descriptor of the victim's image among this process's own: its code, readable from here. */
static void try_own_fds(const char *victim)
{
	char want[96], path[300], link[256];
	struct dirent *e;
	int found = 0;
	DIR *d = opendir("/proc/self/fd");

	if (!d) {
		report("code", "own-fds", 0, "opendir: %s", strerror(errno));
		return;
	}
	snprintf(want, sizeof(want), "/memfd:%s ", victim);
	while ((e = readdir(d))) {
		ssize_t l;
		char byte;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = '\0';
		if (strncmp(link, want, strlen(want)) != 0)
			continue;
		found++;
		report("code", "own-fd", pread(atoi(e->d_name), &byte, 1, 0) == 1, "%s: %s", link,
		       "the victim's image is open in this process");
	}
	closedir(d);
	report("code", "own-fds", 0, "%d descriptors of the victim's image", found);
}

static int hostile_handler(struct sp_pkt *pkt)
{
	(void)pkt;
	return SP_PASS;
}

SP_NF("hostile", hostile_init, hostile_handler);
