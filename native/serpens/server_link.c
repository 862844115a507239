/*
 * server_link.c: Serpens across servers — the VXLAN link between a gateway serpensd and its worker
 * serpensds (server_link.h; the encapsulation in vxlan.h; docs/multiserver.md).
 *
 * Why the gateway relays the way back (worker → gateway → generator) instead of the worker answering
 * the generator directly: the generator is connected to the gateway only (memif here, the gateway's NIC on
 * a testbed), and every packet then enters and leaves the system at one place, so the gateway's per-SFC
 * rx/tx and the link counters of both servers close exactly (docs/multiserver.md, "Counters").
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "chain_tag.h"
#include "control_int.h"
#include "gateway.h"
#include "port.h"
#include "server_link.h"
#include "serpensd.h"
#include "vxlan.h"

#define SL_LINK_VDEV "net_af_packet0" /* the link port's default device (the harness passes this vdev) */
#define SL_LOCAL (-1)                  /* a bucket or flow served by this server's own instances */

enum sl_role sl_role;
static struct vx_endpoint self, peer[SL_MAX_PEERS]; /* gateway: peer[k-1] is server k; worker: peer[0] */
static unsigned int npeers;
static uint16_t link_port;
static char link_dev[RTE_ETH_NAME_MAX_LEN] = SL_LINK_VDEV; /* --link-port: e.g. a NIC's PCI address */
static int tag_off = -1;
static struct serpensd *SD;
static int link_ifindex;      /* the link port's kernel interface (af_packet), 0: not known */
static uint64_t ring_drops;   /* frames the kernel dropped for a full af_packet rx ring (ring_drops_read) */

/* The gateway's server table: per SFC id and Router bucket, SL_LOCAL or the peer index (server k - 1).
 * Built by the control thread, published with one pointer store like routes.c's table. */
struct link_table {
	int8_t dest[SP_MAX_SFCS][RT_BUCKETS];
	bool remote;    /* any bucket is remote: otherwise the gateway's path is the one-server path */
};
static struct link_table *LT;
static int8_t dest_now[SP_MAX_SFCS][RT_BUCKETS];

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

/* Counters: the data plane writes, the control thread reads (64-bit stores do not tear on x86-64). */
static struct {
	uint64_t rx_frames, not_vxlan, not_mine, bad, unknown_sfc, tag_mismatch, decap; /* the link's receive */
	uint64_t out_sent, out_dropped;     /* gateway: decapsulated, sent to / refused by port 0 */
	uint64_t encap, encap_failed;       /* worker: frames encapsulated on the way out */
	uint64_t pin_evictions, pinned_moves;
	uint64_t to[SL_MAX_PEERS], to_dropped[SL_MAX_PEERS], from[SL_MAX_PEERS];
	uint64_t sfc_remote_rx[SP_MAX_SFCS], sfc_remote_tx[SP_MAX_SFCS];
} C;

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
		if (parse_ip(arg, &self.ip) == 0)
			return 0;
		snprintf(why, whylen, "--link-ip '%.40s' is not an IPv4 address in 198.18.0.0/15", arg);
		return -1;
	}
	/* link-peer IP,MAC */
	comma = strchr(arg, ',');
	if (npeers == SL_MAX_PEERS) {
		snprintf(why, whylen, "--link-peer: at most %d peers", SL_MAX_PEERS);
		return -1;
	}
	if (!comma || (size_t)(comma - arg) >= sizeof(ip)) {
		snprintf(why, whylen, "--link-peer is IP,MAC, not '%.60s'", arg);
		return -1;
	}
	snprintf(ip, sizeof(ip), "%.*s", (int)(comma - arg), arg);
	if (parse_ip(ip, &peer[npeers].ip) != 0 || parse_mac(comma + 1, peer[npeers].mac) != 0) {
		snprintf(why, whylen, "--link-peer '%.60s': IP in 198.18.0.0/15, MAC as aa:bb:cc:dd:ee:ff", arg);
		return -1;
	}
	npeers++;
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
			C.encap_failed++;
			continue;
		}
		vx_write(h, &self, &peer[0], t->sfc, t->hash, inner);
		C.encap++;
	}
	return n;
}

int server_link_setup(struct serpensd *d)
{
	struct rte_ether_addr mac;
	int ret;

	SD = d;
	memset(dest_now, SL_LOCAL, sizeof(dest_now));
	if (sl_role == SL_NONE) {
		if (npeers || self.ip)
			fprintf(stderr, "serpensd: --link-ip and --link-peer need --link gateway|worker\n");
		return npeers || self.ip ? -1 : 0;
	}
	if (!self.ip || !npeers) {
		fprintf(stderr, "serpensd: --link %s needs --link-ip and at least one --link-peer\n",
			sl_role == SL_GATEWAY ? "gateway" : "worker");
		return -1;
	}
	if (sl_role == SL_WORKER && npeers != 1) {
		fprintf(stderr, "serpensd: --link worker has one peer, its gateway (%u given)\n", npeers);
		return -1;
	}
	if (rte_eth_dev_get_port_by_name(link_dev, &link_port) != 0) {
		fprintf(stderr, "serpensd: --link: no link port %s: pass --vdev %s,iface=IFNAME (or --link-port and the "
			"device)\n", link_dev, SL_LINK_VDEV);
		return -1;
	}
	/* the gateway's port 0 is the generator's memif, its link another port; a worker has the link only */
	if ((sl_role == SL_GATEWAY) != (link_port != 0)) {
		fprintf(stderr, "serpensd: --link %s: the link port is port %u; the gateway needs the generator's port "
			"first, a worker the link alone\n", sl_role == SL_GATEWAY ? "gateway" : "worker", link_port);
		return -1;
	}
	tag_off = sp_chain_tag_register();
	if (tag_off < 0) {
		fprintf(stderr, "serpensd: --link: cannot register the tag field: %s\n", rte_strerror(rte_errno));
		return -1;
	}
	if (rte_eth_macaddr_get(link_port, &mac) != 0) {
		fprintf(stderr, "serpensd: --link: cannot read the link port's MAC\n");
		return -1;
	}
	memcpy(self.mac, mac.addr_bytes, 6);
	{
		struct rte_eth_dev_info info;

		if (rte_eth_dev_info_get(link_port, &info) == 0)
			link_ifindex = (int)info.if_index;
	}
	if (sl_role == SL_WORKER) {
		if (!rte_eth_add_tx_callback(link_port, 0, worker_encap, NULL)) {
			fprintf(stderr, "serpensd: --link worker: cannot add the encapsulation: %s\n",
				rte_strerror(rte_errno));
			return -1;
		}
		return 0;
	}
	port_configure(link_port, d->pool);
	ret = port_start(link_port, 0);
	if (ret != 0) {
		fprintf(stderr, "serpensd: --link: link port start failed: %s\n", rte_strerror(-ret));
		return -1;
	}
	return 0;
}

void server_link_shutdown(void)
{
	if (sl_role == SL_GATEWAY)
		port_shutdown(link_port);
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
				C.pinned_moves++; /* its bucket moved since: it stays (counted: flows kept back) */
			return e->dest;
		}
		if (!victim || e->seen < victim->seen) /* empty (seen 0), else the oldest */
			victim = e;
	}
	if (victim->flow && now - victim->seen < idle)
		C.pin_evictions++;
	*victim = (struct lpin){.flow = key, .sfc = (uint8_t)sfc, .dest = (int8_t)dest, .seen = now};
	return dest;
}

/* gateway: classify, and send the packets of remote buckets (or flows pinned there) over the link */
static unsigned int gateway_route(struct serpensd *d, struct rte_mbuf **m, unsigned int n)
{
	const struct link_table *lt = __atomic_load_n(&LT, __ATOMIC_ACQUIRE);
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
		dest = pinned_dest(lt, rt->sfc_id[si], h, now);
		if (dest == SL_LOCAL) {
			m[keep++] = m[i];
			continue;
		}
		d->ctl->sfcs[rt->sfc_id[si]].rx++;
		C.sfc_remote_rx[rt->sfc_id[si]]++;
		inner = rte_pktmbuf_pkt_len(m[i]);
		hdr = (uint8_t *)rte_pktmbuf_prepend(m[i], VX_HDR_LEN);
		if (!hdr || m[i]->nb_segs != 1) {
			C.to_dropped[dest]++; /* no headroom: never with the pool's 128 bytes */
			rte_pktmbuf_free(m[i]);
			continue;
		}
		vx_write(hdr, &self, &peer[dest], (uint16_t)rt->sfc_id[si], h, inner);
		out[dest][nout[dest]++] = m[i];
	}
	for (k = 0; k < npeers; k++) {
		if (!nout[k])
			continue;
		sent = rte_eth_tx_burst(link_port, 0, out[k], nout[k]);
		C.to[k] += sent;
		if (sent < nout[k]) {
			C.to_dropped[k] += nout[k] - sent;
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

	C.rx_frames++;
	v = m->nb_segs == 1 ? vx_parse(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m), self.ip, vi)
			    : VX_BAD;
	if (v != VX_OK) {
		if (v == VX_NOT_VXLAN)
			C.not_vxlan++;
		else if (v == VX_NOT_MINE)
			C.not_mine++;
		else
			C.bad++;
		rte_pktmbuf_free(m);
		return -1;
	}
	if (vi->sfc >= SP_MAX_SFCS || !SD->ctl->sfcs[vi->sfc].used) {
		C.unknown_sfc++;
		rte_pktmbuf_free(m);
		return -1;
	}
	for (k = 0; k < npeers && peer[k].ip != vi->src_ip; k++)
		;
	if (k < npeers)
		C.from[k]++;
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
			C.tag_mismatch++;
			rte_pktmbuf_free(m[i]);
			continue;
		}
		C.decap++;
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

	nb = rte_eth_rx_burst(link_port, 0, m, DP_BURST);
	if (!nb)
		return 0;
	for (i = 0; i < nb; i++) {
		if (decap(m[i], &vi) != 0)
			continue;
		C.decap++;
		sfc[keep] = vi.sfc;
		m[keep++] = m[i];
	}
	if (!keep)
		return nb;
	sent = rte_eth_tx_burst(0, 0, m, (uint16_t)keep);
	for (i = 0; i < sent; i++) {
		d->ctl->sfcs[sfc[i]].tx++;
		C.sfc_remote_tx[sfc[i]]++;
	}
	d->port_tx += sent;
	C.out_sent += sent;
	if (sent < keep) {
		C.out_dropped += keep - sent;
		d->port_tx_dropped += keep - sent;
		rte_pktmbuf_free_bulk(m + sent, keep - sent);
	}
	return nb;
}

/* ------------------------------------------------------------------------------------------------ */
/* control                                                                                          */

static void grace_period(void)
{
	uint64_t e = __atomic_load_n(&D->dp_epoch, __ATOMIC_ACQUIRE), t0 = mono_ns();

	if (!__atomic_load_n(&D->dp_running, __ATOMIC_ACQUIRE))
		return;
	while (__atomic_load_n(&D->dp_epoch, __ATOMIC_ACQUIRE) < e + 2 && mono_ns() - t0 < 1000000000ull)
		sleep_us(20);
}

static void publish(void)
{
	struct link_table *lt = calloc(1, sizeof(*lt)), *old;
	unsigned int s, b;

	if (!lt)
		return;
	memcpy(lt->dest, dest_now, sizeof(dest_now));
	for (s = 0; s < SP_MAX_SFCS; s++)
		for (b = 0; b < RT_BUCKETS; b++)
			lt->remote |= dest_now[s][b] != SL_LOCAL;
	old = __atomic_exchange_n(&LT, lt, __ATOMIC_ACQ_REL);
	grace_period();
	free(old);
}

/* {"cmd":"link_route","sfc":NAME,"server":K,"buckets":[b,...]|absent (all)}: buckets of the SFC go to
 * server K (1.. the gateway's --link-peer order; 0: this server's own instances). Flows already seen stay
 * where they are (the flow table); only new flows follow. Reply: "buckets" moved. */
static json_t *link_route(json_t *req)
{
	static const char *const known[] = {"cmd", "sfc", "server", "buckets", NULL};
	const char *name = json_string_value(json_object_get(req, "sfc"));
	json_t *err, *bl = json_object_get(req, "buckets"), *v;
	json_int_t server;
	bool sel[RT_BUCKETS];
	unsigned int b, moved = 0;
	size_t i;
	int sfc;

	if ((err = only_fields(req, "link_route", known)))
		return err;
	if (sl_role != SL_GATEWAY)
		return fail("link_route: this serpensd is not a gateway (--link gateway)");
	sfc = find_sfc(name ? name : "");
	if (sfc < 0)
		return fail("link_route: no SFC named '%s' is deployed", name ? name : "");
	if (!json_object_get(req, "server"))
		return fail("link_route: 'server' (0: local, 1..%u: a --link-peer) is required", npeers);
	if ((err = int_field(req, "link_route", "server", 0, npeers, 0, &server)))
		return err;
	memset(sel, !bl, sizeof(sel));
	if (bl) {
		if (!json_is_array(bl) || json_array_size(bl) == 0)
			return fail("link_route: 'buckets' is a non-empty list of bucket numbers 0..%d", RT_BUCKETS - 1);
		json_array_foreach(bl, i, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= RT_BUCKETS)
				return fail("link_route: 'buckets' is a list of bucket numbers 0..%d", RT_BUCKETS - 1);
			sel[json_integer_value(v)] = true;
		}
	}
	for (b = 0; b < RT_BUCKETS; b++)
		if (sel[b] && dest_now[sfc][b] != (int8_t)(server - 1)) {
			dest_now[sfc][b] = (int8_t)(server - 1);
			moved++;
		}
	publish();
	return json_pack("{s:b, s:i}", "ok", 1, "buckets", moved);
}

json_t *server_link_request(json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (!strcmp(cmd, "link_route"))
		return link_route(req);
	return fail("unknown command '%s'", cmd);
}

/* A frame that finds the af_packet rx ring full is dropped by the kernel, and this DPDK's af_packet PMD does
 * not report it (imissed stays 0): without this a loss on the link would be unaccounted for. The kernel
 * counts it per packet socket (PACKET_STATISTICS, cleared by each read), so the control thread finds this
 * process's packet sockets on the link's interface and adds their drops up. A reader that also read them
 * (a PMD that reports imissed) would get each drop once, never both. */
static void ring_drops_read(void)
{
	DIR *dir;
	struct dirent *e;

	if (!link_ifindex || !(dir = opendir("/proc/self/fd")))
		return;
	while ((e = readdir(dir))) {
		struct sockaddr_ll sll;
		struct tpacket_stats st;
		socklen_t sl = sizeof(sll), stl = sizeof(st);
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(dir))
			continue;
		if (getsockname(fd, (struct sockaddr *)&sll, &sl) != 0 || sll.sll_family != AF_PACKET ||
		    sll.sll_ifindex != link_ifindex)
			continue;
		if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &stl) == 0)
			ring_drops += st.tp_drops;
	}
	closedir(dir);
}

static json_t *u64(uint64_t v) { return json_integer((json_int_t)v); }

static json_t *port_json(uint16_t port)
{
	struct rte_eth_stats st;

	port_stats(port, &st);
	return json_pack("{s:o, s:o, s:o, s:o, s:o}", "ipackets", u64(st.ipackets), "opackets", u64(st.opackets),
			 "imissed", u64(st.imissed), "ierrors", u64(st.ierrors), "oerrors", u64(st.oerrors));
}

static json_t *ip_json(uint32_t ip)
{
	char buf[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &ip, buf, sizeof(buf));
	return json_string(buf);
}

json_t *server_link_stats(void)
{
	json_t *rep, *rx, *peers, *sfcs;
	unsigned int k, s, b, remote;

	if (sl_role == SL_NONE)
		return json_null();
	ring_drops_read();
	rx = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "frames", u64(C.rx_frames), "not_vxlan",
		       u64(C.not_vxlan), "not_mine", u64(C.not_mine), "bad", u64(C.bad), "unknown_sfc", u64(C.unknown_sfc), "tag_mismatch", u64(C.tag_mismatch),
		       "decapsulated", u64(C.decap));
	rep = json_pack("{s:s, s:o, s:i, s:o, s:o, s:o}", "role", sl_role == SL_GATEWAY ? "gateway" : "worker", "ip",
			ip_json(self.ip), "port", link_port, "port_stats", port_json(link_port), "ring_drops",
			u64(ring_drops), "rx", rx);
	peers = json_array();
	/* per peer: frames sent to it (a worker sends everything to its gateway: its port's counts) and
	 * tunnel frames received from it */
	for (k = 0; k < npeers; k++)
		json_array_append_new(peers, json_pack("{s:i, s:o, s:o, s:o, s:o}", "server",
						       sl_role == SL_GATEWAY ? k + 1 : 0, "ip", ip_json(peer[k].ip),
						       "sent", u64(sl_role == SL_GATEWAY ? C.to[k] : SD->port_tx),
						       "dropped", u64(sl_role == SL_GATEWAY ? C.to_dropped[k]
											   : SD->port_tx_dropped),
						       "received", u64(C.from[k])));
	json_object_set_new(rep, "peers", peers);
	if (sl_role == SL_WORKER) {
		json_object_set_new(rep, "tx", json_pack("{s:o, s:o, s:o, s:o}", "encapsulated", u64(C.encap),
							 "encap_failed", u64(C.encap_failed), "sent",
							 u64(SD->port_tx), "dropped", u64(SD->port_tx_dropped)));
		return rep;
	}
	json_object_set_new(rep, "out", json_pack("{s:o, s:o}", "sent", u64(C.out_sent), "dropped",
						  u64(C.out_dropped)));
	json_object_set_new(rep, "flows", json_pack("{s:o, s:o}", "evictions", u64(C.pin_evictions),
						    "kept_back", u64(C.pinned_moves)));
	sfcs = json_array();
	for (s = 0; s < SP_MAX_SFCS; s++) {
		json_t *servers;

		if (!SD->ctl->sfcs[s].used)
			continue;
		servers = json_array();
		for (k = 0; k <= npeers; k++) {
			for (b = 0, remote = 0; b < RT_BUCKETS; b++)
				remote += dest_now[s][b] == (int8_t)((int)k - 1);
			if (remote)
				json_array_append_new(servers, json_pack("{s:i, s:i}", "server", k, "buckets", remote));
		}
		json_array_append_new(sfcs, json_pack("{s:i, s:s, s:o, s:o, s:o}", "id", s, "name",
						      SD->ctl->sfcs[s].name, "remote_rx", u64(C.sfc_remote_rx[s]),
						      "remote_tx", u64(C.sfc_remote_tx[s]), "servers", servers));
	}
	json_object_set_new(rep, "sfcs", sfcs);
	return rep;
}
