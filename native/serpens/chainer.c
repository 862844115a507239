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
#include "handover.h"
#include "serpens/state_ops.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
	/* no owner: a runtime gets an image only by descriptor (handover.h), never through /proc/<owner>/fd */
	*v = (struct st_nf){.name = d->name, .path = d->path, .snapshot = d->snapshot[0] ? d->snapshot : NULL,
			    .image = d->has_image ? &d->image : NULL, .image_fd = -1, .owner_pid = 0,
			    .cached_fd = -1, .args = chainer_args(d)};
}

/* This process's descriptor of each deployed NF's image (0: none; fd 0 is never one), as serpensd handed
 * it over (handover.h), and whether its imports are prewarmed. NF slots are never reused (no NF is
 * undeployed), so the slot names the image. */
static int image_fd[SP_MAX_NFS];
static bool image_warm[SP_MAX_NFS];

static void image_arrived(unsigned int k, int fd)
{
	if (k >= SP_MAX_NFS) {
		close(fd);
		return;
	}
	if (image_fd[k] > 0)
		close(image_fd[k]); /* sent again: a request of a start that found one missing */
	image_fd[k] = fd;
	image_warm[k] = false;
}

/* This process's fd on NF k's image, or -1. */
static int cached_image_fd(unsigned int k) { return image_fd[k] > 0 ? image_fd[k] : -1; }

void chainer_take_images(const struct sp_ctl *ctl)
{
	unsigned int k;

	ho_set_image_sink(image_arrived);
	ho_drain();
	for (k = 0; k < SP_MAX_NFS; k++) {
		const struct sp_nf_desc *d = &ctl->nfs[k];

		if (image_fd[k] <= 0 || image_warm[k] || !__atomic_load_n(&d->used, __ATOMIC_ACQUIRE) || !d->has_image)
			continue;
		ldr_prewarm(&d->image, image_fd[k], 0); /* its imports into this process's cache; nothing is run */
		image_warm[k] = true;
	}
}

/* Before a start runs any NF code: close every image descriptor SFC sfc does not use. serpensd sends a
 * process only its own tenant's images (handover.h), so these are the tenant's other SFCs' code: closed
 * anyway, so that an NF reads no more code through this process's descriptors than its start needs. */
void chainer_keep_only(const struct sp_ctl *ctl, uint32_t sfc)
{
	bool keep[SP_MAX_NFS] = {false};
	unsigned int i, k;

	if (sfc < SP_MAX_SFCS)
		for (i = 0; i < ctl->sfcs[sfc].npos && i < SP_MAX_POS; i++)
			if (ctl->sfcs[sfc].pos[i].nf < SP_MAX_NFS)
				keep[ctl->sfcs[sfc].pos[i].nf] = true;
	for (k = 0; k < SP_MAX_NFS; k++)
		if (image_fd[k] > 0 && !keep[k]) {
			close(image_fd[k]);
			image_fd[k] = 0;
		}
}

/* Whether an image this start needs has not arrived. */
static bool image_missing(const struct sp_ctl *ctl, const struct sp_sfc_desc *s, int position)
{
	unsigned int i;

	for (i = 0; i < s->npos && i < SP_MAX_POS; i++) {
		const struct sp_nf_desc *d = &ctl->nfs[s->pos[i].nf];

		if ((position < 0 || (int)i == position) && d->has_image && d->image_fd >= 0 && image_fd[s->pos[i].nf] <= 0)
			return true;
	}
	return false;
}

/* The image descriptors this start needs: here already (no syscall: a pool process's later starts), queued
 * (sent with the wake or a prewarm), or asked for once (serpensd answers with the region and the start's
 * SFC's images: handover.h). 0, or -1 with err. */
static int images_in(const struct sp_ctl *ctl, const struct sp_sfc_desc *s, int position, char *err, size_t errlen)
{
	if (!image_missing(ctl, s, position))
		return 0;
	ho_drain();
	if (!image_missing(ctl, s, position))
		return 0;
	if (ho_request(err, errlen) != 0)
		return -1;
	ho_take_region(-1); /* closes the answer's region descriptor: mapped here already (tr_attach) */
	return 0;
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
	/* ... in the tenant's own state region, the only one this process maps (tenant_region.h) */
	ho_set_image_sink(image_arrived);
	if (tr_attach(ctl, sm_tenant(), err, errlen) != 0)
		return -1;
	/* the images of its NFs, by descriptor from serpensd (handover.h): the image loader's only way in */
	if (st && st->load == st_load_image && images_in(ctl, s, position, err, errlen) != 0)
		return -1;
	for (i = 0; i < c->npos; i++) {
		unsigned int k = c->pos[i].nf, j;

		if (position >= 0 && (int)i != position)
			continue; /* per-NF: only this instance's NF is loaded */
		for (j = 0; j < i && !(c->ld[j].nf && c->pos[j].nf == k); j++)
			;
		c->ldi[i] = (uint8_t)j; /* i itself if no earlier position loaded NF k */
		if (j == i) {
			struct st_nf v;

			chainer_nf_view(&ctl->nfs[k], &v);
			v.cached_fd = cached_image_fd(k); /* serpensd handed it over, or -1 */
			if (!st || st->load(&v, &c->ld[i], err, errlen) != 0)
				return -1;
			c->map_ns += c->ld[i].map_ns;
			c->init_ns += c->ld[i].init_ns;
		}
		c->nf[i] = c->ld[j].nf;
		c->nf_name[i] = ctl->nfs[k].name;
	}
	for (i = 0; i < c->npos; i++) {
		char sym[SP_NAME_LEN + 32];
		const sp_selector_fn *fp;

		if (!c->pos[i].selector[0] || (position >= 0 && (int)i != position))
			continue;
		snprintf(sym, sizeof(sym), "serpens_selector_%s", c->pos[i].selector);
		fp = st_sym(&c->ld[c->ldi[i]], sym);
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

	return c->npos ? c->ld[c->ldi[p]].loader : "";
}

void chainer_unload(struct chainer *c)
{
	unsigned int k;

	for (k = 0; k < SP_MAX_POS; k++)
		st_unload(&c->ld[k]);
	memset(c, 0, sizeof(*c));
	sm_forget_local();
}

/* Per position: its share of the batch (the packets labelled for it) as the NF sees them, the State
 * Manager's hints for them (state.h: each packet's flow hashed once and the NF's slots prefetched, so
 * the lookups' cache misses overlap), then the NF on each. */
unsigned int chainer_run(struct chainer *c, struct rte_mbuf **m, unsigned int n, struct rte_mbuf **out,
			 uint64_t *drops)
{
	uint8_t label[n], idx[n];
	struct sp_pkt mine[n];
	struct sm_hint hint[n];
	const struct sp_batch_hooks *hooks = sp_batch_hooks; /* NULL unless state is cached (remote) */
	unsigned int i, j, k, p, nout = 0;

	memset(label, 0, n);
	for (p = 0; p < c->npos; p++) {
		const struct sp_pos *pos = &c->pos[p];
		int (*handler)(struct sp_pkt *) = c->nf[p]->handler;
		sp_selector_fn sel = c->sel[p];

		for (i = 0, k = 0; i < n; i++)
			if (label[i] == p) {
				idx[k] = (uint8_t)i;
				mine[k++] = (struct sp_pkt){.data = rte_pktmbuf_mtod(m[i], uint8_t *),
							    .len = rte_pktmbuf_data_len(m[i]), .sfc = c->sfc,
							    .buf = m[i]};
			}
		if (k == 0)
			continue;
		if (hooks) /* this NF's share of the batch, for the remote backend's prefetch */
			hooks->begin(c->nf_name[p], mine, k);
		sm_hint_batch(c->nf_name[p], mine, hint, k);
		for (j = 0; j < k; j++) {
			int v, b;

			if (hooks)
				hooks->packet(&mine[j]);
			sm_hint_cur = &hint[j];
			v = handler(&mine[j]);
			if (v < 0) {
				label[idx[j]] = SP_LABEL_DROP;
			} else if (sel) {
				b = sel(v);
				label[idx[j]] = (b < 0 || b >= pos->nbranch) ? SP_LABEL_DROP : pos->next[b];
			} else {
				label[idx[j]] = pos->next_pass;
			}
		}
		sm_hint_cur = NULL;
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
