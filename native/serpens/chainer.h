/*
 * chainer.h: runs a whole SFC inside one instance as sequential function calls over a batch
 * (paper Section III-C). A label array per batch says which position of the SFC's label graph each
 * packet goes to next; the Chainer calls every position once per batch, on the packets labelled for it,
 * so a dynamic SFC (Fig. 6b: FW sends suspicious packets to IDS, the rest to MON) costs no queues.
 */
#ifndef SERPENS_CHAINER_H
#define SERPENS_CHAINER_H

#include <stddef.h>
#include <stdint.h>

#include <rte_mbuf.h>

#include "ctl.h"
#include "starter.h"

struct chainer {
	unsigned int npos;
	struct sp_pos pos[SP_MAX_POS];
	const struct sp_nf *nf[SP_MAX_POS];      /* per position */
	sp_selector_fn sel[SP_MAX_POS];          /* per position, NULL when next_pass applies */
	/* per position: how its starter loaded the position's NF, in the first position that has it (an NF
	 * at two positions is loaded once: ldi names that position); per position, not per deployed NF, so
	 * that a runtime's Chainer stays a few pages however many NFs are deployed (SP_MAX_NFS) */
	struct st_loaded ld[SP_MAX_POS];
	uint8_t ldi[SP_MAX_POS];
	const char *nf_name[SP_MAX_POS];         /* per position: the deployment (remote state's batches) */
	uint32_t sfc;
	int position;                            /* the one position this instance runs, -1: all */
	uint64_t map_ns, init_ns;                /* chainer_load: summed over the NFs it loaded (st_loaded) */
};

/* Load the NFs of SFC `sfc` the way serpensd's startup method does (ctl->startup: dlopen, or map the
 * image — its descriptor from serpensd, asked for if it has not come: handover.h — or the snapshot;
 * native/serpens/startup), each deployed NF once, run its init in the current
 * state phase through sm_nf_init, and resolve selectors: all of them (position -1), or only the NF at
 * `position` (per-NF chaining: the instance runs that one). 0, or -1 with a message in err. */
int chainer_load(struct chainer *c, const struct sp_ctl *ctl, uint32_t sfc, int position, char *err,
		 size_t errlen);

/* Take the NF image descriptors serpensd has sent this process (handover.h) and resolve the imports of
 * the new ones into this process's cache (ldr_prewarm), so that chainer_load maps them without a symbol
 * search. A pooled runtime calls it while it waits (serpensd sent the images of a new SFC of its tenant);
 * chainer_load takes them anyway. The fds stay open: a handle on each image, like a mapped file. */
void chainer_take_images(const struct sp_ctl *ctl);
/* Close the image descriptors SFC sfc does not use (the tenant's other SFCs'), before its NFs run. */
void chainer_keep_only(const struct sp_ctl *ctl, uint32_t sfc);

/* Which of the starters' loaders chainer_load ran ("dlopen", "image", "snapshot-file"). */
const char *chainer_loader(const struct chainer *c);

/* Unload what chainer_load loaded (a pooled runtime goes back to the pool). */
void chainer_unload(struct chainer *c);

/* A deployed NF as the starters see it (args from chainer_args: valid until the next call). */
void chainer_nf_view(const struct sp_nf_desc *d, struct st_nf *v);

/* Process n packets; packets that leave the SFC are written to out (returned count); dropped packets
 * are freed and counted in *drops. */
unsigned int chainer_run(struct chainer *c, struct rte_mbuf **m, unsigned int n, struct rte_mbuf **out,
			 uint64_t *drops);

/* Per-NF chaining: run the instance's one NF (c->position) over n packets, all labelled for it, exactly as
 * chainer_run would at that position (same handler, selector and batch hooks). Packets that go on get
 * their next label (SP_LABEL_END or a later position) in their chain tag (chain_tag.h, field offset
 * tag_off) and are written to out (returned count); dropped packets are freed and counted in *drops. */
unsigned int chainer_run_one(struct chainer *c, struct rte_mbuf **m, unsigned int n, struct rte_mbuf **out,
			     uint64_t *drops, int tag_off);

/* Deployment arguments "k\0v\0...\0\0" as the NULL-terminated array sm_set_nf wants (static storage,
 * valid until the next call). */
const char *const *chainer_args(const struct sp_nf_desc *d);

#endif
