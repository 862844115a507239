/*
 * deployer_client.c: serpensd's side of the tenants' deployers (deployer.h): start a tenant's deployer at
 * its first deploy_nf, hand it the tenant's state region, ask it for one deployment, wait for the outcome.
 * Separate from nf_deploy.c, which decides what a deployment is; this file only talks to processes.
 */
#include "deployer_client.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control_int.h"
#include "handover.h"
#include "tenant_region.h"

static struct {
	pid_t pid;
	int sock;
} dep[SP_MAX_TENANTS]; /* by tenant region index; pid 0: none */

static void forget(int t, bool kill_it)
{
	int status;

	if (dep[t].sock > 0)
		close(dep[t].sock);
	/* only a child not reaped yet (tick() reaps every child that exits) is still this pid: a reaped one's
	 * pid may be another process's by now */
	if (dep[t].pid > 0 && kill_it && waitpid(dep[t].pid, &status, WNOHANG) == 0) {
		kill(dep[t].pid, SIGKILL);
		waitpid(dep[t].pid, &status, 0);
	}
	dep[t].pid = 0;
	dep[t].sock = -1;
}

/* Start tenant t's deployer and connect to it. 0, or -1 with err. */
static int start(int t, const char *tenant, char *err, size_t errlen)
{
	char tn[SM_TENANT_LEN], *args[] = {"-D", tn, NULL};
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t alen, clen = sizeof(cred);
	uint64_t t0 = mono_ns();
	int s = -1, status;
	pid_t pid;

	snprintf(tn, sizeof(tn), "%s", tenant);
	/* the pool's shared lcore id: a deployer touches no per-lcore state (no mempool) */
	pid = control_spawn(D, SP_POOL_LCORE, args);
	if (pid <= 0) {
		snprintf(err, errlen, "cannot start tenant %s's deployer: %s", tenant, strerror(errno));
		return -1;
	}
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   (size_t)snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, DP_SOCK_FMT, (int)pid));
	for (;;) { /* it listens once its EAL is up (one secondary initialises at a time: eal_init_lock.h) */
		s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (s >= 0 && connect(s, (struct sockaddr *)&a, alen) == 0)
			break;
		if (s >= 0)
			close(s);
		s = -1;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			snprintf(err, errlen, "tenant %s's deployer exited while starting (status %d)", tenant, status);
			return -1;
		}
		if (mono_ns() - t0 > READY_TIMEOUT_NS) {
			snprintf(err, errlen, "tenant %s's deployer did not start", tenant);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		sleep_us(500);
	}
	dep[t].pid = pid;
	dep[t].sock = s;
	/* the name is the pid's (as the region's listener: tenant_region.c); a process that took it first
	 * would get the deployments' requests, never a region */
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 || cred.pid != pid) {
		snprintf(err, errlen, "tenant %s's deployer socket is another process's: refused", tenant);
		forget(t, true);
		return -1;
	}
	if (ho_send(pid, t, true, -1, err, errlen) != 0) {
		forget(t, true);
		return -1;
	}
	return 0;
}

/* Send q to tenant t's deployer and wait for its reply. 1: the deployer is gone (start another), 0: *rep
 * filled, -1: failed with err. */
static int ask(int t, const struct dp_request *q, struct dp_reply *rep, char *err, size_t errlen)
{
	struct pollfd p = {.fd = dep[t].sock, .events = POLLIN};
	ssize_t n;

	if (send(dep[t].sock, q, sizeof(*q), MSG_NOSIGNAL) != (ssize_t)sizeof(*q))
		return 1;
	n = poll(&p, 1, DP_REPLY_TIMEOUT_MS);
	if (n == 0) {
		snprintf(err, errlen, "deploy_nf %s: its deployer did not answer within %d ms: killed", q->name,
			 DP_REPLY_TIMEOUT_MS);
		forget(t, true);
		return -1;
	}
	n = recv(dep[t].sock, rep, sizeof(*rep), 0);
	if (n == 0 || (n < 0 && errno != EINTR))
		return 1;
	if (n != (ssize_t)sizeof(*rep)) {
		snprintf(err, errlen, "deploy_nf %s: a malformed reply from its deployer", q->name);
		forget(t, true);
		return -1;
	}
	rep->err[sizeof(rep->err) - 1] = '\0';
	rep->selectors[sizeof(rep->selectors) - 2] = rep->selectors[sizeof(rep->selectors) - 1] = '\0';
	return 0;
}

int dc_deploy(int t, const char *tenant, const struct dp_request *q, struct dp_reply *rep, char *err,
	      size_t errlen)
{
	int tries, rc = 1;

	if (t < 0 || t >= SP_MAX_TENANTS) {
		snprintf(err, errlen, "no state region %d", t);
		return -1;
	}
	/* a deployer that died since (killed, or its EAL gone) is replaced once */
	for (tries = 0; tries < 2 && rc == 1; tries++) {
		if (dep[t].pid <= 0 && start(t, tenant, err, errlen) != 0)
			return -1;
		rc = ask(t, q, rep, err, errlen);
		if (rc == 1)
			forget(t, true);
	}
	if (rc == 1)
		snprintf(err, errlen, "deploy_nf %s: tenant %s's deployer died", q->name, tenant);
	return rc == 0 ? 0 : -1;
}

pid_t dc_pid(int t) { return t >= 0 && t < SP_MAX_TENANTS ? dep[t].pid : 0; }

void dc_stop_all(void)
{
	int t;

	for (t = 0; t < SP_MAX_TENANTS; t++)
		if (dep[t].pid > 0)
			forget(t, true);
}
