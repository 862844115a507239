/*
 * test_hold.c: the hold buffers keep arrival order per (SFC, position), stay within their bound, and
 * leave other pairs alone (gp_hold.h).
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>

#include "gp_hold.h"

static struct gp_holds hs;

int main(void)
{
	void *out[16];
	unsigned int n, i;

	gp_holds_init(&hs, 4);
	for (i = 0; i < 4; i++)
		assert(gp_hold_push(&hs, 3, 1, (void *)(uintptr_t)(i + 1), 100 + i) == 0);
	assert(gp_hold_push(&hs, 3, 1, (void *)5, 200) == -1); /* full: the caller drops */
	assert(gp_hold_push(&hs, 3, 2, (void *)9, 300) == 0);  /* another pair has its own room */
	assert(hs.total == 5 && gp_hold_count(&hs, 3, 1) == 4 && hs.h[3][1].since_tsc == 100);
	n = gp_hold_pop(&hs, 3, 1, out, 3);
	assert(n == 3 && out[0] == (void *)1 && out[1] == (void *)2 && out[2] == (void *)3);
	/* wrap round the ring: 4, then 6 and 7 pushed behind it */
	assert(gp_hold_push(&hs, 3, 1, (void *)6, 400) == 0 && gp_hold_push(&hs, 3, 1, (void *)7, 401) == 0);
	n = gp_hold_pop(&hs, 3, 1, out, 16);
	assert(n == 3 && out[0] == (void *)4 && out[1] == (void *)6 && out[2] == (void *)7);
	assert(gp_hold_count(&hs, 3, 1) == 0 && hs.total == 1);
	assert(gp_hold_push(&hs, 3, 1, (void *)8, 500) == 0 && hs.h[3][1].since_tsc == 500);
	assert(gp_hold_pop(&hs, 3, 2, out, 16) == 1 && out[0] == (void *)9);
	gp_holds_fini(&hs);
	assert(hs.total == 0 && hs.h[3][1].q == NULL);
	printf("hold: ok\n");
	return 0;
}
