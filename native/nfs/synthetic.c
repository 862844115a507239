/*
 * synthetic.c: the synthetic NF of the paper's scaling experiment (Section V-D, Fig. 14): "similar to FW
 * but can configure the size of state".
 *
 * Like the FW, it does one exact-match hash lookup of the packet's 5-tuple per packet; unlike the FW,
 * the value it finds is per-flow|write state of a configurable size, which it reads and writes in full
 * on every packet, so migrating a flow's state costs what its size says and an instance that sees
 * stale state would be noticed.
 *
 *   synth_flows  per-flow|write, key struct sp_flow -> state_size bytes, used as state_size / 8 u64
 *                counters that each count the flow's packets (so every word equals every other).
 *
 * Arguments (optional): state_size (bytes, a multiple of 8 from 8 to 65536; default 64), flows (table
 * capacity, default 65536), stamp (0 or 1, default 0: write the flow's counter after this packet, a
 * big-endian u64, into the first 8 bytes of a UDP payload whose checksum is 0, so that a capture shows
 * whether a flow's state survived a move: its counters run on, never restart). Every packet passes;
 * frames that are not IPv4 pass without state.
 */
#include <errno.h>
#include <stdlib.h>

#include "serpens/nf.h"

#define SYN_DEFAULT_STATE_SIZE 64
#define SYN_MAX_STATE_SIZE 65536
#define SYN_DEFAULT_FLOWS 65536

static sp_table *flows_table;
static uint32_t n_words, stamp;
static uint64_t first_state[SYN_MAX_STATE_SIZE / 8]; /* a new flow's state: every counter 1 */

static int synthetic_init(void)
{
	struct sp_table_opts opts = {.key_size = sizeof(struct sp_flow)};
	uint32_t size, flows, i;

	if (sp_arg_u32("state_size", SYN_DEFAULT_STATE_SIZE, 0, UINT32_MAX, &size) != 0 || size < 8 ||
	    size > SYN_MAX_STATE_SIZE || size % 8 != 0) {
		sp_log("state_size: want a multiple of 8 from 8 to %d bytes", SYN_MAX_STATE_SIZE);
		return -EINVAL;
	}
	if (sp_arg_u32("flows", SYN_DEFAULT_FLOWS, 0, UINT32_MAX, &flows) != 0 || flows == 0) {
		sp_log("flows: want a positive number");
		return -EINVAL;
	}
	if (sp_arg_u32("stamp", 0, 0, 1, &stamp) != 0) {
		sp_log("stamp: want 0 or 1");
		return -EINVAL;
	}
	n_words = size / 8;
	for (i = 0; i < n_words; i++)
		first_state[i] = 1;
	opts.value_size = size;
	opts.capacity = flows;
	flows_table = sp_create_table("synth_flows", SP_PER_FLOW | SP_WRITE, &opts);
	return flows_table != NULL ? 0 : -ENOMEM;
}

/* The counter into a UDP payload with no checksum (one to fix would make this NF a checksum NF too). */
static void stamp_counter(struct sp_pkt *pkt, uint64_t count)
{
	int l3 = sp_l3_offset(pkt);
	uint32_t ihl, udp;
	unsigned int i;

	if (l3 < 0 || pkt->data[l3 + 9] != 17)
		return;
	ihl = (uint32_t)(pkt->data[l3] & 0x0f) * 4;
	udp = (uint32_t)l3 + ihl;
	if (udp + 8 + 8 > pkt->len || pkt->data[udp + 6] || pkt->data[udp + 7])
		return;
	for (i = 0; i < 8; i++)
		pkt->data[udp + 8 + i] = (uint8_t)(count >> (56 - 8 * i));
}

static int synthetic_handler(struct sp_pkt *pkt)
{
	struct sp_flow f;
	uint64_t *state;
	uint32_t i;

	if (sp_flow_of(pkt, &f) != 0)
		return SP_PASS;
	state = sp_get_state(flows_table, &f);
	if (state == NULL) {
		sp_put_state(flows_table, &f, first_state); /* a full table leaves the flow stateless */
		if (stamp)
			stamp_counter(pkt, 1);
		return SP_PASS;
	}
	for (i = 0; i < n_words; i++) /* read and write every byte, in place */
		state[i] += 1;
	if (stamp)
		stamp_counter(pkt, state[0]);
	return SP_PASS;
}

SP_NF("synthetic", synthetic_init, synthetic_handler);
SP_NF_ARGS("state_size", "flows", "stamp");
