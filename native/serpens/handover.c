/*
 * handover.c: serpensd passes a runtime its tenant's state region and its SFC's NF images by descriptor
 * (handover.h has the model, docs/security.md the attacks it stops).
 */
#include "handover.h"
#include "remote_state.h"
#include "tenant_region.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_TIMEOUT_MS 5000 /* serpensd answers a request within its start's wait; a dead one never */
#define MAX_FDS (1 + SP_MAX_POS)

struct ho_msg {
	int32_t region;           /* region index, -1: none in this message */
	uint32_t n;               /* images that follow the region's descriptor */
	uint16_t nf[SP_MAX_POS];  /* ... each an NF slot */
	char user[RS_USER_LEN];   /* with a region: its tenant's Redis user and password, or "" */
	char pass[RS_PASS_LEN];
};

/* serpensd: private, filled from its own copies at deployment (handover.h) */
static int g_img_fd[SP_MAX_NFS];       /* serpensd's memfd of each NF's image; 0: none (never fd 0) */
static int8_t g_img_tenant[SP_MAX_NFS];
static uint16_t g_sfc_nf[SP_MAX_SFCS][SP_MAX_POS];
static uint8_t g_sfc_n[SP_MAX_SFCS];
static int8_t g_sfc_tenant[SP_MAX_SFCS];
static char g_cred_user[SP_MAX_TENANTS][RS_USER_LEN], g_cred_pass[SP_MAX_TENANTS][RS_PASS_LEN];
/* a runtime */
static int g_listen = -1;
static uint32_t *g_req, *g_wake;
static void (*g_sink)(unsigned int nf, int fd);
static int g_region_idx = -1, g_region_fd = -1; /* a region descriptor that arrived, not yet taken */
static char g_in_user[RS_USER_LEN], g_in_pass[RS_PASS_LEN]; /* ... and the credential that came with it */
static char g_user[RS_USER_LEN], g_pass[RS_PASS_LEN];       /* those of the region taken last */

/* The abstract socket name runtime `pid` listens on (no file to leave behind; the pid is checked). */
static socklen_t sock_addr(pid_t pid, struct sockaddr_un *a)
{
	int n;

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "serpens-region-%d", (int)pid);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void close_all(const int *fds, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* ---------------------------------------------------------------------------------------------- */
/* serpensd                                                                                       */

void ho_image_add(int nf, int fd, int tenant)
{
	if (nf < 0 || nf >= SP_MAX_NFS || fd <= 0)
		return;
	g_img_fd[nf] = fd;
	g_img_tenant[nf] = (int8_t)tenant;
}

void ho_sfc_add(int sfc, const struct sp_sfc_desc *s, int tenant)
{
	unsigned int i, j, n = 0;

	if (sfc < 0 || sfc >= SP_MAX_SFCS)
		return;
	for (i = 0; i < s->npos && i < SP_MAX_POS; i++) { /* each NF once */
		for (j = 0; j < n && g_sfc_nf[sfc][j] != s->pos[i].nf; j++)
			;
		if (j == n)
			g_sfc_nf[sfc][n++] = s->pos[i].nf;
	}
	g_sfc_n[sfc] = (uint8_t)n;
	g_sfc_tenant[sfc] = (int8_t)tenant;
}

void ho_cred_set(int tenant, const char *user, const char *pass)
{
	if (tenant < 0 || tenant >= SP_MAX_TENANTS)
		return;
	snprintf(g_cred_user[tenant], RS_USER_LEN, "%s", user);
	snprintf(g_cred_pass[tenant], RS_PASS_LEN, "%s", pass);
}

bool ho_cred_known(int tenant)
{
	return tenant >= 0 && tenant < SP_MAX_TENANTS && g_cred_user[tenant][0];
}

int ho_send(pid_t pid, int tenant, bool region, int sfc, char *err, size_t errlen)
{
	struct ho_msg m = {.region = -1};
	struct sockaddr_un a;
	struct ucred cred = {0};
	socklen_t alen = sock_addr(pid, &a), clen = sizeof(cred);
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf};
	struct cmsghdr *cm;
	int fds[MAX_FDS], nfd = 0, s = -1, rc = -1;
	unsigned int i;

	if (pid <= 0 || !tr_region(tenant)) {
		snprintf(err, errlen, "no state region %d (or no process) to hand over", tenant);
		return -1;
	}
	for (i = 0; !region && sfc >= 0 && sfc < SP_MAX_SFCS && g_sfc_tenant[sfc] == tenant && i < g_sfc_n[sfc]; i++)
		if (g_img_fd[g_sfc_nf[sfc][i]] > 0 && g_img_tenant[g_sfc_nf[sfc][i]] == tenant)
			break;
	if (!region && (sfc < 0 || sfc >= SP_MAX_SFCS || g_sfc_tenant[sfc] != tenant || i == g_sfc_n[sfc]))
		return 0; /* nothing of this tenant to hand over for that SFC (dlopen, snapshot): no connection */
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, alen) != 0) {
		snprintf(err, errlen, "pid %d does not listen for its descriptors: %s", (int)pid, strerror(errno));
		goto out;
	}
	/* the listener's credentials are those it had at listen(): another process that took the name first
	 * (to be handed what is meant for pid) shows here */
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || cred.pid != pid) {
		snprintf(err, errlen, "the listener for pid %d's descriptors is pid %d: refused", (int)pid, (int)cred.pid);
		goto out;
	}
	/* every descriptor exists only from here to the send: serpensd keeps none of them */
	if (region) {
		fds[nfd] = tr_region_fd(tenant, err, errlen);
		if (fds[nfd] < 0)
			goto out;
		nfd++;
		m.region = tenant;
		if (tenant < SP_MAX_TENANTS) {
			memcpy(m.user, g_cred_user[tenant], sizeof(m.user));
			memcpy(m.pass, g_cred_pass[tenant], sizeof(m.pass));
		}
	}
	for (i = 0; sfc >= 0 && sfc < SP_MAX_SFCS && g_sfc_tenant[sfc] == tenant && i < g_sfc_n[sfc]; i++) {
		unsigned int k = g_sfc_nf[sfc][i];
		char path[64];

		if (g_img_fd[k] <= 0 || g_img_tenant[k] != tenant)
			continue; /* no image (dlopen, snapshot), or not this tenant's: never sent */
		/* a read-only descriptor of its own (open file description: offset, flags), not serpensd's */
		snprintf(path, sizeof(path), "/proc/self/fd/%d", g_img_fd[k]);
		fds[nfd] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[nfd] < 0) {
			snprintf(err, errlen, "cannot reopen NF %u's image: %s", k, strerror(errno));
			goto out;
		}
		nfd++;
		m.nf[m.n++] = (uint16_t)k;
	}
	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfd);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfd);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfd);
	if (sendmsg(s, &msg, MSG_NOSIGNAL) != (ssize_t)sizeof(m)) {
		snprintf(err, errlen, "cannot hand pid %d its descriptors: %s", (int)pid, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close_all(fds, (unsigned int)nfd);
	if (s >= 0)
		close(s);
	return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* a runtime                                                                                      */

int ho_listen(char *err, size_t errlen)
{
	struct sockaddr_un a;
	socklen_t alen = sock_addr(getpid(), &a);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&a, alen) != 0 || listen(s, 8) != 0) {
		snprintf(err, errlen, "cannot listen for serpensd's descriptors (@%s): %s", a.sun_path + 1,
			 strerror(errno));
		if (s >= 0)
			close(s);
		return -1;
	}
	g_listen = s;
	return 0;
}

void ho_set_requester(uint32_t *req, uint32_t *wake)
{
	g_req = req;
	g_wake = wake;
}

void ho_set_image_sink(void (*sink)(unsigned int nf, int fd)) { g_sink = sink; }

/* One message from connection c, if it is serpensd's (anyone can connect to an abstract socket: a hostile
 * runtime could hand this process descriptors of its own making): its region descriptor kept for
 * ho_take_region, its images to the sink. */
static bool take_one(int c)
{
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	struct ho_msg m = {.region = -1};
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct ucred cred = {0};
	socklen_t clen = sizeof(cred);
	struct cmsghdr *cm;
	int fds[MAX_FDS];
	unsigned int nfd = 0, i, first = 0;
	ssize_t n;

	/* serpensd is this runtime's parent (it forked every runtime; they die with it) */
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || cred.pid != getppid())
		return false;
	n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
	for (cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS && nfd == 0 &&
		    cm->cmsg_len >= CMSG_LEN(0)) {
			nfd = (unsigned int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			if (nfd > MAX_FDS)
				nfd = MAX_FDS;
			memcpy(fds, CMSG_DATA(cm), sizeof(int) * nfd);
		}
	if (n != (ssize_t)sizeof(m) || (msg.msg_flags & MSG_CTRUNC) || m.n > SP_MAX_POS ||
	    nfd != (m.region >= 0) + m.n) {
		close_all(fds, nfd);
		return false;
	}
	if (m.region >= 0) {
		if (g_region_fd >= 0)
			close(g_region_fd);
		g_region_idx = m.region;
		g_region_fd = fds[0];
		m.user[sizeof(m.user) - 1] = m.pass[sizeof(m.pass) - 1] = '\0';
		memcpy(g_in_user, m.user, sizeof(g_in_user));
		memcpy(g_in_pass, m.pass, sizeof(g_in_pass));
		first = 1;
	}
	for (i = 0; i < m.n; i++) {
		if (g_sink)
			g_sink(m.nf[i], fds[first + i]);
		else
			close(fds[first + i]);
	}
	return true;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Accept and take what is queued; wait_ms > 0: wait up to that long in all for one message of serpensd's
 * (connections of other processes, taken and dropped meanwhile, do not extend it). The number of
 * serpensd's messages taken. */
static int take(int wait_ms)
{
	uint64_t until = mono_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
	int got = 0;

	for (;;) {
		struct pollfd pfd = {.fd = g_listen, .events = POLLIN};
		int c = g_listen >= 0 ? accept4(g_listen, NULL, NULL, SOCK_CLOEXEC) : -1;
		uint64_t now;

		if (c >= 0) {
			got += take_one(c);
			close(c);
			continue;
		}
		if (g_listen < 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) || got || wait_ms <= 0)
			return got;
		now = mono_ms();
		if (now >= until || poll(&pfd, 1, (int)(until - now)) <= 0)
			return got;
	}
}

void ho_drain(void) { take(0); }

int ho_request(char *err, size_t errlen)
{
	if (g_listen < 0 || !g_req) {
		snprintf(err, errlen, "this process cannot ask serpensd for its descriptors");
		return -1;
	}
	__atomic_store_n(g_req, 1, __ATOMIC_SEQ_CST);
	sp_futex_wake(g_wake, 1 << 30); /* serpensd sleeps on it while it waits for this start */
	if (take(REQUEST_TIMEOUT_MS) == 0) {
		snprintf(err, errlen, "serpensd did not hand over this start's descriptors within %d ms",
			 REQUEST_TIMEOUT_MS);
		return -1;
	}
	return 0;
}

int ho_take_region(int idx)
{
	int fd = g_region_fd;

	if (fd < 0)
		return -1;
	g_region_fd = -1;
	if (g_region_idx == idx) {
		memcpy(g_user, g_in_user, sizeof(g_user));
		memcpy(g_pass, g_in_pass, sizeof(g_pass));
		return fd;
	}
	close(fd);
	return -1;
}

const char *ho_store_user(void) { return g_user; }
const char *ho_store_pass(void) { return g_pass; }
