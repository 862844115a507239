/*
 * server_link.c: Serpens across servers — the data path of the VXLAN link between a gateway serpensd and
 * its worker serpensds: options, set-up, the worker's encapsulation, the gateway's server table and flow
 * table, decapsulation (server_link.h; the encapsulation in vxlan.h; the control side in
 * server_link_ctl.c; docs/multiserver.md).
 *
 * Why the gateway relays the way back (worker → gateway → generator) instead of the worker answering
 * the generator directly: the generator is connected to the gateway only (memif here, the gateway's NIC on
 * a testbed), and every packet then enters and leaves the system at one place, so the gateway's per-SFC
 * rx/tx and the link counters of both servers close exactly (docs/multiserver.md, "Counters").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "chain_tag.h"
#include "control_int.h"
#include "gateway.h"
#include "port.h"
#include "server_link_int.h"

#define SL_LINK_VDEV "net_af_packet0" /* the link port's default device (the harness passes this vdev) */

enum sl_role sl_role;
struct sl_link SL;
struct sl_counters SLC;
struct link_table *sl_table;
int8_t sl_dest_now[SP_MAX_SFCS][RT_BUCKETS];
static char link_dev[RTE_ETH_NAME_MAX_LEN] = SL_LINK_VDEV; /* --link-port: e.g. a NIC's PCI address */
static int tag_off = -1;

/* The flow table: a flow stays on the server its first packet went to while it is active (PIN_IDLE_S),
 * so a new route sends only new flows to the new server: per-flow state (NAT's mappings) lives where the
 * flow's instance is, and a flow that moved would find none. A full probe window evicts its oldest. */
#define PIN_SIZE 65536
#define PIN_PROBE 8
#define PIN_IDLE_S 10
struct lpin {
	uint32_t flow; /* 0: empty (a hash of 0 is stored as 1) */
	uint8_t sfc;
	int8_t dest;
	uint64_t seen;
};
static struct lpin P[PIN_SIZE];

/* ------------------------------------------------------------------------------------------------ */
/* options                                                                                          */

static int parse_mac(const char *s, uint8_t *mac)
{
	unsigned int b[6], i;
	char tail;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
		return -1;
	for (i = 0; i < 6; i++) {
		if (b[i] > 255)
			return -1;
		mac[i] = (uint8_t)b[i];
	}
	return 0;
}

/* Outer addresses are in the benchmarking range only (RFC 2544: 198.18.0.0/15), like every address the
 * harness puts on a wire. */
static int parse_ip(const char *s, uint32_t *ip)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1 || (ntohl(a.s_addr) & 0xfffe0000u) != 0xc6120000u)
		return -1;
	*ip = a.s_addr;
	return 0;
}

int server_link_option(const char *opt, const char *arg, char *why, size_t whylen)
{
	char ip[32];
	const char *comma;

	if (!strcmp(opt, "link")) {
		if (!strcmp(arg, "gateway"))
			sl_role = SL_GATEWAY;
		else if (!strcmp(arg, "worker"))
			sl_role = SL_WORKER;
		else {
			snprintf(why, whylen, "--link is gateway or worker, not '%.40s'", arg);
			return -1;
		}
		return 0;
	}
	if (!strcmp(opt, "link-port")) {
		if (!*arg || strlen(arg) >= sizeof(link_dev)) {
			snprintf(why, whylen, "--link-port is a DPDK device name (e.g. net_af_packet0, 0000:03:00.1)");
			return -1;
		}
		snprintf(link_dev, sizeof(link_dev), "%s", arg);
		return 0;
	}
	if (!strcmp(opt, "link-ip")) {
		if (parse_ip(arg, &SL.self.ip) == 0)
			return 0;
		snprintf(why, whylen, "--link-ip '%.40s' is not an IPv4 address in 198.18.0.0/15", arg);
		return -1;
	}
	/* link-peer IP,MAC */
	comma = strchr(arg, ',');
	if (SL.npeers == SL_MAX_PEERS) {
		snprintf(why, whylen, "--link-peer: at most %d peers", SL_MAX_PEERS);
		return -1;
	}
	if (!comma || (size_t)(comma - arg) >= sizeof(ip)) {
		snprintf(why, whylen, "--link-peer is IP,MAC, not '%.60s'", arg);
		return -1;
	}
	snprintf(ip, sizeof(ip), "%.*s", (int)(comma - arg), arg);
	if (parse_ip(ip, &SL.peer[SL.npeers].ip) != 0 || parse_mac(comma + 1, SL.peer[SL.npeers].mac) != 0) {
		snprintf(why, whylen, "--link-peer '%.60s': IP in 198.18.0.0/15, MAC as aa:bb:cc:dd:ee:ff", arg);
		return -1;
	}
	SL.npeers++;
	return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* set-up                                                                                           */

/* worker: every frame leaving port 0 goes back to the gateway, encapsulated with its SFC's tag. A tx
 * callback, so that the delivery mechanism's transmit stays the one-server code. It must not drop (the
 * caller frees what the port did not take): a frame without room in front would go out bare and be
 * counted here (it cannot happen: the decapsulation left 50 bytes of headroom more than it found). */
static uint16_t worker_encap(uint16_t port, uint16_t queue, struct rte_mbuf **m, uint16_t n, void *arg)
{
	uint16_t i;

	(void)port;
	(void)queue;
	(void)arg;
	for (i = 0; i < n; i++) {
		const struct sp_chain_tag *t = sp_chain_tag(m[i], tag_off);
		uint32_t inner = rte_pktmbuf_pkt_len(m[i]);
		uint8_t *h = (uint8_t *)rte_pktmbuf_prepend(m[i], VX_HDR_LEN);

		if (!h || m[i]->nb_segs != 1) {
			SLC.encap_failed++;
			continue;
		}
		vx_write(h, &SL.self, &SL.peer[0], t->sfc, t->hash, inner);
		SLC.encap++;
	}
	return n;
}

int server_link_setup(struct serpensd *d)
{
	struct rte_ether_addr mac;
	int ret;

	SL.d = d;
	memset(sl_dest_now, SL_LOCAL, sizeof(sl_dest_now));
	if (sl_role == SL_NONE) {
		if (SL.npeers || SL.self.ip)
			fprintf(stderr, "serpensd: --link-ip and --link-peer need --link gateway|worker\n");
		return SL.npeers || SL.self.ip ? -1 : 0;
	}
	if (d->delivery->per_nf) {
		/* a worker runs whole SFC instances; NF-to-NF hops between servers are not built */
		fprintf(stderr, "serpensd: --link needs --chaining consolidated, not %s\n", d->delivery->name);
		return -1;
	}
	if (!SL.self.ip || !SL.npeers) {
		fprintf(stderr, "serpensd: --link %s needs --link-ip and at least one --link-peer\n",
			sl_role == SL_GATEWAY ? "gateway" : "worker");
		return -1;
	}
	if (sl_role == SL_WORKER && SL.npeers != 1) {
		fprintf(stderr, "serpensd: --link worker has one peer, its gateway (%u given)\n", SL.npeers);
		return -1;
	}
	if (rte_eth_dev_get_port_by_name(link_dev, &SL.port) != 0) {
		fprintf(stderr, "serpensd: --link: no link port %s: pass --vdev %s,iface=IFNAME (or --link-port and the "
			"device)\n", link_dev, SL_LINK_VDEV);
		return -1;
	}
	/* the gateway's port 0 is the generator's memif, its link another port; a worker has the link only */
	if ((sl_role == SL_GATEWAY) != (SL.port != 0)) {
		fprintf(stderr, "serpensd: --link %s: the link port is port %u; the gateway needs the generator's port "
			"first, a worker the link alone\n", sl_role == SL_GATEWAY ? "gateway" : "worker", SL.port);
		return -1;
	}
	tag_off = sp_chain_tag_register();
	if (tag_off < 0) {
		fprintf(stderr, "serpensd: --link: cannot register the tag field: %s\n", rte_strerror(rte_errno));
		return -1;
	}
	if (rte_eth_macaddr_get(SL.port, &mac) != 0) {
		fprintf(stderr, "serpensd: --link: cannot read the link port's MAC\n");
		return -1;
	}
	memcpy(SL.self.mac, mac.addr_bytes, 6);
	{
		struct rte_eth_dev_info info;

		if (rte_eth_dev_info_get(SL.port, &info) == 0)
			SL.ifindex = (int)info.if_index;
	}
	if (sl_role == SL_WORKER) {
		if (!rte_eth_add_tx_callback(SL.port, 0, worker_encap, NULL)) {
			fprintf(stderr, "serpensd: --link worker: cannot add the encapsulation: %s\n",
				rte_strerror(rte_errno));
			return -1;
		}
		return 0;
	}
	port_configure(SL.port, d->pool);
	ret = port_start(SL.port, 0);
	if (ret != 0) {
		fprintf(stderr, "serpensd: --link: link port start failed: %s\n", rte_strerror(-ret));
		return -1;
	}
	return 0;
}

void server_link_shutdown(void)
{
	if (sl_role == SL_GATEWAY)
		port_shutdown(SL.port);
}

/* ------------------------------------------------------------------------------------------------ */
/* the data plane                                                                                   */

static int pinned_dest(const struct link_table *lt, unsigned int sfc, uint32_t h, uint64_t now)
{
	const uint32_t key = h ? h : 1, i = (key * 2654435761u) & (PIN_SIZE - 1);
	const uint64_t idle = (uint64_t)PIN_IDLE_S * rte_get_tsc_hz();
	struct lpin *victim = NULL, *e;
	unsigned int k;
	int dest = lt->dest[sfc][h & (RT_BUCKETS - 1)];

	for (k = 0; k < PIN_PROBE; k++) {
		e = &P[(i + k) & (PIN_SIZE - 1)];
		if (e->flow == key && e->sfc == sfc && now - e->seen < idle) {
			e->seen = now;
			if (e->dest != dest)
				SLC.pinned_moves++; /* its bucket moved since: it stays (counted: flows kept back) */
			return e->dest;
		}
		if (!victim || e->seen < victim->seen) /* empty (seen 0), else the oldest */
			victim = e;
	}
	if (victim->flow && now - victim->seen < idle)
		SLC.pin_evictions++;
	*victim = (struct lpin){.flow = key, .sfc = (uint8_t)sfc, .dest = (int8_t)dest, .seen = now};
	return dest;
}

/* A port steered to a server wins over the bucket and the flow table: the server holding the port is the
 * only one that can know the flow (its share gave the port out). */
static int steered_dest(const struct link_table *lt, unsigned int sfc, const struct pkt_key *k)
{
	unsigned int i;

	for (i = 0; i < lt->nsteer; i++)
		if (lt->steer[i].sfc == sfc && lt->steer[i].dst == k->dst && (k->proto == 6 || k->proto == 17))
			return lt->steer[i].dest[rte_be_to_cpu_16(k->dport)];
	return SL_NO_STEER;
}

/* gateway: classify, and send the packets of remote buckets (or flows pinned there) over the link */
static unsigned int gateway_route(struct serpensd *d, struct rte_mbuf **m, unsigned int n)
{
	const struct link_table *lt = __atomic_load_n(&sl_table, __ATOMIC_ACQUIRE);
	const struct route_table *rt = __atomic_load_n(&d->route, __ATOMIC_ACQUIRE);
	struct rte_mbuf *out[SL_MAX_PEERS][DP_BURST];
	uint16_t nout[SL_MAX_PEERS] = {0}, sent;
	unsigned int i, keep = 0, k;
	uint64_t now;
	struct pkt_key key;

	if (!lt || !lt->remote || !rt)
		return n; /* the one-server path */
	now = rte_rdtsc();
	for (i = 0; i < n; i++) {
		int si, dest;
		uint32_t h, inner;
		uint8_t *hdr;

		gw_parse(m[i], &key);
		si = key.ok ? gw_classify(rt, &key) : -1;
		if (si < 0) {
			m[keep++] = m[i]; /* the delivery's gateway counts the miss */
			continue;
		}
		h = gw_flow_hash(&key);
		dest = lt->nsteer ? steered_dest(lt, rt->sfc_id[si], &key) : SL_NO_STEER;
		if (dest == SL_NO_STEER)
			dest = pinned_dest(lt, rt->sfc_id[si], h, now);
		else
			SLC.steered++;
		if (dest == SL_LOCAL) {
			m[keep++] = m[i];
			continue;
		}
		d->ctl->sfcs[rt->sfc_id[si]].rx++;
		SLC.sfc_remote_rx[rt->sfc_id[si]]++;
		inner = rte_pktmbuf_pkt_len(m[i]);
		hdr = (uint8_t *)rte_pktmbuf_prepend(m[i], VX_HDR_LEN);
		if (!hdr || m[i]->nb_segs != 1) {
			SLC.to_dropped[dest]++; /* no headroom: never with the pool's 128 bytes */
			rte_pktmbuf_free(m[i]);
			continue;
		}
		vx_write(hdr, &SL.self, &SL.peer[dest], (uint16_t)rt->sfc_id[si], h, inner);
		out[dest][nout[dest]++] = m[i];
	}
	for (k = 0; k < SL.npeers; k++) {
		if (!nout[k])
			continue;
		sent = rte_eth_tx_burst(SL.port, 0, out[k], nout[k]);
		SLC.to[k] += sent;
		if (sent < nout[k]) {
			SLC.to_dropped[k] += nout[k] - sent;
			rte_pktmbuf_free_bulk(out[k] + sent, nout[k] - sent);
		}
	}
	return keep;
}

/* Check and strip one received tunnel frame; the tag goes into the mbuf. -1: dropped (counted). */
static int decap(struct rte_mbuf *m, struct vx_info *vi)
{
	enum vx_verdict v;
	unsigned int k;

	SLC.rx_frames++;
	v = m->nb_segs == 1 ? vx_parse(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m), SL.self.ip, vi)
			    : VX_BAD;
	if (v != VX_OK) {
		if (v == VX_NOT_VXLAN)
			SLC.not_vxlan++;
		else if (v == VX_NOT_MINE)
			SLC.not_mine++;
		else
			SLC.bad++;
		rte_pktmbuf_free(m);
		return -1;
	}
	if (vi->sfc >= SP_MAX_SFCS || !SL.d->ctl->sfcs[vi->sfc].used) {
		SLC.unknown_sfc++;
		rte_pktmbuf_free(m);
		return -1;
	}
	for (k = 0; k < SL.npeers && SL.peer[k].ip != vi->src_ip; k++)
		;
	if (k < SL.npeers)
		SLC.from[k]++;
	rte_pktmbuf_adj(m, VX_HDR_LEN);
	*sp_chain_tag(m, tag_off) = (struct sp_chain_tag){.sfc = vi->sfc, .hash = vi->sport & 0x3fffu};
	return 0;
}

/* worker: decapsulate; the inner packet must classify to the SFC of its tag (both servers deploy the same
 * SFCs under the same ids: the controller checks), then the one-server gateway takes it */
static unsigned int worker_route(struct serpensd *d, struct rte_mbuf **m, unsigned int n)
{
	const struct route_table *rt = __atomic_load_n(&d->route, __ATOMIC_ACQUIRE);
	unsigned int i, keep = 0;
	struct vx_info vi;
	struct pkt_key key;
	int si;

	for (i = 0; i < n; i++) {
		if (decap(m[i], &vi) != 0)
			continue;
		gw_parse(m[i], &key);
		si = key.ok && rt ? gw_classify(rt, &key) : -1;
		if (si < 0 || rt->sfc_id[si] != vi.sfc) {
			SLC.tag_mismatch++;
			rte_pktmbuf_free(m[i]);
			continue;
		}
		SLC.decap++;
		m[keep++] = m[i];
	}
	return keep;
}

unsigned int server_link_route(struct serpensd *d, struct rte_mbuf **m, unsigned int n)
{
	if (sl_role == SL_GATEWAY)
		return gateway_route(d, m, n);
	return worker_route(d, m, n);
}

/* gateway: the way back — from the workers, decapsulated, to the generator's port */
unsigned int server_link_poll(struct serpensd *d)
{
	struct rte_mbuf *m[DP_BURST];
	uint16_t sfc[DP_BURST];
	struct vx_info vi;
	unsigned int i, keep = 0;
	uint16_t nb, sent;

	nb = rte_eth_rx_burst(SL.port, 0, m, DP_BURST);
	if (!nb)
		return 0;
	for (i = 0; i < nb; i++) {
		if (decap(m[i], &vi) != 0)
			continue;
		SLC.decap++;
		sfc[keep] = vi.sfc;
		m[keep++] = m[i];
	}
	if (!keep)
		return nb;
	sent = rte_eth_tx_burst(0, 0, m, (uint16_t)keep);
	for (i = 0; i < sent; i++) {
		d->ctl->sfcs[sfc[i]].tx++;
		SLC.sfc_remote_tx[sfc[i]]++;
	}
	d->port_tx += sent;
	SLC.out_sent += sent;
	if (sent < keep) {
		SLC.out_dropped += keep - sent;
		d->port_tx_dropped += keep - sent;
		rte_pktmbuf_free_bulk(m + sent, keep - sent);
	}
	return nb;
}
