/*
 * remote_predict.c: the remote backend's key-derivation predictor. The platform cannot know which keys
 * an NF will use before running it, so each table learns it from misses: which derivation of the
 * current packet gave the key (its flow, the reverse flow, source, destination, or both addresses), or
 * else that the key is a constant (NAT's pool, IDS's totals). Before an NF's share of a batch, the keys
 * those derivations give for every packet, and the constants, are queued for one pipelined read; a
 * derivation or constant whose prefetches go unused for RS_IDLE_MAX batches is forgotten.
 * docs/state-backends.md ("A batch").
 */
#include "remote_internal.h"

#include <stdlib.h>

static int derive(int d, const struct sp_flow *f, uint32_t ks, uint8_t *out)
{
	struct sp_flow r;

	switch (d) {
	case D_FLOW:
		if (ks != sizeof(*f))
			return -1;
		memcpy(out, f, sizeof(*f));
		return 0;
	case D_FLOW_REV:
		if (ks != sizeof(*f))
			return -1;
		sp_flow_reverse(f, &r);
		memcpy(out, &r, sizeof(r));
		return 0;
	case D_SRC_IP:
		if (ks != 4)
			return -1;
		memcpy(out, &f->src_ip, 4);
		return 0;
	case D_DST_IP:
		if (ks != 4)
			return -1;
		memcpy(out, &f->dst_ip, 4);
		return 0;
	case D_SRC_DST:
		if (ks != 8)
			return -1;
		memcpy(out, &f->src_ip, 4);
		memcpy(out + 4, &f->dst_ip, 4);
		return 0;
	}
	return -1;
}

/* Which derivation of the current packet gives this key? If none does, remember the key as a constant. */
void rs_learn(struct rs_table *t, const void *key)
{
	uint8_t k[256];
	struct sp_flow f;
	unsigned int i, worst = 0;
	int d;

	if (rs_batch.pkt && sp_flow_of(rs_batch.pkt, &f) == 0)
		for (d = 0; d < RS_NDERIV; d++)
			if (derive(d, &f, t->ks, k) == 0 && memcmp(k, key, t->ks) == 0) {
				t->derivs |= 1u << d;
				t->idle[d] = 0;
				return;
			}
	if (t->ks > RS_CONST_KEY_MAX)
		return;
	for (i = 0; i < t->nconst; i++)
		if (memcmp(t->konst[i], key, t->ks) == 0) {
			t->kidle[i] = 0;
			return;
		}
	if (t->nconst < RS_MAX_CONST) {
		i = t->nconst++;
	} else {
		for (i = 1; i < RS_MAX_CONST; i++)
			if (t->kidle[i] > t->kidle[worst])
				worst = i;
		i = worst;
	}
	memcpy(t->konst[i], key, t->ks);
	t->kidle[i] = 0;
}

/* Queue the read of one predicted key (once per batch). */
static int predict(struct rs_table *t, const uint8_t *key, uint8_t deriv, struct rs_entry ***pend,
		   unsigned int *npend, unsigned int *cap)
{
	uint64_t h = rs_entry_hash(t, key);
	char rk[RS_KEY_MAX];
	struct rs_entry *e;
	size_t n;

	if (rs_cache_find(t, key, h))
		return 0;
	e = rs_cache_add(t, key, h);
	if (!e)
		return -1;
	e->deriv = deriv;
	if (*npend == *cap) {
		struct rs_entry **p = realloc(*pend, 2 * *cap * sizeof(*p));

		if (!p)
			return rs_fail("out of memory");
		*pend = p;
		*cap *= 2;
	}
	(*pend)[(*npend)++] = e;
	n = rs_my_rkey(t, key, rk);
	return rs_add_read(t, rk, n);
}

static bool owned(const struct rs_table *t, const char *nf)
{
	return nf && strcmp(t->owner, nf) == 0;
}

int rs_predict_queue(const char *nf, const struct sp_pkt *pkts, unsigned int n, struct rs_entry ***pendp)
{
	static struct rs_entry **pend;
	static unsigned int cap;
	struct sp_flow *flows = NULL;
	uint8_t *ok = NULL, key[256];
	unsigned int i, j, npend = 0;
	int d, rc = -1;

	if (!pend) {
		cap = 256;
		pend = malloc(cap * sizeof(*pend));
		if (!pend) {
			rs_fail("out of memory");
			return -1;
		}
	}
	for (j = 0; j < rs_ntables; j++) {
		struct rs_table *t = &rs_tables[j];

		if (!t->hdr.ops || !owned(t, nf))
			continue;
		memset(t->dused, 0, sizeof(t->dused));
		memset(t->kused, 0, sizeof(t->kused));
		if (t->derivs && !flows) {
			flows = malloc(n * sizeof(*flows) + n);
			if (!flows) {
				rs_fail("out of memory");
				return -1;
			}
			ok = (uint8_t *)(flows + n);
			for (i = 0; i < n; i++)
				ok[i] = sp_flow_of(&pkts[i], &flows[i]) == 0;
		}
		for (d = 0; d < RS_NDERIV; d++) {
			if (!(t->derivs & (1u << d)))
				continue;
			for (i = 0; i < n; i++)
				if (ok[i] && derive(d, &flows[i], t->ks, key) == 0 &&
				    predict(t, key, (uint8_t)d, &pend, &npend, &cap) != 0)
					goto out;
		}
		for (i = 0; i < t->nconst; i++)
			if (predict(t, t->konst[i], (uint8_t)(D_CONST | i), &pend, &npend, &cap) != 0)
				goto out;
	}
	*pendp = pend;
	rc = (int)npend;
out:
	free(flows);
	return rc;
}

void rs_predict_age(const char *nf)
{
	unsigned int j, i;
	int d;

	for (j = 0; j < rs_ntables; j++) {
		struct rs_table *t = &rs_tables[j];

		if (!t->hdr.ops || !owned(t, nf))
			continue;
		for (d = 0; d < RS_NDERIV; d++)
			if (t->derivs & (1u << d)) {
				t->idle[d] = t->dused[d] ? 0 : t->idle[d] + 1;
				if (t->idle[d] > RS_IDLE_MAX)
					t->derivs &= ~(1u << d);
			}
		for (i = 0; i < t->nconst;) {
			t->kidle[i] = t->kused[i] ? 0 : t->kidle[i] + 1;
			if (t->kidle[i] > RS_IDLE_MAX) { /* forget it: a later miss learns it again */
				t->nconst--;
				memmove(t->konst[i], t->konst[t->nconst], RS_CONST_KEY_MAX);
				t->kidle[i] = t->kidle[t->nconst];
				t->kused[i] = t->kused[t->nconst];
				continue;
			}
			i++;
		}
	}
}
