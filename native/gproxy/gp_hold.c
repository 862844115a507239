/*
 * gp_hold.c: the global proxy's hold buffers (see gp_hold.h).
 */
#include <stdlib.h>

#include "gp_hold.h"

void gp_holds_init(struct gp_holds *hs, uint32_t cap)
{
	unsigned int s, p;

	hs->cap = cap;
	hs->total = 0;
	for (s = 0; s < GP_MAX_SFCS; s++)
		for (p = 0; p < GP_MAX_POS; p++)
			hs->h[s][p] = (struct gp_hold){0};
}

void gp_holds_fini(struct gp_holds *hs)
{
	unsigned int s, p;

	for (s = 0; s < GP_MAX_SFCS; s++)
		for (p = 0; p < GP_MAX_POS; p++) {
			free(hs->h[s][p].q);
			hs->h[s][p] = (struct gp_hold){0};
		}
	hs->total = 0;
}

int gp_hold_push(struct gp_holds *hs, unsigned int sfc, unsigned int pos, void *p, uint64_t now)
{
	struct gp_hold *h = &hs->h[sfc][pos];

	if (h->count >= hs->cap)
		return -1;
	if (!h->q && !(h->q = calloc(hs->cap, sizeof(*h->q))))
		return -1;
	if (h->count == 0)
		h->since_tsc = now;
	h->q[(h->head + h->count) % hs->cap] = p;
	h->count++;
	hs->total++;
	return 0;
}

unsigned int gp_hold_pop(struct gp_holds *hs, unsigned int sfc, unsigned int pos, void **out, unsigned int max)
{
	struct gp_hold *h = &hs->h[sfc][pos];
	unsigned int n = h->count < max ? h->count : max, i;

	for (i = 0; i < n; i++) {
		out[i] = h->q[h->head];
		h->head = (h->head + 1) % hs->cap;
	}
	h->count -= n;
	hs->total -= n;
	return n;
}
