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
	const char *argv[8 + NCMDS];
	size_t len[8 + NCMDS];
	unsigned char rnd[16];
	unsigned int i;
	int argc = 0;
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
	argv[argc++] = "ACL";
	argv[argc++] = "SETUSER";
	argv[argc++] = user;
	argv[argc++] = "reset"; /* a user left by an earlier serpensd on this Redis starts from nothing */
	argv[argc++] = "on";
	argv[argc++] = pw;
	argv[argc++] = keys;
	argv[argc++] = "-@all";
	for (i = 0; i < NCMDS; i++)
		argv[argc++] = tenant_cmds[i];
	for (i = 0; i < (unsigned int)argc; i++)
		len[i] = strlen(argv[i]);
	if (!rs_conn()) {
		snprintf(err, errlen, "tenant %s: cannot reach Redis to make its ACL user", tenant);
		return -1;
	}
	r = redisCommandArgv(rs_ctx, argc, argv, len);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "tenant %s: Redis refused its ACL user: %.*s", tenant, r ? (int)r->len : 0,
			 r ? r->str : rs_ctx->errstr);
		if (r)
			freeReplyObject(r);
		else
			rs_fail("ACL SETUSER: no reply");
		return -1;
	}
	freeReplyObject(r);
	return 0;
}
