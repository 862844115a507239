/*
 * hostile_redis.c: a test NF that goes for another tenant's state in the remote store (Redis) of a
 * fission/snf run (tests/integration/test_redis_isolation.py, docs/security.md "State in a remote store").
 * Built for tests only. In a runtime (not in its tenant's deploy-mode init) its init:
 *
 *   learns where Redis is: serpensd's command line (/proc/<parent>/cmdline, "--redis HOST:PORT": readable by
 *   every process), and its own runtime's connection to it (a TCP socket among its descriptors);
 *   looks for the admin credential: SERPENS_REDIS_ADMIN in serpensd's environment (needs ptrace rights over
 *   serpensd), in its own, "serpens-admin" on serpensd's command line;
 *   on a connection of its own, with no credential (Redis's default user), then after "AUTH default" and
 *   after AUTH as the victim tenant's user with a guessed password, and on its runtime's own connection
 *   (authenticated as its own tenant), sends GET and SET of the victim's table metadata key
 *   ("<victim_tenant>:<victim>/<table>#meta"), SET of a new key of the victim's ("<victim_tenant>:stolen"),
 *   KEYS *, SCAN 0, and an ACL SETUSER that would widen its own user.
 *
 * Controls that must work, so that a refusal means the ACL and not a dead connection: PING on its own
 * connection ("control ping"), and a GET of a key of its own tenant on its runtime's connection ("control
 * own-key", any reply but an error).
 *
 * Each attempt appends "<attack> <what> blocked|SUCCEEDED <reply or why>" to the file named by `report`,
 * then "done". init returns 0: its instance forwards every packet.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serpens/nf.h"

#include "attack_report.h"

SP_NF_ARGS("report", "victim", "victim_tenant", "table", "own_key", "own_user");

/* ---- a minimal RESP client: one command, its whole reply ---- */

/* Is buf[*pos..len) one whole reply? Moves *pos past it. */
static int whole(const char *buf, size_t len, size_t *pos)
{
	const char *eol = memmem(buf + *pos, len - *pos, "\r\n", 2);
	long n, i;
	char type;

	if (!eol)
		return 0;
	type = buf[*pos];
	n = strtol(buf + *pos + 1, NULL, 10);
	*pos = (size_t)(eol - buf) + 2;
	if (type == '$' && n >= 0) {
		if (len - *pos < (size_t)n + 2)
			return 0;
		*pos += (size_t)n + 2;
	} else if (type == '*') {
		for (i = 0; i < n; i++)
			if (!whole(buf, len, pos))
				return 0;
	}
	return 1;
}

/* Send argv on fd and read the whole reply; its first line in line. 0, or -1 (line says why). */
static int command(int fd, int argc, const char *const *argv, char *line, size_t linelen)
{
	char buf[65536];
	size_t len = 0, pos;
	int i, n;

	n = snprintf(buf, sizeof(buf), "*%d\r\n", argc);
	for (i = 0; i < argc; i++)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
	if (write(fd, buf, (size_t)n) != n) {
		snprintf(line, linelen, "write: %s", strerror(errno));
		return -1;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		pos = 0;
		if (len && whole(buf, len, &pos))
			break;
		if (poll(&p, 1, 2000) <= 0 || (r = read(fd, buf + len, sizeof(buf) - 1 - len)) <= 0) {
			snprintf(line, linelen, "no reply");
			return -1;
		}
		len += (size_t)r;
	}
	buf[len] = '\0';
	snprintf(line, linelen, "%.*s", (int)strcspn(buf, "\r\n"), buf);
	for (i = 0; line[i]; i++) /* one report line, one word per field */
		if (line[i] == ' ')
			line[i] = '_';
	return 0;
}

/* A command as an attack: SUCCEEDED unless Redis answered with an error. */
static void attack(const char *who, const char *what, int fd, int argc, const char *const *argv)
{
	char line[200];
	int rc = command(fd, argc, argv, line, sizeof(line));

	report(who, what, rc == 0 && line[0] != '-', "%s", line);
}

static int connect_to(const char *host, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* ---- what it can learn ---- */

/* "--redis HOST:PORT" on its parent's (serpensd's) command line. */
static int redis_from_cmdline(char *host, size_t hostlen, int *port, int *admin_seen)
{
	char path[64], buf[8192], *p;
	ssize_t n;
	int fd, found = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)getppid());
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	for (p = buf; p < buf + n; p += strlen(p) + 1) {
		if (strstr(p, "serpens-admin"))
			*admin_seen = 1;
		if (!strcmp(p, "--redis") && p + strlen(p) + 1 < buf + n) {
			char *hp = p + strlen(p) + 1, *colon = strrchr(hp, ':');

			if (colon) {
				snprintf(host, hostlen, "%.*s", (int)(colon - hp), hp);
				*port = atoi(colon + 1);
				found = 1;
			}
		}
	}
	return found ? 0 : -1;
}

/* SERPENS_REDIS_ADMIN in /proc/<pid>/environ: 1 found, 0 not there, -errno unreadable. */
static int admin_in_environ(const char *pid)
{
	char path[64], buf[65536];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/environ", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -EIO;
	buf[n] = '\0';
	return memmem(buf, (size_t)n, "SERPENS_REDIS_ADMIN=", 20) != NULL;
}

/* Its runtime's connection to Redis: a TCP socket among its descriptors whose peer is port. */
static int own_connection(int port)
{
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int found = -1;

	if (!d)
		return -1;
	while ((e = readdir(d)) && found < 0) {
		struct sockaddr_in a;
		socklen_t alen = sizeof(a);
		int fd = atoi(e->d_name);

		if (e->d_name[0] != '.' && getpeername(fd, (struct sockaddr *)&a, &alen) == 0 &&
		    a.sin_family == AF_INET && ntohs(a.sin_port) == port)
			found = fd;
	}
	closedir(d);
	return found;
}

/* The attacks on one connection, reported as `who`. */
static void attacks(const char *who, int fd, const char *meta, const char *stolen, const char *own_user)
{
	const char *get[] = {"GET", meta}, *set[] = {"SET", meta, "0 0 0 0"}, *set2[] = {"SET", stolen, "x"};
	const char *keys[] = {"KEYS", "*"}, *scan[] = {"SCAN", "0"};
	const char *widen[] = {"ACL", "SETUSER", own_user, "~*", "+@all"};

	attack(who, "get-meta", fd, 2, get);
	attack(who, "set-meta", fd, 3, set);
	attack(who, "set-new", fd, 3, set2);
	attack(who, "keys", fd, 2, keys);
	attack(who, "scan", fd, 2, scan);
	attack(who, "acl-setuser", fd, 5, widen);
}

static void try_redis(const char *victim, const char *vtenant, const char *table)
{
	char host[64] = "127.0.0.1", meta[256], stolen[128], victim_user[96], line[200], ppid[16];
	const char *ping[] = {"PING"}, *auth_default[] = {"AUTH", "default", "guess"};
	const char *auth_victim[] = {"AUTH", victim_user, "guess"};
	int port = 0, admin_seen = 0, fd, own, rc;

	if (redis_from_cmdline(host, sizeof(host), &port, &admin_seen) != 0) {
		report("learn", "cmdline", 0, "no --redis on serpensd's command line");
		return;
	}
	report("learn", "cmdline", 1, "%s:%d", host, port);
	report("admin", "cmdline", admin_seen, "%s", admin_seen ? "serpens-admin on serpensd's command line" : "absent");
	snprintf(ppid, sizeof(ppid), "%d", (int)getppid());
	rc = admin_in_environ(ppid);
	report("admin", "environ-serpensd", rc > 0, "%s", rc > 0 ? "found" : rc == 0 ? "absent" : strerror(-rc));
	rc = admin_in_environ("self");
	report("admin", "environ-self", rc > 0, "%s", rc > 0 ? "found" : rc == 0 ? "absent" : strerror(-rc));

	snprintf(meta, sizeof(meta), "%s:%s/%s#meta", vtenant, victim, table);
	snprintf(stolen, sizeof(stolen), "%s:stolen", vtenant);
	snprintf(victim_user, sizeof(victim_user), "tenant-%s", vtenant);

	fd = connect_to(host, port);
	if (fd < 0) {
		report("control", "connect", 0, "%s:%d: %s", host, port, strerror(errno));
		return;
	}
	rc = command(fd, 1, ping, line, sizeof(line));
	report("control", "ping", rc == 0 && !strcmp(line, "+PONG"), "%s", line);
	attacks("nocred", fd, meta, stolen, "default");
	attack("auth", "default", fd, 3, auth_default);
	attacks("default", fd, meta, stolen, "default");
	attack("auth", "victim-guess", fd, 3, auth_victim);
	attacks("guess", fd, meta, stolen, victim_user);
	close(fd);

	own = own_connection(port);
	if (own < 0) {
		report("control", "own-connection", 0, "no connection to port %d among its descriptors", port);
		return;
	}
	{
		char mine[96];
		const char *get_mine[] = {"GET", mine};

		snprintf(mine, sizeof(mine), "%s", sp_arg("own_key") ? sp_arg("own_key") : "");
		rc = command(own, 2, get_mine, line, sizeof(line));
		report("control", "own-key", rc == 0 && line[0] != '-', "%s: %s", mine, line);
	}
	attacks("own", own, meta, stolen, sp_arg("own_user") ? sp_arg("own_user") : "");
}

static int hostile_redis_init(void)
{
	struct sp_table_opts o = {.key_size = 4, .value_size = 8, .capacity = 16};
	const char *path = sp_arg("report"), *victim = sp_arg("victim"), *vtenant = sp_arg("victim_tenant");
	const char *table = sp_arg("table");
	char comm[32] = "";
	FILE *f = fopen("/proc/self/comm", "r");

	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	/* a table of its own: in a fission run its runtime connects to Redis for it, as its tenant */
	if (!create_table("own", SP_PER_FLOW | SP_WRITE, &o))
		return -1;
	if (strncmp(comm, "serpens-runt", 12) != 0 || !path || !victim || !vtenant || !table)
		return 0; /* its tenant's deploy-mode init */
	out = fopen(path, "a");
	if (!out)
		return 0;
	fprintf(out, "start pid %d\n", (int)getpid());
	try_redis(victim, vtenant, table);
	fprintf(out, "done\n");
	fclose(out);
	out = NULL;
	return 0;
}

static int hostile_redis_handler(struct sp_pkt *pkt)
{
	(void)pkt;
	return SP_PASS;
}

SP_NF("hostile_redis", hostile_redis_init, hostile_redis_handler);
