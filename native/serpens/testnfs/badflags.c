/* badflags.c: a test NF that asks for a table flag combination the paper forbids (global|write without
 * release or eventual). Deploying it must fail with a clear error and disturb nothing else. */
#include "serpens/nf.h"

static sp_table *t;

static int bad_init(void)
{
	struct sp_table_opts o = {.key_size = 4, .value_size = 8, .capacity = 16};

	t = create_table("bad", SP_GLOBAL | SP_WRITE, &o);
	return t ? 0 : -22;
}

static int bad_handler(struct sp_pkt *pkt)
{
	(void)pkt;
	return SP_PASS;
}

SP_NF("badflags", bad_init, bad_handler);
