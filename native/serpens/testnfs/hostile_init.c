/*
 * hostile_init.c: a test NF whose deploy-mode init attacks serpensd and the other tenants
 * (tests/integration/test_deploy_isolation.py, docs/security.md "Deploy-mode init"). Built for tests only.
 *
 * Deploy-mode init runs once, at deploy_nf, in a child of the tenant's deployer (deployer.h). From there
 * this init tries, in order:
 *
 *   whoami       its pid and uid (the test checks the process is not serpensd, and is gone afterwards);
 *   region       every tenant state region's fixed address (tenant_region.h: 0x600000000000 + i * 64 GiB):
 *                readable here? (only its own tenant's may be), and in each readable one the victim's
 *                table directory entry ("<victim_tenant>:<victim>/nat_map"), written over if found;
 *   proc-mem     serpensd's and its parent's memory (/proc/<pid>/mem, read-write);
 *   proc-fd      serpensd's descriptors (/proc/<serpensd>/fd) and its mappings reopened by address
 *                (/proc/<serpensd>/map_files): any entry's link read or the entry opened (listing the names
 *                alone shows numbers and address ranges: the deploy child may read directories);
 *   signal       kill(serpensd, 0): may it signal serpensd at all?
 *   file         a file outside its run directory: the test's `outside` path, /tmp, /, and the victim's NF
 *                copy (<victim>.so, beside its own);
 *   privilege    setuid(0), chroot("/") (needs CAP_SYS_CHROOT: a capability is what it would take to undo
 *                its confinement);
 *   persist      a child of its own that sleeps on after init ("hostile-persist": the test checks it is
 *                gone);
 *   done         the end of the list.
 *
 * The outcome cannot go to a file (the deploy child may write none): each attempt is a value in its own
 * table "report" (global|read, key: the attempt's index, value: "<attack> <what> blocked|SUCCEEDED
 * <detail>"), written in deploy mode and read by the test with dump_table — which also checks that serpensd
 * finds a table created outside it. init returns 0, so the deployment succeeds.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serpens/nf.h"

SP_NF_ARGS("victim", "victim_tenant", "serpensd_pid", "outside");

#define REGION_BASE 0x600000000000ull /* tenant_region.h: SP_REGION_BASE, SP_REGION_STRIDE, SP_MAX_TENANTS */
#define REGION_STRIDE (64ull << 30)
#define MAX_TENANTS 8
#define REPORT_LEN 200

static sp_table *rep;
static uint32_t nrep;

static void report(const char *attack, const char *what, int ok, const char *fmt, ...)
{
	char v[REPORT_LEN] = "";
	va_list ap;
	int n = snprintf(v, sizeof(v), "%s %s %s ", attack, what, ok ? "SUCCEEDED" : "blocked");

	va_start(ap, fmt);
	if (n > 0 && n < (int)sizeof(v))
		vsnprintf(v + n, sizeof(v) - (size_t)n, fmt, ap);
	va_end(ap);
	put_state(rep, &nrep, v);
	nrep++;
}

/* Is [p, p+len) readable? A pipe write faults (EFAULT) on an unmapped address instead of the process;
 * page by page, each drained, so that the pipe never fills. */
static int readable(const void *p, size_t len)
{
	char sink[4096];
	size_t off;
	int fd[2], ok = 1;

	if (pipe(fd) != 0)
		return 0;
	for (off = 0; off < len && ok; off += sizeof(sink)) {
		size_t n = len - off < sizeof(sink) ? len - off : sizeof(sink);

		ok = write(fd[1], (const char *)p + off, n) == (ssize_t)n && read(fd[0], sink, n) == (ssize_t)n;
	}
	close(fd[0]);
	close(fd[1]);
	return ok;
}

static void try_regions(const char *needle)
{
	unsigned int i, nread = 0;

	for (i = 0; i < MAX_TENANTS; i++) {
		const char *base = (const char *)(uintptr_t)(REGION_BASE + i * REGION_STRIDE);
		char what[32];
		char *hit;

		snprintf(what, sizeof(what), "slot%u", i);
		if (!readable(base, 4096)) {
			report("region", what, 0, "not mapped here: %s", strerror(errno));
			continue;
		}
		nread++;
		/* the table directory is at the region's start (state.c: struct sm_region), well within 1 MiB */
		hit = readable(base, 1 << 20) ? memmem(base, 1 << 20, needle, strlen(needle)) : NULL;
		if (hit)
			hit[0] = 'X'; /* rename the victim's table: the test would see it */
		report("region", what, hit != NULL, "mapped (%s): the victim's entry %s", nread == 1 ? "one" : "another",
		       hit ? "found and overwritten" : "absent");
	}
	report("region", "count", nread > 1, "%u state regions readable", nread);
}

/* /proc/<pid>/<dir>: its entries are descriptors (fd) or mappings (map_files). Listing the names shows
 * numbers or address ranges only; what would be an attack is reaching what they point to — a link read,
 * or an entry opened. Success: any of the entries read or opened. */
static void try_entries(const char *attack, const char *who, int pid, const char *dir)
{
	char path[64], entry[400], target[256];
	unsigned int listed = 0, reached = 0;
	const struct dirent *e;
	int last = 0, fd;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, dir);
	d = opendir(path);
	if (!d) {
		report(attack, who, 0, "%s: %s", path, strerror(errno));
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		listed++;
		snprintf(entry, sizeof(entry), "%s/%s", path, e->d_name);
		if (readlink(entry, target, sizeof(target)) >= 0)
			reached++;
		else
			last = errno;
		fd = open(entry, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			reached++;
			close(fd);
		} else {
			last = errno;
		}
	}
	closedir(d);
	report(attack, who, reached > 0, "%s: %u entries listed, %u reached%s%s", path, listed, reached,
	       last ? ": " : "", last ? strerror(last) : "");
}

static void try_proc(int pid, const char *who)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	report("proc-mem", who, fd >= 0, "%s: %s", path, fd >= 0 ? "opened read-write" : strerror(errno));
	if (fd >= 0)
		close(fd);
	try_entries("proc-fd", who, pid, "fd");
	try_entries("proc-map-files", who, pid, "map_files");
}

static void try_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int ok = fd >= 0 && write(fd, "pwned\n", 6) == 6;

	report("file", path, ok, "%s", fd >= 0 ? (ok ? "written" : "opened") : strerror(errno));
	if (fd >= 0)
		close(fd);
}

static int hostile_init_handler(struct sp_pkt *pkt);

/* A process of its own that outlives the deployment, its tenant's region and the EAL memory mapped: a
 * child in a session of its own, named "hostile-persist", asleep. The test checks it is gone. */
static void try_persist(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		setsid();
		prctl(PR_SET_NAME, "hostile-persist", 0, 0, 0);
		sleep(60);
		_exit(0);
	}
	report("persist", "fork", 0, "%s", pid > 0 ? "forked \"hostile-persist\" (it must not outlive the deployment)"
						 : strerror(errno));
}

static int hostile_init(void)
{
	Dl_info self;
	struct sp_table_opts o = {.key_size = 4, .value_size = REPORT_LEN, .capacity = 64};
	const char *victim = sp_arg("victim"), *vtenant = sp_arg("victim_tenant"), *spid = sp_arg("serpensd_pid");
	const char *outside = sp_arg("outside");
	char needle[300];
	int serpensd = spid ? atoi(spid) : 0, rc;

	rep = create_table("report", SP_GLOBAL | SP_READ, &o);
	if (!rep)
		return -1;
	if (!sp_deploying()) /* in a runtime: nothing to do (its state was written at deployment) */
		return 0;
	report("whoami", "pid", 0, "%d", (int)getpid());
	report("whoami", "uid", getuid() == 0, "%d", (int)getuid());
	if (victim && vtenant) {
		snprintf(needle, sizeof(needle), "%s:%s/nat_map", vtenant, victim);
		try_regions(needle);
	}
	if (serpensd > 0) {
		try_proc(serpensd, "serpensd");
		rc = kill(serpensd, 0);
		report("signal", "serpensd", rc == 0, "%s", rc == 0 ? "allowed" : strerror(errno));
	}
	try_proc((int)getppid(), "parent");
	if (outside)
		try_file(outside);
	try_file("/tmp/serpens-hostile-init");
	try_file("/pwned");
	if (victim && dladdr((void *)hostile_init_handler, &self) && self.dli_fname && strrchr(self.dli_fname, '/')) {
		/* the victim's copy, beside its own in the NF directory */
		snprintf(needle, sizeof(needle), "%.*s/%s.so", (int)(strrchr(self.dli_fname, '/') - self.dli_fname),
			 self.dli_fname, victim);
		try_file(needle);
	}
	rc = setuid(0);
	report("privilege", "setuid0", rc == 0, "%s", rc == 0 ? "root again" : strerror(errno));
	rc = chroot("/");
	report("privilege", "chroot", rc == 0, "%s", rc == 0 ? "allowed" : strerror(errno));
	try_persist();
	report("done", "-", 0, "%u attempts", nrep);
	return 0;
}

static int hostile_init_handler(struct sp_pkt *pkt)
{
	(void)pkt;
	return SP_PASS;
}

SP_NF("hostile_init", hostile_init, hostile_init_handler);
