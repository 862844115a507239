/*
 * deployer.c: a tenant's deployer (serpens-runtime -D <tenant>) and the child that runs one deployment's
 * init in deploy mode, confined (deployer.h explains the design; docs/security.md why).
 */
#include "deployer.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_memzone.h>

#include "chainer.h"
#include "handover.h"
#include "nfm.h"
#include "remote_state.h"
#include "state.h"
#include "tenant_region.h"

#define ACCEPT_TIMEOUT_MS 15000

static char g_tenant[SM_TENANT_LEN];
static bool g_remote; /* a remote state backend (fission, snf): its tables' metadata go to the store */

static void remote_fatal(const char *msg)
{
	fprintf(stderr, "serpens-deployer: %s\n", msg);
	_exit(3);
}

/* The one connection serpensd makes: accepted only from the parent (SO_PEERCRED), as tenant_region.c's. */
static int accept_serpensd(int ls)
{
	struct pollfd p = {.fd = ls, .events = POLLIN};
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	int c;

	for (;;) {
		if (poll(&p, 1, ACCEPT_TIMEOUT_MS) <= 0)
			return -1;
		c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 && cred.pid == getppid())
			return c;
		close(c);
	}
}

/* The selectors the NF defines (SP_SELECTOR: "serpens_selector_<name>", a non-NULL pointer), from the
 * copy's dynamic symbol table, into out ("name\0name\0\0"): serpensd checks an SFC's selectors against
 * this list, without loading the NF itself. */
static void list_selectors(const char *path, void *dl, char *out, size_t cap)
{
	static const char pfx[] = "serpens_selector_";
	size_t off = 0, i, n;
	struct stat st;
	Elf64_Ehdr *eh;
	Elf64_Shdr *sh;
	uint8_t *m;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	memset(out, 0, cap);
	if (fd < 0 || fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(*eh)) {
		if (fd >= 0)
			close(fd);
		return;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return;
	eh = (Elf64_Ehdr *)m;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shoff + (uint64_t)eh->e_shnum * sizeof(*sh) > (uint64_t)st.st_size)
		goto out;
	sh = (Elf64_Shdr *)(m + eh->e_shoff);
	for (i = 0; i < eh->e_shnum; i++) {
		const Elf64_Shdr *str;
		const Elf64_Sym *sym;

		if (sh[i].sh_type != SHT_DYNSYM || sh[i].sh_link >= eh->e_shnum)
			continue;
		str = &sh[sh[i].sh_link];
		if (sh[i].sh_offset + sh[i].sh_size > (uint64_t)st.st_size ||
		    str->sh_offset + str->sh_size > (uint64_t)st.st_size)
			break;
		sym = (const Elf64_Sym *)(m + sh[i].sh_offset);
		for (n = 0; n < sh[i].sh_size / sizeof(*sym); n++) {
			const char *name;
			const void *const *p;
			size_t len;

			if (sym[n].st_shndx == SHN_UNDEF || sym[n].st_name >= str->sh_size)
				continue;
			name = (const char *)(m + str->sh_offset + sym[n].st_name);
			len = strnlen(name, str->sh_size - sym[n].st_name);
			if (len <= sizeof(pfx) - 1 || len == str->sh_size - sym[n].st_name ||
			    strncmp(name, pfx, sizeof(pfx) - 1) != 0)
				continue;
			p = dlsym(dl, name);
			if (!p || !*p || off + len - (sizeof(pfx) - 1) + 2 > cap)
				continue;
			memcpy(out + off, name + sizeof(pfx) - 1, len - (sizeof(pfx) - 1));
			off += len - (sizeof(pfx) - 1) + 1;
		}
		break;
	}
out:
	munmap(m, (size_t)st.st_size);
}

/* The deployment's argument keys against the NF's declaration (SP_NF_ARGS): 0, or -1 with the deploy_nf
 * error (a typo such as "blaklist" is refused, not ignored). An NF that declares nothing is not checked. */
static int check_arg_keys(const char *name, void *dl, const char *args, char *err, size_t errlen)
{
	const char *const *known = dlsym(dl, "serpens_nf_args"), *const *k;
	const char *a;
	char list[512];
	size_t off = 0;

	if (!known)
		return 0;
	for (a = args; *a; a += strlen(a) + 1, a += strlen(a) + 1) {
		for (k = known; *k && strcmp(*k, a); k++)
			;
		if (*k)
			continue;
		for (k = known; *k && off < sizeof(list); k++)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", k == known ? "" : ", ", *k);
		snprintf(err, errlen, "deploy_nf %s: unknown argument '%.64s'; the NF takes %.400s", name, a,
			 off ? list : "no arguments");
		return -1;
	}
	return 0;
}

/* Confine this process before any NF code runs in it: a mount namespace of its own in which every file
 * system is read-only (an init may read its files, e.g. IDS's patterns, but write none, /tmp included),
 * uid and gid nobody without supplementary groups (so /proc/<pid>/mem, fd, map_files and signals of root's
 * processes are refused, and device nodes, which a read-only mount does not protect, are root's), not
 * dumpable (no process of that uid can ptrace it), no new privileges, and killed with its parent (set after
 * the uid change, which clears it).
 *
 * One capability is kept: CAP_DAC_READ_SEARCH, reading any file and searching any directory. An init reads
 * its files by paths the operator gave (IDS's pattern file, in the harness's tree), and the NF's copy is
 * in serpensd's run directory; both sit below directories only root may search (a `mktemp -d` is 0700),
 * which uid nobody alone could not pass. It grants no write (the mounts are read-only, nobody owns
 * nothing), and no ptrace right: the kernel's ptrace check wants the tracer's capabilities to include the
 * target's, and serpensd's are all of them. Every other capability is gone from every set, the bounding
 * set included. 0, or -1 with err. */
static int confine(char *err, size_t errlen)
{
	struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY};
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct caps[2] = {{0}};
	int c;

	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount_setattr(AT_FDCWD, "/", AT_RECURSIVE, &ro, sizeof(ro)) != 0) {
		snprintf(err, errlen, "read-only mount namespace: %s", strerror(errno));
		return -1;
	}
	for (c = 0; c <= CAP_LAST_CAP; c++) /* the bounding set first: dropping needs CAP_SETPCAP, still held */
		if (c != CAP_DAC_READ_SEARCH && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) {
			snprintf(err, errlen, "PR_CAPBSET_DROP %d: %s", c, strerror(errno));
			return -1;
		}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(0, NULL) != 0 ||
	    setresgid(DP_UID, DP_UID, DP_UID) != 0 || setresuid(DP_UID, DP_UID, DP_UID) != 0 ||
	    getuid() != DP_UID || geteuid() != DP_UID) {
		snprintf(err, errlen, "cannot drop to uid %d: %s", DP_UID, strerror(errno));
		return -1;
	}
	caps[CAP_DAC_READ_SEARCH / 32].effective = caps[CAP_DAC_READ_SEARCH / 32].permitted =
		1u << (CAP_DAC_READ_SEARCH % 32);
	if (syscall(SYS_capset, &hdr, caps) != 0 || prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
		snprintf(err, errlen, "capset: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
		snprintf(err, errlen, "prctl: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The child: one deployment's init in deploy mode, confined; the outcome into fd. Never returns. */
static void run_child(const struct dp_request *q, int fd)
{
	static struct sp_nf_desc d; /* only for chainer_args: the argument list as init reads it */
	static struct dp_reply rep;
	struct sm_region *r = sm_get_region();
	struct st_loaded loaded;
	struct st_nf view;
	unsigned int before = sm_table_count(r);
	char err[DP_ERR_LEN - 32], path[SP_PATH_LEN + SP_NAME_LEN + 8];
	void *dl;

	prctl(PR_SET_NAME, "serpens-deploy", 0, 0, 0);
	memset(&rep, 0, sizeof(rep));
	snprintf(d.name, sizeof(d.name), "%s", q->name);
	memcpy(d.args, q->args, sizeof(d.args));
	d.args[sizeof(d.args) - 1] = d.args[sizeof(d.args) - 2] = '\0';
	d.args_len = q->args_len < sizeof(d.args) - 1 ? q->args_len : (uint32_t)sizeof(d.args) - 2;
	snprintf(path, sizeof(path), "%s/%s", q->dir, q->file);
	if (confine(err, sizeof(err)) != 0) {
		snprintf(rep.err, sizeof(rep.err), "deploy_nf %s: cannot confine its deploy-mode init: %.400s", q->name, err);
		goto out;
	}
	sm_set_tenant(g_tenant);
	sm_set_phase_deploy(true);
	sm_set_instance(-1);
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL); /* shared with st_load_dlopen's below */
	if (dl && check_arg_keys(q->name, dl, d.args, rep.err, sizeof(rep.err)) != 0)
		goto out;
	d.path[0] = '\0';
	view = (struct st_nf){.name = d.name, .path = path, .cached_fd = -1, .args = chainer_args(&d)};
	if (nfm_deploy_init(&view, &loaded, err, sizeof(err)) != 0) {
		snprintf(rep.err, sizeof(rep.err), "deploy_nf: %s", err);
		goto out;
	}
	rep.hooked = sm_tables_hooked(before, sm_table_count(r));
	list_selectors(path, loaded.dl, rep.selectors, sizeof(rep.selectors));
	rep.ok = 1;
out:
	rep.ntables = sm_table_count(r);
	if (write(fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		_exit(2);
	_exit(0);
}

/* The first child: a PID namespace of its own for the one that runs init, which is its PID 1. When that
 * ends, the kernel kills every process left in the namespace: whatever the init forked cannot outlive the
 * deployment (keeping the tenant's region and the EAL memory mapped, as nobody). This one only waits and
 * passes the status on (128 + signal for a signal). Never returns. */
static void enclose(const struct dp_request *q, int fd)
{
	pid_t deployer = getppid(), pid;
	int status;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != deployer ||
	    unshare(CLONE_NEWPID) != 0)
		_exit(125);
	pid = fork();
	if (pid == 0) {
		/* its parent is outside its namespace (getppid() is 0 here): killed with it, from the start */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
			_exit(125);
		run_child(q, fd);
	}
	close(fd);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		_exit(126);
	_exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reap what was left of a deployment: the deployer is the subreaper of its children's children, which a
 * killed first child leaves behind (its init's process, dying of PDEATHSIG, and what ran in its PID
 * namespace). Until none is left, for at most a second: a zombie nobody reaps would stay a process named
 * "serpens-deploy" for as long as the deployer lives. */
static void reap_orphans(void)
{
	uint64_t t_end = mono_ms() + 1000;
	int status;
	pid_t r;

	while ((r = waitpid(-1, &status, WNOHANG)) >= 0 && mono_ms() < t_end)
		if (r == 0)
			usleep(200);
}

/* One deployment: fork the child, wait for its outcome (DP_INIT_TIMEOUT_MS, then SIGKILL), fill rep. */
static void deploy_one(const struct dp_request *q, int ls, int conn, struct dp_reply *rep)
{
	uint64_t t_end = mono_ms() + DP_INIT_TIMEOUT_MS;
	size_t got = 0;
	int p[2], status = 0;
	pid_t pid;

	memset(rep, 0, sizeof(*rep));
	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(rep->err, sizeof(rep->err), "deploy_nf %s: deployer: pipe: %s", q->name, strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		close(ls);
		close(conn);
		close(p[0]);
		enclose(q, p[1]);
	}
	close(p[1]);
	if (pid < 0) {
		snprintf(rep->err, sizeof(rep->err), "deploy_nf %s: deployer: fork: %s", q->name, strerror(errno));
		close(p[0]);
		return;
	}
	/* the child's report is untrusted (tenant code ran there): taken only whole, and only from the pipe */
	while (got < sizeof(*rep)) {
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		uint64_t now = mono_ms();
		ssize_t n;

		if (now >= t_end || poll(&pf, 1, (int)(t_end - now)) == 0) {
			kill(pid, SIGKILL);
			got = 0;
			snprintf(rep->err, sizeof(rep->err), "deploy_nf %s: its init did not return within %d ms: "
				 "killed", q->name, DP_INIT_TIMEOUT_MS);
			break;
		}
		n = read(p[0], (char *)rep + got, sizeof(*rep) - got);
		if (n == 0 || (n < 0 && errno != EINTR))
			break;
		if (n > 0)
			got += (size_t)n;
	}
	close(p[0]);
	/* it ends by itself once the init's process has (the report is its last act): until the deadline,
	 * then killed; its PID namespace ends with that process, whatever else ran there */
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (mono_ms() >= t_end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		usleep(200);
	}
	reap_orphans();
	if (got == sizeof(*rep)) {
		rep->err[sizeof(rep->err) - 1] = '\0';
		rep->selectors[sizeof(rep->selectors) - 2] = rep->selectors[sizeof(rep->selectors) - 1] = '\0';
		return;
	}
	if (!rep->err[0] || got) {
		memset(rep, 0, sizeof(*rep));
		status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		snprintf(rep->err, sizeof(rep->err), "deploy_nf %s: its deploy-mode init died (%s %d)", q->name,
			 status > 128 ? "signal" : "exit status", status > 128 ? status - 128 : status);
	}
	rep->ok = 0;
}

int deployer_run(const char *tenant)
{
	const struct rte_memzone *mz = rte_memzone_lookup(SP_CTL_MZ);
	struct sp_ctl *ctl = mz ? mz->addr : NULL;
	struct rs_config rc;
	static uint32_t no_req, no_wake; /* serpensd hands the region unasked: it started us for it */
	static struct dp_request q;
	static struct dp_reply rep;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t alen;
	char err[512];
	int ls, conn, n;

	/* no new privileges; the capabilities stay (runtime.c does not drop them here): the child needs
	 * CAP_SYS_CHROOT, CAP_SETUID and CAP_SETGID to confine itself, and this process runs no NF code */
	if (!ctl || ctl->magic != SP_CTL_MAGIC || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 ||
	    !sm_tenant_valid(tenant)) {
		fprintf(stderr, "serpens-deployer: no control memzone, a bad tenant, or prctl failed\n");
		return 1;
	}
	rc = (struct rs_config){.backend = (enum rs_backend)ctl->state_backend, .host = ctl->redis_host,
				.port = (int)ctl->redis_port, .timeout_ms = ctl->redis_timeout_ms,
				.fatal = remote_fatal,
				/* the tenant's Redis user, handed over with its region (tr_attach below);
				 * the deploy children inherit it */
				.user = ho_store_user(), .pass = ho_store_pass()};
	snprintf(g_tenant, sizeof(g_tenant), "%s", tenant);
	g_remote = ctl->state_backend != RS_SERPENS;
	if (g_remote && rs_setup(&rc) != 0) {
		fprintf(stderr, "serpens-deployer: unknown state backend\n");
		return 1;
	}
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, DP_SOCK_FMT, (int)getpid()));
	ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, alen) != 0 || listen(ls, 1) != 0) {
		fprintf(stderr, "serpens-deployer: cannot listen on @%s: %s\n", a.sun_path + 1, strerror(errno));
		return 1;
	}
	conn = accept_serpensd(ls);
	if (conn < 0) {
		fprintf(stderr, "serpens-deployer: serpensd did not connect\n");
		return 1;
	}
	ho_set_requester(&no_req, &no_wake);
	if (tr_attach(ctl, tenant, err, sizeof(err)) != 0) {
		fprintf(stderr, "serpens-deployer: %s\n", err);
		return 1;
	}
	for (;;) {
		n = (int)recv(conn, &q, sizeof(q), 0);
		if (n == 0)
			return 0; /* serpensd closed: it is going */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (n != (int)sizeof(q))
			continue;
		q.name[sizeof(q.name) - 1] = q.dir[sizeof(q.dir) - 1] = q.file[sizeof(q.file) - 1] = '\0';
		deploy_one(&q, ls, conn, &rep);
		if (send(conn, &rep, sizeof(rep), MSG_NOSIGNAL) != (ssize_t)sizeof(rep))
			return 1;
	}
}
