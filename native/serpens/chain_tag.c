/* chain_tag.c: the mbuf dynamic field of chain_tag.h (registered by serpensd, looked up by runtimes). */
#include <rte_errno.h>
#include <rte_mbuf_dyn.h>

#include "chain_tag.h"

static const struct rte_mbuf_dynfield tag_desc = {
	.name = SP_CHAIN_TAG_NAME,
	.size = sizeof(struct sp_chain_tag),
	.align = __alignof__(struct sp_chain_tag),
};

int sp_chain_tag_register(void)
{
	return rte_mbuf_dynfield_register(&tag_desc);
}

int sp_chain_tag_lookup(void)
{
	return rte_mbuf_dynfield_lookup(SP_CHAIN_TAG_NAME, NULL);
}
