/*
 * remote_acl.c: one Redis ACL user per tenant (docs/security.md, "State in a remote store"). Every
 * tenant's remote tables share one Redis, reached over loopback TCP by every runtime; what keeps a hostile
 * NF of one tenant from another's keys is Redis itself: serpensd, connected as the store's admin, makes
 * for each tenant a user whose key pattern is that tenant's prefix (rs_store_name) and whose commands are
 * only those the remote backend's runtimes send, with a random password that serpensd hands to that
 * tenant's processes only (handover.h). The default user can do nothing but PING (harness/redis_server.py).
 */
#include "remote_internal.h"

#include <stdio.h>
#include <sys/random.h>

/* What a tenant's runtimes and deploy-mode inits send (remote_conn.c, remote_keys.c, remote_table.c,
 * remote_batch.c, remote_cache.c, remote_predict.c): never SCAN or KEYS, which are not bounded by a key
 * pattern and would list every tenant's key names (SCAN is serpensd's, remote_manager.c). */
static const char *const tenant_cmds[] = {"+ping", "+get", "+set", "+del", "+hset", "+hmget", "+hincrby",
					   "+sadd", "+smembers"};
#define NCMDS (sizeof(tenant_cmds) / sizeof(tenant_cmds[0]))

int rs_tenant_user(const char *tenant, char *user, char *pass, char *err, size_t errlen)
{
	char keys[RS_STORE_LEN + 2], prefix[RS_STORE_LEN], pw[RS_PASS_LEN + 1];
	struct rs_cmd c;
	unsigned char rnd[16];
	unsigned int i;
	redisReply *r;

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		snprintf(err, errlen, "tenant %s: no random bytes for its Redis password", tenant);
		return -1;
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(pass + 2 * i, 3, "%02x", rnd[i]);
	snprintf(user, RS_USER_LEN, "tenant-%s", tenant);
	rs_tenant_prefix(tenant, prefix, sizeof(prefix));
	snprintf(keys, sizeof(keys), "~%s*", prefix); /* tenant names have no glob characters (state.h) */
	snprintf(pw, sizeof(pw), ">%s", pass);
	c.argc = 0;
	c.argv[c.argc++] = "ACL";
	c.argv[c.argc++] = "SETUSER";
	c.argv[c.argc++] = user;
	c.argv[c.argc++] = "reset"; /* a user left by an earlier serpensd on this Redis starts from nothing */
	c.argv[c.argc++] = "on";
	c.argv[c.argc++] = pw;
	c.argv[c.argc++] = keys;
	c.argv[c.argc++] = "-@all";
	for (i = 0; i < NCMDS; i++)
		c.argv[c.argc++] = tenant_cmds[i];
	for (i = 0; i < (unsigned int)c.argc; i++)
		c.len[i] = strlen(c.argv[i]);
	/* the pipeline's functions: they read the admin's queued AUTH reply first (remote_conn.c) */
	if (rs_pipe_add(&c) != 0 || !(r = rs_pipe_reply())) {
		snprintf(err, errlen, "tenant %s: Redis refused its ACL user (serpensd's log says why)", tenant);
		return -1;
	}
	rs_pipe_done();
	freeReplyObject(r);
	return 0;
}
