/*
 * remote_conn.c: the remote backend's connection to Redis (hiredis, loopback TCP, with a timeout) —
 * connecting on first use, reporting store failures, pipelines (queue commands, read their replies, count
 * one round trip), and PING. Map of the backend's files: remote_internal.h.
 */
#include "remote_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

struct rs_config rs_cfg;
static struct rs_stats own_stats;
struct rs_stats *rs_st = &own_stats;
redisContext *rs_ctx;

static char last_msg[600];
static char conn_user[RS_USER_LEN]; /* who rs_ctx is authenticated as ("": the default user) */
static bool auth_pending;           /* AUTH's reply is the next one on rs_ctx */
static unsigned int pipe_n;
static uint64_t pipe_t0;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void rs_conn_configure(const struct rs_config *c)
{
	rs_cfg = *c;
	if (!rs_cfg.host)
		rs_cfg.host = "127.0.0.1";
	if (!rs_cfg.timeout_ms)
		rs_cfg.timeout_ms = 1000;
	rs_st = c->stats ? c->stats : &own_stats;
}

int rs_fail(const char *fmt, ...)
{
	char what[400], msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "remote state (%s, Redis at %s:%d): %s", rs_backend_name(rs_cfg.backend),
		 rs_cfg.host ? rs_cfg.host : "?", rs_cfg.port, what);
	if (rs_ctx && rs_ctx->err) { /* the connection is unusable after an I/O error: reconnect next time */
		redisFree(rs_ctx);
		rs_ctx = NULL;
		auth_pending = false;
	}
	snprintf(last_msg, sizeof(last_msg), "%s", msg);
	if (rs_batch.active && rs_cfg.fatal)
		rs_cfg.fatal(msg);
	sm_error("%s", msg);
	return -EIO;
}

/* AUTH as rs_cfg's user, before any other command (docs/security.md). Queued, not sent alone: it goes
 * out with the connection's first pipeline and its reply is read first (auth_reply), so that it costs no
 * round trip of its own (a start's first create_table would otherwise wait for two). 0, or -1 after
 * reporting why. */
static int authenticate(void)
{
	const char *user = rs_cfg.user ? rs_cfg.user : "", *pass = rs_cfg.pass ? rs_cfg.pass : "";

	snprintf(conn_user, sizeof(conn_user), "%s", user);
	auth_pending = false;
	if (!user[0] || !pass[0])
		return 0;
	if (redisAppendCommand(rs_ctx, "AUTH %s %s", user, pass) != REDIS_OK) {
		rs_fail("cannot queue AUTH: %s", rs_ctx->errstr);
		return -1;
	}
	auth_pending = true;
	return 0;
}

/* The queued AUTH's reply: 0, or -1 (refused: the connection is closed, every reply after it lost). */
static int auth_reply(void)
{
	void *r = NULL;
	char why[200];

	auth_pending = false;
	if (redisGetReply(rs_ctx, &r) == REDIS_OK && r && ((redisReply *)r)->type != REDIS_REPLY_ERROR) {
		freeReplyObject(r);
		return 0;
	}
	snprintf(why, sizeof(why), "%.*s", r ? (int)((redisReply *)r)->len : (int)strlen(rs_ctx->errstr),
		 r ? ((redisReply *)r)->str : rs_ctx->errstr);
	if (r)
		freeReplyObject(r);
	redisFree(rs_ctx);
	rs_ctx = NULL;
	rs_fail("cannot authenticate as %s: %s", conn_user, why);
	return -1;
}

redisContext *rs_conn(void)
{
	struct timeval tv = {.tv_sec = rs_cfg.timeout_ms / 1000, .tv_usec = (rs_cfg.timeout_ms % 1000) * 1000};

	/* a pool process that now runs another tenant's SFC got that tenant's credential (handover.h): the
	 * connection of the previous one is never reused */
	if (rs_ctx && rs_cfg.user && strcmp(conn_user, rs_cfg.user) != 0)
		rs_conn_close();
	if (rs_ctx)
		return rs_ctx;
	rs_ctx = redisConnectWithTimeout(rs_cfg.host, rs_cfg.port, tv);
	if (!rs_ctx || rs_ctx->err) {
		char why[200];

		snprintf(why, sizeof(why), "%s", rs_ctx ? rs_ctx->errstr : "out of memory");
		if (rs_ctx)
			redisFree(rs_ctx);
		rs_ctx = NULL;
		rs_fail("cannot connect: %s (is redis-server running?)", why);
		return NULL;
	}
	/* never inherited through exec: serpensd's runtimes (pool, zygotes, instances, the proxy) are its
	 * children and would otherwise each hold serpensd's socket open (zygotes pass it on to every fork) */
	fcntl(rs_ctx->fd, F_SETFD, FD_CLOEXEC);
	redisSetTimeout(rs_ctx, tv);
	if (authenticate() != 0)
		return NULL;
	return rs_ctx;
}

void rs_conn_close(void)
{
	if (rs_ctx) {
		redisFree(rs_ctx);
		rs_ctx = NULL;
	}
	auth_pending = false;
}

/* ---- pipelines ---- */

int rs_pipe_add(struct rs_cmd *c)
{
	if (!rs_conn())
		return -EIO;
	if (pipe_n == 0)
		pipe_t0 = now_ns();
	if (redisAppendCommandArgv(rs_ctx, c->argc, c->argv, c->len) != REDIS_OK)
		return rs_fail("cannot queue a command: %s", rs_ctx->errstr);
	pipe_n++;
	return 0;
}

redisReply *rs_pipe_reply(void)
{
	void *r = NULL;

	if (rs_ctx && auth_pending && auth_reply() != 0)
		return NULL;
	if (!rs_ctx || redisGetReply(rs_ctx, &r) != REDIS_OK || !r) {
		rs_fail("no reply: %s", rs_ctx ? rs_ctx->errstr : "not connected");
		return NULL;
	}
	if (((redisReply *)r)->type == REDIS_REPLY_ERROR) {
		rs_fail("command refused: %.*s", (int)((redisReply *)r)->len, ((redisReply *)r)->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* The round trip also counts toward the running batch's remote time (the `remote_state` stage). */
void rs_pipe_done(void)
{
	uint64_t ns = now_ns() - pipe_t0;

	rs_st->round_trips++;
	rs_st->ops += pipe_n;
	rs_st->ns += ns;
	if (rs_batch.active) {
		rs_batch.ns += ns;
		rs_batch.touched = true;
	}
	pipe_n = 0;
}

void rs_drain(unsigned int n)
{
	while (n--) {
		redisReply *r = rs_pipe_reply();

		if (!r)
			break;
		freeReplyObject(r);
	}
}

int rs_ping(char *err, size_t errlen)
{
	redisReply *r;
	struct rs_cmd c = {.argc = 1, .argv = {"PING"}, .len = {4}};

	if (!rs_conn() || rs_pipe_add(&c) != 0 || !(r = rs_pipe_reply())) {
		snprintf(err, errlen, "%s", last_msg[0] ? last_msg : "cannot reach Redis");
		return -1;
	}
	rs_pipe_done();
	freeReplyObject(r);
	return 0;
}
