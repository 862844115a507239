/*
 * latency.c: set-up side of the latency signature (see latency.h).
 */
#include <stdlib.h>

#include "latency.h"

static uint16_t be16_at(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* Offset of the L3 header after any VLAN/QinQ tags, and its ethertype. */
static uint16_t lat_l3(const uint8_t *pkt, uint16_t len, uint16_t *etype)
{
	uint16_t off = 14;

	*etype = be16_at(pkt + 12);
	while ((*etype == 0x8100 || *etype == 0x88a8) && off + 4 <= len) {
		*etype = be16_at(pkt + off + 2);
		off += 4;
	}
	return off;
}

static void lat_set_l4(struct lat_tx *t, uint8_t kind, uint16_t ip,
		       uint16_t l4, uint8_t proto, uint16_t end, uint16_t len)
{
	uint16_t cs = proto == 17 ? 6 : 16, hdr = proto == 17 ? 8 : 20;

	if ((proto != 17 && proto != 6) || l4 + hdr > end || end > len)
		return;
	t->l4 = kind;
	t->ip_off = ip;
	t->l4_off = l4;
	t->cs_off = (uint16_t)(l4 + cs);
}

void lat_tx_init(struct lat_tx *t, uint16_t pg_id, const uint8_t *pkt,
		 uint16_t len)
{
	uint16_t etype, ip = lat_l3(pkt, len, &etype), ihl;

	memset(t, 0, sizeof(*t));
	t->pg_id = pg_id;
	t->l4 = LAT_L4_NONE;
	if (etype == 0x0800 && ip + 20 <= len && (pkt[ip] >> 4) == 4) {
		t->fid_ip = ip;
		ihl = (uint16_t)((pkt[ip] & 0x0f) * 4);
		if (ihl >= 20)
			lat_set_l4(t, LAT_L4_IPV4, ip, (uint16_t)(ip + ihl),
				   pkt[ip + 9],
				   (uint16_t)(ip + be16_at(pkt + ip + 2)), len);
	} else if (etype == 0x86DD && ip + 40 <= len) {
		lat_set_l4(t, LAT_L4_IPV6, ip, (uint16_t)(ip + 40),
			   pkt[ip + 6],
			   (uint16_t)(ip + 40 + be16_at(pkt + ip + 4)), len);
	}
}

int lat_table_add(struct lat_table *lt, uint16_t pg_id)
{
	struct lat_pg *pg;

	if (lt->n >= LAT_MAX_PG || lat_find(lt, pg_id) != NULL)
		return -1;
	pg = &lt->pg[lt->n];
	memset(pg, 0, sizeof(*pg));
	pg->pg_id = pg_id;
	if (hist_init(&pg->hist) != 0)
		return -1;
	return (int)lt->n++;
}

void lat_table_free(struct lat_table *lt)
{
	unsigned int i;

	for (i = 0; i < lt->n; i++)
		hist_free(&lt->pg[i].hist);
	lt->n = 0;
}
