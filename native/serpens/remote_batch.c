/*
 * remote_batch.c: the remote backend's batching — the Chainer's hooks around each NF's share of a batch
 * (serpens/state_ops.h, struct sp_batch_hooks). begin: empty the cache, fetch every predicted key in one
 * pipelined round trip; packet: note the packet a miss would learn from; end: write every change back in
 * one pipelined round trip, age the predictions, count the batch. docs/state-backends.md ("A batch").
 */
#include "remote_internal.h"

#include <errno.h>
#include <stdio.h>

struct rs_batch rs_batch;

static void rs_begin(const char *nf, const struct sp_pkt *pkts, unsigned int n)
{
	struct rs_entry **pend;
	int i, npend;

	rs_cache_reset();
	rs_batch.active = true;
	rs_batch.nf = nf;
	rs_batch.ns = 0;
	rs_batch.touched = false;
	rs_batch.pkt = NULL;
	npend = rs_predict_queue(nf, pkts, n, &pend);
	if (npend <= 0)
		return;
	for (i = 0; i < npend; i++) {
		redisReply *r = rs_pipe_reply();

		if (!r)
			return;
		rs_fill_entry(pend[i], r);
		freeReplyObject(r);
	}
	rs_pipe_done();
	rs_st->prefetched += (uint64_t)npend;
}

static void rs_packet(const struct sp_pkt *pkt) { rs_batch.pkt = pkt; }

/* Queue the writes that make Redis hold what the cache holds; returns how many commands were queued,
 * or -1. `commit`: afterwards the cache's baseline is its current content (a flush mid-batch). */
static int queue_writes(bool commit)
{
	struct rs_entry *e;
	char rk[RS_KEY_MAX], num[32];
	int queued = 0;

	for (e = rs_cache_entries(); e; e = e->next_all) {
		struct rs_table *t = e->t;
		struct rs_cmd c;
		size_t n;

		if ((t->flags & SP_READ) || (!e->present && !e->deleted))
			continue;
		n = rs_my_rkey(t, e->key, rk);
		c.argv[1] = rk, c.len[1] = n;
		if (t->kind == RS_COUNTERS && e->present) {
			uint32_t w;

			for (w = 0; w < t->nwords; w++) {
				uint64_t now, before = 0;

				memcpy(&now, e->val + 8 * w, 8);
				if (e->was_present)
					memcpy(&before, e->orig + 8 * w, 8);
				if (now == before && e->was_present)
					continue;
				c.argv[0] = "HINCRBY", c.len[0] = 7;
				c.argv[2] = rs_word_field[w], c.len[2] = rs_word_len[w];
				c.len[3] = (size_t)snprintf(num, sizeof(num), "%lld",
							    (long long)(int64_t)(now - before));
				c.argv[3] = num;
				c.argc = 4;
				if (rs_pipe_add(&c) != 0)
					return -1;
				queued++;
			}
		} else if (e->present) {
			if (e->known && e->was_present && memcmp(e->val, e->orig, t->vs) == 0)
				continue;
			c.argv[0] = "SET", c.len[0] = 3;
			c.argv[2] = (const char *)e->val, c.len[2] = t->vs;
			c.argc = 3;
			if (rs_pipe_add(&c) != 0)
				return -1;
			queued++;
			if (rs_writes_base(t)) { /* a batch outside an instance (tests): index the base too */
				if (rs_index_base(t, e->key) != 0)
					return -1;
				queued++;
			}
		} else { /* deleted */
			if (e->known && !e->was_present)
				continue;
			c.argv[0] = "DEL", c.len[0] = 3;
			c.argc = 2;
			if (rs_pipe_add(&c) != 0)
				return -1;
			queued++;
		}
		if (commit) {
			e->known = 1;
			e->was_present = e->present;
			e->deleted = 0;
			memcpy(e->orig, e->val, t->vs);
		}
	}
	return queued;
}

int rs_flush_writes(bool commit)
{
	int n = queue_writes(commit);

	if (n < 0)
		return -EIO;
	if (n == 0)
		return 0;
	rs_drain((unsigned int)n);
	rs_pipe_done();
	rs_st->writes += (uint64_t)n;
	return rs_ctx ? 0 : -EIO;
}

static void rs_end(void)
{
	rs_flush_writes(false);
	rs_predict_age(rs_batch.nf); /* which learned derivations earned their prefetch this batch */
	if (rs_batch.touched) {
		rs_st->batches++;
		rs_st->last_batch_ns = rs_batch.ns;
		if (rs_batch.ns > rs_st->max_batch_ns)
			rs_st->max_batch_ns = rs_batch.ns;
	}
	rs_batch.active = false;
	rs_batch.pkt = NULL;
	rs_batch.nf = NULL;
}

const struct sp_batch_hooks rs_batch_hooks = {.begin = rs_begin, .packet = rs_packet, .end = rs_end};
