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
 *   memfd      the victim's image memfd in serpensd (/proc/<serpensd>/fd/N -> "memfd:<victim>"): write(),
 *              ftruncate and a MAP_SHARED|PROT_WRITE mapping (sealed: startup/nfm.c); serpensd's other
 *              memfds are only opened (reported as memfd-other);
 *   file       the victim's dlopen copy (<nf-dir>/<victim>.so) and its own: open for writing, clearing
 *              the immutable flag, unlink (immutable; CAP_LINUX_IMMUTABLE dropped: privs.c);
 *   text       its own code: mprotect(PROT_WRITE) and a write through /proc/self/mem (an image's code is
 *              a read-only shared mapping: refused; a dlopen'd one is private: the write stays in this
 *              process).
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
#include <sys/mman.h>
#include <unistd.h>

#include "serpens/nf.h"

SP_NF_ARGS("report", "victim");

static FILE *out;

static void report(const char *attack, const char *what, int ok, const char *fmt, ...)
{
	va_list ap;

	if (!out)
		return;
	fprintf(out, "%s %s %s ", attack, what, ok ? "SUCCEEDED" : "blocked");
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	fflush(out);
}

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

static void try_memfds(const char *victim)
{
	char dir[64], path[384], link[256];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)getppid()); /* serpensd spawned this runtime */
	d = opendir(dir);
	if (!d) {
		report("memfd", dir, 0, "opendir: %s", strerror(errno));
		return;
	}
	while ((e = readdir(d))) {
		ssize_t l;
		int fd, rc;
		void *m;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		l = readlink(path, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
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
		fd = open(path, O_RDWR);
		if (fd < 0) {
			report("memfd", link, 0, "open O_RDWR: %s", strerror(errno));
			continue;
		}
		/* each call before its report: arguments are evaluated in no set order, errno must be its */
		errno = 0;
		rc = pwrite(fd, "\xcc", 1, 0) == 1;
		report("memfd", "write", rc, "%s: %s", link, strerror(errno));
		errno = 0;
		rc = ftruncate(fd, 4096) == 0;
		report("memfd", "ftruncate", rc, "%s: %s", link, strerror(errno));
		m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		report("memfd", "mmap-shared-write", m != MAP_FAILED, "%s: %s", link,
		       m == MAP_FAILED ? strerror(errno) : "mapped");
		if (m != MAP_FAILED) {
			((volatile unsigned char *)m)[0] = 0xcc;
			munmap(m, 4096);
		}
		close(fd);
	}
	closedir(d);
	report("memfd", "found", 0, "%d", n); /* the victim's images tried (0 with the dlopen loader) */
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

static int hostile_init(void)
{
	struct sp_table_opts o = {.key_size = 4, .value_size = 8, .capacity = 16};
	const char *path = sp_arg("report"), *victim = sp_arg("victim");
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
	try_files(victim);
	try_text();
	fprintf(out, "done\n");
	fclose(out);
	out = NULL;
	return 0;
}

static int hostile_handler(struct sp_pkt *pkt)
{
	(void)pkt;
	return SP_PASS;
}

SP_NF("hostile", hostile_init, hostile_handler);
