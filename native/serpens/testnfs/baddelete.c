/* baddelete.c: a test NF that calls delete_state on a global table for every packet. The call must fail
 * (-EPERM), be counted and reported by the platform, and the packet still pass: nothing crashes. */
#include "serpens/nf.h"

static sp_table *t;
static const uint32_t key = 1;

static int bd_init(void)
{
	struct sp_table_opts o = {.key_size = 4, .value_size = 8, .capacity = 16};
	uint64_t v = 0;

	t = create_table("global", SP_GLOBAL | SP_READ, &o);
	return t ? put_state(t, &key, &v) : -22;
}

static int bd_handler(struct sp_pkt *pkt)
{
	(void)pkt;
	delete_state(t, &key);
	return SP_PASS;
}

SP_NF("baddelete", bd_init, bd_handler);
