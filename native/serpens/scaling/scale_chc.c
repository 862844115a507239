/*
 * scale_chc.c: CHC's external store (Khalid and Akella, NSDI'19), the run's redis-server over loopback
 * TCP with hiredis. An instance keeps its flows' state in its private tables as a cache; when a move
 * takes flows from it, it writes each moved flow's entries to the store after the flow's last packet it
 * had to see (the drain mark), then a record that says it is done: that is the hand-over. The new
 * instance asks the store for the flows it holds packets of, one pipelined round trip per batch, taking
 * each flow's record with GETDEL, until it has them all or the done record says the rest had no state.
 *
 * Keys: "chc:<move>:<flow hash, hex>" = the flow's entries (struct sc_ent + key + value, ...),
 * "chc:<move>:done" = the number of flows written. Both expire after 10 minutes, so a failed run leaves
 * nothing behind for long.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "ctl.h"
#include "scale_runtime.h"
#include "scale_shared.h"
#include "scale_store.h"

#define CHC_PIPE 128          /* commands per round trip */
#define CHC_TTL_MS "600000"
#define CHC_REFS 65536
#define CHC_BLOB 65536

static redisContext *rc;
static struct sp_ctl *C;
static struct sc_ref refs[CHC_REFS];
static uint8_t blob[CHC_BLOB];

int chc_connect(struct sp_ctl *ctl, char *err, size_t errlen)
{
	struct timeval tv = {.tv_sec = ctl->redis_timeout_ms / 1000,
			     .tv_usec = (long)(ctl->redis_timeout_ms % 1000) * 1000};

	C = ctl;
	chc_disconnect();
	rc = redisConnectWithTimeout(ctl->redis_host, (int)ctl->redis_port, tv);
	if (!rc || rc->err) {
		snprintf(err, errlen, "chc: cannot reach the store at %s:%u: %s", ctl->redis_host, ctl->redis_port,
			 rc ? rc->errstr : "out of memory");
		chc_disconnect();
		return -1;
	}
	redisSetTimeout(rc, tv);
	return 0;
}

void chc_disconnect(void)
{
	if (rc)
		redisFree(rc);
	rc = NULL;
}

static int ensure(void)
{
	char err[200];

	return rc ? 0 : chc_connect(C, err, sizeof(err));
}

/* Read `n` replies of a pipeline; each must be OK/integer unless `keep` wants them. */
static int drain_replies(unsigned int n)
{
	unsigned int i;
	int bad = 0;

	for (i = 0; i < n; i++) {
		redisReply *r = NULL;

		if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r) {
			chc_disconnect();
			return -1;
		}
		bad |= r->type == REDIS_REPLY_ERROR;
		freeReplyObject(r);
	}
	return bad ? -1 : 0;
}

int chc_flush(uint64_t move, const uint64_t *mask)
{
	struct sc_move *mv = &C->scaling.move;
	unsigned int n, i, used, queued = 0, flows = 0;
	char key[64];
	uint32_t len;

	if (ensure() != 0)
		return -1;
	n = sc_store_collect(mask, 0, refs, CHC_REFS);
	if (n == CHC_REFS)
		return -1;
	for (i = 0; i < n; i += used) {
		sc_pack_flow(refs + i, n - i, blob + 4, CHC_BLOB - 4, &len, &used);
		if (used == 0)
			return -1; /* an entry larger than a record: never dropped silently */
		memcpy(blob, &used, 4); /* the record: entry count, then the entries */
		snprintf(key, sizeof(key), "chc:%llu:%08x", (unsigned long long)move, refs[i].flow);
		redisAppendCommand(rc, "SET %s %b PX " CHC_TTL_MS, key, blob, (size_t)len + 4);
		__atomic_fetch_add(&mv->bytes, len, __ATOMIC_RELAXED);
		flows++;
		if (++queued == CHC_PIPE) {
			if (drain_replies(queued) != 0)
				return -1;
			__atomic_fetch_add(&mv->store_rtts, 1, __ATOMIC_RELAXED);
			queued = 0;
		}
	}
	snprintf(key, sizeof(key), "chc:%llu:done", (unsigned long long)move);
	redisAppendCommand(rc, "SET %s %u PX " CHC_TTL_MS, key, flows);
	if (drain_replies(queued + 1) != 0)
		return -1;
	__atomic_fetch_add(&mv->store_rtts, 1, __ATOMIC_RELAXED);
	sc_exported(refs, n, flows);
	return (int)flows;
}

int chc_fetch(uint64_t move, const uint32_t *flows, unsigned int n, int *found, bool *done,
	      unsigned int *flushed)
{
	struct sc_move *mv = &C->scaling.move;
	unsigned int i, m = n > CHC_PIPE ? CHC_PIPE : n;
	char key[64];
	redisReply *r;
	int rcode = 0;

	if (ensure() != 0)
		return -1;
	/* the done record first: a flow missing after it was written had no state */
	snprintf(key, sizeof(key), "chc:%llu:done", (unsigned long long)move);
	redisAppendCommand(rc, "GET %s", key);
	for (i = 0; i < m; i++) {
		snprintf(key, sizeof(key), "chc:%llu:%08x", (unsigned long long)move, flows[i]);
		redisAppendCommand(rc, "GETDEL %s", key);
	}
	for (i = 0; i < n; i++)
		found[i] = 0;
	*done = false;
	for (i = 0; i <= m; i++) {
		if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r) {
			chc_disconnect();
			return -1;
		}
		if (i == 0) {
			*done = r->type == REDIS_REPLY_STRING;
			*flushed = *done ? (unsigned int)strtoul(r->str, NULL, 10) : 0;
		} else if (r->type == REDIS_REPLY_STRING && r->len >= 4) {
			uint32_t nent;

			memcpy(&nent, r->str, 4);
			if (sc_import_blob((const uint8_t *)r->str + 4, (uint32_t)r->len - 4, nent, flows[i - 1]) != 0)
				rcode = -1;
			else
				found[i - 1] = 1;
		} else if (r->type == REDIS_REPLY_ERROR) {
			rcode = -1;
		}
		freeReplyObject(r);
	}
	__atomic_fetch_add(&mv->store_rtts, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&mv->msgs, m + 1, __ATOMIC_RELAXED);
	if (m < n)
		*done = false; /* the rest are asked next time: not done for them yet */
	return rcode;
}
