/*
 * chainer.c: the label-array Chainer (see chainer.h) and loading an SFC's NFs through the startup
 * method's loader (native/serpens/startup: dlopen, the shared-memory image, or the snapshot file).
 *
 * Every sp_* call of an NF resolves at load time to the process's implementation (exported by the
 * executable), and two deployments of one NF never share globals because serpensd gives every
 * deployment its own copy of the object file.
 */
#include "chainer.h"
#include "chain_tag.h"
#include "serpens/state_ops.h"

#include <stdio.h>
#include <string.h>

#include <rte_mbuf.h>

#define MAX_ARGS 64

const char *const *chainer_args(const struct sp_nf_desc *d)
{
	static const char *argv[2 * MAX_ARGS + 2];
	const char *p = d->args, *end = d->args + d->args_len;
	unsigned int n = 0;

	while (p < end && n < 2 * MAX_ARGS) { /* key, value pairs; a value may be empty */
		argv[n++] = p;
		p += strlen(p) + 1;
	}
	argv[n] = NULL;
	argv[n + 1] = NULL;
	return argv;
}

void chainer_nf_view(const struct sp_nf_desc *d, struct st_nf *v)
{
	*v = (struct st_nf){.name = d->name, .path = d->path, .snapshot = d->snapshot[0] ? d->snapshot : NULL,
			    .image = d->has_image ? &d->image : NULL, .image_fd = d->image_fd,
			    .owner_pid = d->owner_pid, .cached_fd = -1, .args = chainer_args(d)};
}

int chainer_load(struct chainer *c, const struct sp_ctl *ctl, uint32_t sfc, int position, char *err,
		 size_t errlen)
{
	const struct sp_sfc_desc *s = &ctl->sfcs[sfc];
	const struct sp_starter *st = st_by_method((enum st_method)ctl->startup);
	unsigned int i;

	memset(c, 0, sizeof(*c));
	c->sfc = sfc;
	c->npos = s->npos;
	c->position = position;
	if (position >= (int)c->npos) {
		snprintf(err, errlen, "SFC %s has no position %d", s->name, position);
		return -1;
	}
	memcpy(c->pos, s->pos, sizeof(c->pos));
	/* the NFs attach to their tables as the SFC's tenant (deploy_sfc admits only that tenant's NFs) */
	if (sm_set_tenant(s->tenant[0] ? s->tenant : SM_DEFAULT_TENANT) != 0) {
		snprintf(err, errlen, "SFC %s has an invalid tenant", s->name);
		return -1;
	}
	for (i = 0; i < c->npos; i++) {
		unsigned int k = c->pos[i].nf;

		if (position >= 0 && (int)i != position)
			continue; /* per-NF: only this instance's NF is loaded */
		if (!c->ld[k].nf) {
			struct st_nf v;

			chainer_nf_view(&ctl->nfs[k], &v);
			if (!st || st->load(&v, &c->ld[k], err, errlen) != 0)
				return -1;
		}
		c->nf[i] = c->ld[k].nf;
		c->nf_name[i] = ctl->nfs[k].name;
	}
	for (i = 0; i < c->npos; i++) {
		char sym[SP_NAME_LEN + 32];
		const sp_selector_fn *fp;

		if (!c->pos[i].selector[0] || (position >= 0 && (int)i != position))
			continue;
		snprintf(sym, sizeof(sym), "serpens_selector_%s", c->pos[i].selector);
		fp = st_sym(&c->ld[c->pos[i].nf], sym);
		if (!fp || !*fp) {
			snprintf(err, errlen, "SFC %s: NF %s has no selector '%s'", s->name,
				 ctl->nfs[c->pos[i].nf].name, c->pos[i].selector);
			return -1;
		}
		c->sel[i] = *fp;
	}
	return 0;
}

const char *chainer_loader(const struct chainer *c)
{
	/* per-NF: the one NF loaded; consolidated: every NF went through the same starter */
	unsigned int p = c->position >= 0 ? (unsigned int)c->position : 0;

	return c->npos ? c->ld[c->pos[p].nf].loader : "";
}

void chainer_unload(struct chainer *c)
{
	unsigned int k;

	for (k = 0; k < SP_MAX_NFS; k++)
		st_unload(&c->ld[k]);
	memset(c, 0, sizeof(*c));
	sm_forget_local();
}

unsigned int chainer_run(struct chainer *c, struct rte_mbuf **m, unsigned int n, struct rte_mbuf **out,
			 uint64_t *drops)
{
	uint8_t label[n];
	struct sp_pkt pkt;
	const struct sp_batch_hooks *hooks = sp_batch_hooks; /* NULL unless state is cached (remote) */
	unsigned int i, p, nout = 0;

	memset(label, 0, n);
	pkt.sfc = c->sfc;
	for (p = 0; p < c->npos; p++) {
		const struct sp_pos *pos = &c->pos[p];
		int (*handler)(struct sp_pkt *) = c->nf[p]->handler;
		sp_selector_fn sel = c->sel[p];

		if (hooks) { /* this NF's share of the batch, for the remote backend's prefetch */
			struct sp_pkt mine[n];
			unsigned int k = 0;

			for (i = 0; i < n; i++)
				if (label[i] == p)
					mine[k++] = (struct sp_pkt){.data = rte_pktmbuf_mtod(m[i], uint8_t *),
								    .len = rte_pktmbuf_data_len(m[i]),
								    .sfc = c->sfc, .buf = m[i]};
			if (k == 0)
				continue;
			hooks->begin(c->nf_name[p], mine, k);
		}
		for (i = 0; i < n; i++) {
			int v, b;

			if (label[i] != p)
				continue;
			pkt.buf = m[i];
			pkt.data = rte_pktmbuf_mtod(m[i], uint8_t *);
			pkt.len = rte_pktmbuf_data_len(m[i]);
			if (hooks)
				hooks->packet(&pkt);
			v = handler(&pkt);
			if (v < 0) {
				label[i] = SP_LABEL_DROP;
			} else if (sel) {
				b = sel(v);
				label[i] = (b < 0 || b >= pos->nbranch) ? SP_LABEL_DROP : pos->next[b];
			} else {
				label[i] = pos->next_pass;
			}
		}
		if (hooks)
			hooks->end();
	}
	for (i = 0; i < n; i++) {
		if (label[i] == SP_LABEL_DROP) {
			rte_pktmbuf_free(m[i]);
			(*drops)++;
		} else {
			out[nout++] = m[i];
		}
	}
	return nout;
}

unsigned int chainer_run_one(struct chainer *c, struct rte_mbuf **m, unsigned int n, struct rte_mbuf **out,
			     uint64_t *drops, int tag_off)
{
	const unsigned int p = (unsigned int)c->position;
	const struct sp_pos *pos = &c->pos[p];
	int (*handler)(struct sp_pkt *) = c->nf[p]->handler;
	sp_selector_fn sel = c->sel[p];
	const struct sp_batch_hooks *hooks = sp_batch_hooks; /* NULL unless state is cached (remote) */
	uint8_t label[n];
	struct sp_pkt pkt;
	unsigned int i, nout = 0;

	if (n == 0)
		return 0;
	pkt.sfc = c->sfc;
	if (hooks) { /* the whole batch is this NF's share */
		struct sp_pkt mine[n];

		for (i = 0; i < n; i++)
			mine[i] = (struct sp_pkt){.data = rte_pktmbuf_mtod(m[i], uint8_t *),
						  .len = rte_pktmbuf_data_len(m[i]), .sfc = c->sfc, .buf = m[i]};
		hooks->begin(c->nf_name[p], mine, n);
	}
	for (i = 0; i < n; i++) {
		int v, b;

		pkt.buf = m[i];
		pkt.data = rte_pktmbuf_mtod(m[i], uint8_t *);
		pkt.len = rte_pktmbuf_data_len(m[i]);
		if (hooks)
			hooks->packet(&pkt);
		v = handler(&pkt);
		if (v < 0) {
			label[i] = SP_LABEL_DROP;
		} else if (sel) {
			b = sel(v);
			label[i] = (b < 0 || b >= pos->nbranch) ? SP_LABEL_DROP : pos->next[b];
		} else {
			label[i] = pos->next_pass;
		}
	}
	if (hooks)
		hooks->end();
	for (i = 0; i < n; i++) {
		if (label[i] == SP_LABEL_DROP) {
			rte_pktmbuf_free(m[i]);
			(*drops)++;
		} else {
			sp_chain_tag(m[i], tag_off)->label = label[i];
			out[nout++] = m[i];
		}
	}
	return nout;
}
