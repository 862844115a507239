/*
 * server_link_ctl.c: the control side of the server link (server_link.h, docs/multiserver.md): the
 * gateway's link_route request (which server serves which Router buckets of an SFC, published to the
 * data path like routes.c's table) and stats.link, the per-hop counters of both roles. The data path is
 * server_link.c.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/if_packet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <rte_ethdev.h>

#include "control_int.h"
#include "port.h"
#include "server_link_int.h"

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

static struct sl_steer steer_now[SL_MAX_STEER];
static unsigned int nsteer_now;

static void publish(void)
{
	struct link_table *lt = calloc(1, sizeof(*lt)), *old;
	unsigned int s, b;

	if (!lt)
		return;
	memcpy(lt->dest, sl_dest_now, sizeof(sl_dest_now));
	for (s = 0; s < SP_MAX_SFCS; s++)
		for (b = 0; b < RT_BUCKETS; b++)
			lt->remote |= sl_dest_now[s][b] != SL_LOCAL;
	memcpy(lt->steer, steer_now, sizeof(steer_now));
	lt->nsteer = nsteer_now;
	lt->remote |= nsteer_now > 0;
	old = __atomic_exchange_n(&sl_table, lt, __ATOMIC_ACQ_REL);
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
		return fail("link_route: 'server' (0: local, 1..%u: a --link-peer) is required", SL.npeers);
	if ((err = int_field(req, "link_route", "server", 0, SL.npeers, 0, &server)))
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
		if (sel[b] && sl_dest_now[sfc][b] != (int8_t)(server - 1)) {
			sl_dest_now[sfc][b] = (int8_t)(server - 1);
			moved++;
		}
	publish();
	return json_pack("{s:b, s:i}", "ok", 1, "buckets", moved);
}

/* {"cmd":"link_steer","sfc":NAME,"dst":"A.B.C.D","server":K,"ports":[[lo,hi],...]}: packets of the SFC to
 * dst with a destination port in those ranges go to server K (0: this server's own instances), whatever
 * their bucket. Reply: "ports" changed. At most SL_MAX_STEER (SFC, dst) pairs. */
static json_t *link_steer(json_t *req)
{
	static const char *const known[] = {"cmd", "sfc", "dst", "server", "ports", NULL};
	const char *name = json_string_value(json_object_get(req, "sfc"));
	const char *dst = json_string_value(json_object_get(req, "dst"));
	json_t *err, *pl = json_object_get(req, "ports"), *v;
	struct sl_steer *st = NULL;
	json_int_t server;
	struct in_addr a;
	unsigned int i, changed = 0;
	size_t j;
	int sfc;

	if ((err = only_fields(req, "link_steer", known)))
		return err;
	if (sl_role != SL_GATEWAY)
		return fail("link_steer: this serpensd is not a gateway (--link gateway)");
	sfc = find_sfc(name ? name : "");
	if (sfc < 0)
		return fail("link_steer: no SFC named '%s' is deployed", name ? name : "");
	if (!dst || inet_pton(AF_INET, dst, &a) != 1)
		return fail("link_steer: 'dst' is an IPv4 address");
	if (!json_object_get(req, "server"))
		return fail("link_steer: 'server' (0: local, 1..%u: a --link-peer) is required", SL.npeers);
	if ((err = int_field(req, "link_steer", "server", 0, SL.npeers, 0, &server)))
		return err;
	if (!json_is_array(pl) || json_array_size(pl) == 0)
		return fail("link_steer: 'ports' is a non-empty list of [lo, hi] port ranges");
	json_array_foreach(pl, j, v) {
		json_t *lo = json_array_get(v, 0), *hi = json_array_get(v, 1);

		if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(lo) || !json_is_integer(hi) ||
		    json_integer_value(lo) < 0 || json_integer_value(hi) > 65535 ||
		    json_integer_value(lo) > json_integer_value(hi))
			return fail("link_steer: 'ports' is a list of [lo, hi] ranges, 0 <= lo <= hi <= 65535");
	}
	for (i = 0; i < nsteer_now && !st; i++)
		if (steer_now[i].sfc == sfc && steer_now[i].dst == a.s_addr)
			st = &steer_now[i];
	if (!st) {
		if (nsteer_now == SL_MAX_STEER)
			return fail("link_steer: %d (SFC, address) pairs are steered already", SL_MAX_STEER);
		st = &steer_now[nsteer_now++];
		st->sfc = (uint16_t)sfc;
		st->dst = a.s_addr;
		memset(st->dest, SL_NO_STEER, sizeof(st->dest));
	}
	json_array_foreach(pl, j, v) {
		json_int_t p, hi = json_integer_value(json_array_get(v, 1));

		for (p = json_integer_value(json_array_get(v, 0)); p <= hi; p++)
			if (st->dest[p] != (int8_t)(server - 1)) {
				st->dest[p] = (int8_t)(server - 1);
				changed++;
			}
	}
	publish();
	return json_pack("{s:b, s:i}", "ok", 1, "ports", changed);
}

json_t *server_link_request(json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));

	if (!strcmp(cmd, "link_route"))
		return link_route(req);
	if (!strcmp(cmd, "link_steer"))
		return link_steer(req);
	return fail("unknown command '%s'", cmd);
}

/* A frame that finds the af_packet rx ring full is dropped by the kernel, and this DPDK's af_packet PMD does
 * not report it (imissed stays 0): without this a loss on the link would be unaccounted for. The kernel
 * counts it per packet socket (PACKET_STATISTICS, cleared by each read), so the control thread finds this
 * process's packet sockets on the interface and adds their drops up: the drops since the last call for that
 * interface. A reader that also read them (a PMD that reports imissed) would get each drop once, never
 * both. Also serpensd's port 0 when it is af_packet on a testbed NIC (control_stats.c). */
uint64_t af_packet_ring_drops(int ifindex)
{
	DIR *dir;
	struct dirent *e;
	uint64_t drops = 0;

	if (!ifindex || !(dir = opendir("/proc/self/fd")))
		return 0;
	while ((e = readdir(dir))) {
		struct sockaddr_ll sll;
		struct tpacket_stats st;
		socklen_t sl = sizeof(sll), stl = sizeof(st);
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd == dirfd(dir))
			continue;
		if (getsockname(fd, (struct sockaddr *)&sll, &sl) != 0 || sll.sll_family != AF_PACKET ||
		    sll.sll_ifindex != ifindex)
			continue;
		if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &stl) == 0)
			drops += st.tp_drops;
	}
	closedir(dir);
	return drops;
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
	SL.ring_drops += af_packet_ring_drops(SL.ifindex);
	rx = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "frames", u64(SLC.rx_frames), "not_vxlan",
		       u64(SLC.not_vxlan), "not_mine", u64(SLC.not_mine), "bad", u64(SLC.bad), "unknown_sfc",
		       u64(SLC.unknown_sfc), "tag_mismatch", u64(SLC.tag_mismatch),
		       "decapsulated", u64(SLC.decap));
	rep = json_pack("{s:s, s:o, s:i, s:o, s:o, s:o}", "role", sl_role == SL_GATEWAY ? "gateway" : "worker", "ip",
			ip_json(SL.self.ip), "port", SL.port, "port_stats", port_json(SL.port), "ring_drops",
			u64(SL.ring_drops), "rx", rx);
	peers = json_array();
	/* per peer: frames sent to it (a worker sends everything to its gateway: its port's counts) and
	 * tunnel frames received from it */
	for (k = 0; k < SL.npeers; k++)
		json_array_append_new(peers, json_pack("{s:i, s:o, s:o, s:o, s:o}", "server",
						       sl_role == SL_GATEWAY ? k + 1 : 0, "ip", ip_json(SL.peer[k].ip),
						       "sent", u64(sl_role == SL_GATEWAY ? SLC.to[k] : SL.d->port_tx),
						       "dropped", u64(sl_role == SL_GATEWAY ? SLC.to_dropped[k]
											   : SL.d->port_tx_dropped),
						       "received", u64(SLC.from[k])));
	json_object_set_new(rep, "peers", peers);
	if (sl_role == SL_WORKER) {
		json_object_set_new(rep, "tx", json_pack("{s:o, s:o, s:o, s:o}", "encapsulated", u64(SLC.encap),
							 "encap_failed", u64(SLC.encap_failed), "sent",
							 u64(SL.d->port_tx), "dropped", u64(SL.d->port_tx_dropped)));
		return rep;
	}
	json_object_set_new(rep, "out", json_pack("{s:o, s:o}", "sent", u64(SLC.out_sent), "dropped",
						  u64(SLC.out_dropped)));
	json_object_set_new(rep, "flows", json_pack("{s:o, s:o, s:o}", "evictions", u64(SLC.pin_evictions),
						    "kept_back", u64(SLC.pinned_moves), "steered", u64(SLC.steered)));
	sfcs = json_array();
	for (s = 0; s < SP_MAX_SFCS; s++) {
		json_t *servers;

		if (!SL.d->ctl->sfcs[s].used)
			continue;
		servers = json_array();
		for (k = 0; k <= SL.npeers; k++) {
			for (b = 0, remote = 0; b < RT_BUCKETS; b++)
				remote += sl_dest_now[s][b] == (int8_t)((int)k - 1);
			if (remote)
				json_array_append_new(servers, json_pack("{s:i, s:i}", "server", k, "buckets", remote));
		}
		json_array_append_new(sfcs, json_pack("{s:i, s:s, s:o, s:o, s:o}", "id", s, "name",
						      SL.d->ctl->sfcs[s].name, "remote_rx", u64(SLC.sfc_remote_rx[s]),
						      "remote_tx", u64(SLC.sfc_remote_tx[s]), "servers", servers));
	}
	json_object_set_new(rep, "sfcs", sfcs);
	return rep;
}
