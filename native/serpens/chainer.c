/*
 * chainer.c: the label-array Chainer (see chainer.h) and NF loading with dlopen.
 *
 * NF objects are opened with RTLD_NOW | RTLD_LOCAL: every sp_* call resolves at load time to the
 * process's implementation (exported by the executable), and two deployments of one NF never share
 * globals because serpensd gives every deployment its own copy of the object file (serpensd.c).
 * The shared-memory loader of the reusable-runtime issue replaces dlopen here.
 */
#include "chainer.h"
#include "chain_tag.h"
#include "serpens/state_ops.h"

#include <dlfcn.h>
#include <errno.h>
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

const struct sp_nf *chainer_load_nf(void **dl, const struct sp_nf_desc *d, char *err, size_t errlen)
{
	const struct sp_nf *nf;
	int rc;

	*dl = dlopen(d->path, RTLD_NOW | RTLD_LOCAL);
	if (!*dl) {
		snprintf(err, errlen, "NF %s: cannot load %s: %s", d->name, d->path, dlerror());
		return NULL;
	}
	nf = dlsym(*dl, "serpens_nf");
	if (!nf || !nf->handler) {
		snprintf(err, errlen, "NF %s: %s is not an NF (no serpens_nf descriptor defined with SP_NF)",
			 d->name, d->path);
		dlclose(*dl);
		*dl = NULL;
		return NULL;
	}
	sm_set_nf(d->name, chainer_args(d));
	rc = sm_nf_init(nf);
	if (rc != 0) {
		struct sm_region *r = sm_get_region();

		snprintf(err, errlen, "NF %s: init failed (%d)%s%s", d->name, rc, r ? ": " : "",
			 r ? sm_last_error(r) : "");
		return NULL; /* keep it loaded: its tables may exist; the caller refuses the NF */
	}
	return nf;
}

const struct sp_nf *chainer_map_nf(const struct sp_nf_desc *d, char *err, size_t errlen)
{
	const struct sp_nf *nf;
	char path[64], why[400];
	int fd, rc;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", d->owner_pid, d->image_fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "NF %s: cannot open its image %s: %s", d->name, path, strerror(errno));
		return NULL;
	}
	rc = ldr_map(&d->image, fd, 0, NULL, why, sizeof(why));
	close(fd);
	if (rc != 0) {
		snprintf(err, errlen, "NF %s: cannot map its image: %s", d->name, why);
		return NULL;
	}
	nf = ldr_sym(&d->image, "serpens_nf");
	if (!nf || !nf->handler) {
		snprintf(err, errlen, "NF %s: its image has no serpens_nf descriptor", d->name);
		ldr_unmap(&d->image);
		return NULL;
	}
	sm_set_nf(d->name, chainer_args(d));
	rc = sm_nf_init(nf);
	if (rc != 0) {
		snprintf(err, errlen, "NF %s: init failed (%d)", d->name, rc);
		return NULL;
	}
	return nf;
}

static void *nf_symbol(const struct chainer *c, unsigned int k, const char *sym)
{
	return c->img[k] ? ldr_sym(c->img[k], sym) : dlsym(c->dl[k], sym);
}

int chainer_load(struct chainer *c, const struct sp_ctl *ctl, uint32_t sfc, int position, char *err,
		 size_t errlen)
{
	const struct sp_sfc_desc *s = &ctl->sfcs[sfc];
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
	for (i = 0; i < c->npos; i++) {
		unsigned int k = c->pos[i].nf;

		if (position >= 0 && (int)i != position)
			continue; /* per-NF: only this instance's NF is loaded */
		if (!c->loaded[k]) {
			if (ctl->nfs[k].has_image) {
				c->img[k] = &ctl->nfs[k].image;
				c->loaded[k] = chainer_map_nf(&ctl->nfs[k], err, errlen);
			} else {
				c->loaded[k] = chainer_load_nf(&c->dl[k], &ctl->nfs[k], err, errlen);
			}
			if (!c->loaded[k])
				return -1;
		}
		c->nf[i] = c->loaded[k];
		c->nf_name[i] = ctl->nfs[k].name;
	}
	for (i = 0; i < c->npos; i++) {
		char sym[SP_NAME_LEN + 32];
		const sp_selector_fn *fp;

		if (!c->pos[i].selector[0] || (position >= 0 && (int)i != position))
			continue;
		snprintf(sym, sizeof(sym), "serpens_selector_%s", c->pos[i].selector);
		fp = nf_symbol(c, c->pos[i].nf, sym);
		if (!fp || !*fp) {
			snprintf(err, errlen, "SFC %s: NF %s has no selector '%s'", s->name,
				 ctl->nfs[c->pos[i].nf].name, c->pos[i].selector);
			return -1;
		}
		c->sel[i] = *fp;
	}
	return 0;
}

void chainer_unload(struct chainer *c)
{
	unsigned int k;

	for (k = 0; k < SP_MAX_NFS; k++) {
		if (c->dl[k])
			dlclose(c->dl[k]);
		if (c->img[k] && c->loaded[k])
			ldr_unmap(c->img[k]);
	}
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
