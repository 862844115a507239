/*
 * nat.c: the NAT of the paper's Fig. 9 (source NAT with a release-consistency pool of IPs/ports).
 *
 * Arguments:
 *   external_ip  the public address(es) flows are translated to: "198.18.1.1" or a comma list (<= 16);
 *   ports        the port range of every external address, "lo-hi" (default "1024-65535");
 *   cluster_id   the key of the pool in the pool table (default 0).
 *
 * Tables (all keys and values in network byte order, as in the packet):
 *   nat_pool  global|write|release, key cluster_id (u32) -> struct sp_pool of free items, one item per
 *             address/port pair: ip_index << 16 | port. Default hooks: each instance owns a sub-pool.
 *   nat_map   per-flow|write, key the inside flow (struct sp_flow) -> its external {ip, port};
 *   nat_rev   per-flow|write, key the reply flow as it arrives from outside (src = the remote end,
 *             dst = external ip/port) -> the inside {ip, port}.
 *
 * Handler, as Fig. 9: a packet whose destination is not an external address is outbound: look up its
 * mapping; for a new flow take an item from this instance's sub-pool, trigger() a redistribution when
 * the sub-pool is empty and try once more, drop if the pool is truly exhausted; store both mappings;
 * rewrite the source. A packet to an external address is inbound: its reverse mapping rewrites the
 * destination back, and an unknown one is dropped. IPv4 and UDP/TCP checksums are updated
 * incrementally (RFC 1624); a UDP checksum of 0 ("none") stays 0. Only headers are touched.
 *
 * Mappings are never deleted (the evaluation's flows do not end), so the pool bounds the flows: the
 * per-flow tables are sized to the pool. Other frames: non-IPv4 frames pass untouched (the NAT only
 * translates IPv4); IPv4 that is not UDP/TCP, IP fragments and truncated headers are dropped, since
 * they cannot be translated by port and must not leak inside addresses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include "serpens/nf.h"

#define NAT_MAX_IPS 16

/* An address/port pair, network byte order; the value of nat_map and nat_rev. */
struct nat_addr {
	uint32_t ip;
	uint16_t port;
	uint16_t pad;
};

static sp_table *pool_table, *mapping_table, *reverse_table;
static uint32_t cluster_id;
static uint32_t external_ip[NAT_MAX_IPS]; /* network byte order */
static unsigned int n_external;

static int parse_u32(const char *s, uint32_t max, uint32_t *out, char **end)
{
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, end, 10);
	if (errno != 0 || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_external_ips(const char *list)
{
	char addr[INET_ADDRSTRLEN];
	const char *p = list, *end;
	struct in_addr a;
	size_t len;

	n_external = 0;
	for (;;) {
		end = strchr(p, ',');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len == 0 || len >= sizeof(addr) || n_external == NAT_MAX_IPS)
			return -1;
		memcpy(addr, p, len);
		addr[len] = '\0';
		if (inet_pton(AF_INET, addr, &a) != 1)
			return -1;
		external_ip[n_external++] = a.s_addr;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

static int parse_ports(const char *s, uint32_t *lo, uint32_t *hi)
{
	char *end;

	if (parse_u32(s, 65535, lo, &end) != 0 || *end != '-' ||
	    parse_u32(end + 1, 65535, hi, &end) != 0 || *end != '\0' || *hi < *lo || *lo == 0)
		return -1;
	return 0;
}

/* Fig. 9 line 4: every external address x every port, taken from the top of the stack first so the
 * first flows get the first address and the lowest ports. */
static struct sp_pool *build_pool(uint32_t lo, uint32_t hi)
{
	uint32_t nports = hi - lo + 1, cap = n_external * nports, i;
	struct sp_pool *pool = malloc(SP_POOL_SIZE(cap));

	if (pool == NULL)
		return NULL;
	pool->cap = cap;
	pool->nfree = cap;
	for (i = 0; i < cap; i++) {
		uint32_t k = cap - 1 - i; /* item[cap-1] is taken first */

		pool->item[i] = (k / nports) << 16 | (lo + k % nports);
	}
	return pool;
}

static int nat_init(void)
{
	const char *ext = sp_arg("external_ip"), *ports = sp_arg("ports"), *cid = sp_arg("cluster_id");
	struct sp_table_opts opts;
	struct sp_pool *pool;
	uint32_t lo = 1024, hi = 65535, cap;
	char *end;
	int rc;

	if (ext == NULL || parse_external_ips(ext) != 0) {
		sp_log("external_ip: want one to %d IPv4 addresses separated by ',', got '%s'", NAT_MAX_IPS,
		       ext != NULL ? ext : "(none)");
		return -EINVAL;
	}
	if (ports != NULL && parse_ports(ports, &lo, &hi) != 0) {
		sp_log("ports: want a range 'lo-hi' within 1-65535, got '%s'", ports);
		return -EINVAL;
	}
	cluster_id = 0;
	if (cid != NULL && (parse_u32(cid, UINT32_MAX, &cluster_id, &end) != 0 || *end != '\0')) {
		sp_log("cluster_id: want an unsigned number, got '%s'", cid);
		return -EINVAL;
	}
	cap = n_external * (hi - lo + 1);

	/* Fig. 9 lines 2-3 (plus the reverse table that line 25 writes). */
	opts = (struct sp_table_opts){.key_size = sizeof(cluster_id), .value_size = SP_POOL_SIZE(cap),
				      .capacity = 1};
	pool_table = sp_create_table("nat_pool", SP_GLOBAL | SP_WRITE | SP_RELEASE, &opts);
	opts = (struct sp_table_opts){.key_size = sizeof(struct sp_flow),
				      .value_size = sizeof(struct nat_addr), .capacity = cap};
	mapping_table = sp_create_table("nat_map", SP_PER_FLOW | SP_WRITE, &opts);
	reverse_table = sp_create_table("nat_rev", SP_PER_FLOW | SP_WRITE, &opts);
	if (pool_table == NULL || mapping_table == NULL || reverse_table == NULL)
		return -ENOMEM;

	/* Fig. 9 lines 4-5, at deployment only: in an instance the pool exists and init's write would be
	 * skipped, and building its 64 512 items (a 252 KiB buffer) was most of a FW->MON->NAT start's init */
	if (!sp_deploying())
		return 0;
	pool = build_pool(lo, hi);
	if (pool == NULL)
		return -ENOMEM;
	rc = sp_put_state(pool_table, &cluster_id, pool);
	free(pool);
	if (rc != 0)
		sp_log("put_state(nat_pool): %d", rc);
	return rc;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), on 16-bit words as stored (the one's complement sum does
 * not depend on byte order as long as every word is read the same way). */
static uint16_t csum_replace16(uint16_t cs, uint16_t old, uint16_t new)
{
	uint32_t s = (uint32_t)(uint16_t)~cs + (uint16_t)~old + new;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint16_t csum_replace32(uint16_t cs, uint32_t old, uint32_t new)
{
	cs = csum_replace16(cs, (uint16_t)old, (uint16_t)new);
	return csum_replace16(cs, (uint16_t)(old >> 16), (uint16_t)(new >> 16));
}

/* Replace the source (dst = 0) or destination (dst = 1) address and port of the packet, fixing the IP
 * checksum and the L4 checksum (whose pseudo-header covers the address). */
static void rewrite(uint8_t *ip, uint8_t *l4, uint8_t proto, int dst, const struct nat_addr *to)
{
	uint8_t *ip_field = ip + (dst ? 16 : 12), *port_field = l4 + (dst ? 2 : 0);
	uint8_t *l4_csum = l4 + (proto == SP_PROTO_TCP ? 16 : 6);
	uint16_t cs, old_port;
	uint32_t old_ip;

	memcpy(&old_ip, ip_field, 4);
	memcpy(&old_port, port_field, 2);

	memcpy(&cs, ip + 10, 2);
	cs = csum_replace32(cs, old_ip, to->ip);
	memcpy(ip + 10, &cs, 2);

	memcpy(&cs, l4_csum, 2);
	if (proto == SP_PROTO_TCP || cs != 0) {
		cs = csum_replace32(cs, old_ip, to->ip);
		cs = csum_replace16(cs, old_port, to->port);
		if (proto == SP_PROTO_UDP && cs == 0)
			cs = 0xffff; /* RFC 768: a computed 0 is sent as all ones */
		memcpy(l4_csum, &cs, 2);
	}

	memcpy(ip_field, &to->ip, 4);
	memcpy(port_field, &to->port, 2);
}

static int is_external(uint32_t ip)
{
	unsigned int i;

	for (i = 0; i < n_external; i++)
		if (external_ip[i] == ip)
			return 1;
	return 0;
}

/* Fig. 9 lines 12-25 for a new outbound flow f: allocate an address/port and store both mappings. */
static int allocate(const struct sp_flow *f, struct nat_addr *out)
{
	struct nat_addr inside = {.ip = f->src_ip, .port = f->src_port};
	struct sp_pool *pool;
	struct sp_flow rkey;
	uint32_t item;

	pool = sp_get_state(pool_table, &cluster_id);
	if (pool == NULL || sp_pool_take(pool, &item) != 0) {
		sp_trigger(pool_table, &cluster_id);
		pool = sp_get_state(pool_table, &cluster_id);
		if (pool == NULL || sp_pool_take(pool, &item) != 0)
			return -1;
	}
	if (sp_put_state(pool_table, &cluster_id, pool) != 0)
		return -1;

	memset(out, 0, sizeof(*out));
	out->ip = external_ip[item >> 16];
	out->port = htons((uint16_t)item);
	sp_flow_reverse(f, &rkey);
	rkey.dst_ip = out->ip;
	rkey.dst_port = out->port;
	if (sp_put_state(mapping_table, f, out) != 0)
		goto give_back;
	if (sp_put_state(reverse_table, &rkey, &inside) != 0) {
		sp_delete_state(mapping_table, f);
		goto give_back;
	}
	return 0;

give_back: /* a per-flow table is full: return the item so the pool stays exact */
	sp_pool_give(pool, item);
	sp_put_state(pool_table, &cluster_id, pool);
	return -1;
}

static int nat_handler(struct sp_pkt *pkt)
{
	const struct nat_addr *to;
	struct nat_addr fresh;
	struct sp_flow f;
	uint8_t *ip;
	int l4;

	if (sp_flow_of(pkt, &f) != 0)
		return sp_l3_offset(pkt) < 0 ? SP_PASS : SP_DROP; /* non-IPv4 passes, bad IPv4 drops */
	ip = pkt->data + SP_ETH_HLEN;
	if (f.proto != SP_PROTO_TCP && f.proto != SP_PROTO_UDP)
		return SP_DROP;
	if ((ip[6] & 0x3f) != 0 || ip[7] != 0) /* MF or a fragment offset */
		return SP_DROP;
	l4 = sp_l4_offset(pkt);
	if (f.proto == SP_PROTO_TCP && (uint32_t)l4 + 20 > pkt->len)
		return SP_DROP;

	if (is_external(f.dst_ip)) { /* inbound: back to the inside host */
		to = sp_get_state(reverse_table, &f);
		if (to == NULL)
			return SP_DROP;
		rewrite(ip, pkt->data + l4, f.proto, 1, to);
		return SP_PASS;
	}
	to = sp_get_state(mapping_table, &f);
	if (to == NULL) {
		if (allocate(&f, &fresh) != 0)
			return SP_DROP;
		to = &fresh;
	}
	rewrite(ip, pkt->data + l4, f.proto, 0, to);
	return SP_PASS;
}

SP_NF("nat", nat_init, nat_handler);
SP_NF_ARGS("external_ip", "ports", "cluster_id");
