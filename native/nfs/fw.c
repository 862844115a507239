/*
 * fw.c: the Firewall of the paper's evaluation (Section V: "5-tuple hash match on black/white lists").
 *
 * Rules come from deployment arguments, each a semicolon-separated list of 5-tuple rules
 * "proto,src_ip,src_port,dst_ip,dst_port":
 *   blacklist   matching flows are dropped;
 *   whitelist   if given, only matching flows pass (unless mode says otherwise);
 *   suspicious  matching flows pass with verdict FW_SUSPICIOUS (1), which the selector
 *               "fw.suspicious" sends to branch 0 of a distribute() (e.g. an IDS, paper Fig. 6b);
 *   mode        "allow" or "deny": the verdict of a flow no blacklist/whitelist rule matches.
 *               Default: "deny" when a whitelist is given, "allow" otherwise.
 * A field is a number/address, '*' (any), an address prefix "16.0.0.0/8", or a port range "1000-2000";
 * proto may also be "tcp" or "udp". Blacklist beats whitelist beats the default; suspicious marks a
 * flow that passes.
 *
 * Where rules live. Rules whose five fields are all exact are per-flow read state (paper Table III,
 * "connection black/white lists") and go into a global|read hash table keyed by struct sp_flow, whose
 * value is the OR of the lists the flow is on: one hash lookup per packet, on every platform's state
 * store. Rules with a wildcard cannot be found by hashing a packet's 5-tuple; they are kept in a small
 * array in this process's memory, built by init from the same arguments in every process that runs
 * the FW. That is exactly what the paper prescribes for global/read state ("maintain a copy of this
 * state in each instance"), the handler scans it without a table lookup per rule, and nf.h has no way
 * to iterate a table anyway.
 *
 * Frames that are not IPv4 (or are truncated) get the default verdict of mode.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "serpens/nf.h"

#define FW_SUSPICIOUS 1

/* Bits of a rule's action, OR-ed in the exact table's values. */
#define FW_BLACK 1u
#define FW_WHITE 2u
#define FW_SUSP 4u

#define FW_MAX_WILDCARD 256
#define FW_RULE_MAX_LEN 160

/* One rule: addresses as value/mask, ports as inclusive ranges, all in host byte order. */
struct fw_rule {
	uint32_t src_ip, src_mask;
	uint32_t dst_ip, dst_mask;
	uint16_t sport_lo, sport_hi;
	uint16_t dport_lo, dport_hi;
	uint8_t proto;
	uint8_t proto_any;
	uint8_t action;
};

static sp_table *exact_table;
static struct fw_rule wildcard[FW_MAX_WILDCARD];
static unsigned int n_wildcard;
static int default_verdict;

static const char *skip_space(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
		s++;
	return s;
}

static const char *trim_end(const char *s, const char *end)
{
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		end--;
	return end;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || *out > max)
		return -1;
	return 0;
}

static int parse_proto(const char *s, struct fw_rule *r)
{
	unsigned long v;

	r->proto_any = 0;
	if (strcmp(s, "*") == 0) {
		r->proto_any = 1;
		r->proto = 0;
		return 0;
	}
	if (strcasecmp(s, "tcp") == 0)
		v = SP_PROTO_TCP;
	else if (strcasecmp(s, "udp") == 0)
		v = SP_PROTO_UDP;
	else if (parse_uint(s, 255, &v) != 0)
		return -1;
	r->proto = (uint8_t)v;
	return 0;
}

static int parse_addr(char *s, uint32_t *ip, uint32_t *mask)
{
	char *slash = strchr(s, '/');
	unsigned long len = 32;
	struct in_addr a;

	if (strcmp(s, "*") == 0) {
		*ip = 0;
		*mask = 0;
		return 0;
	}
	if (slash != NULL) {
		*slash = '\0';
		if (parse_uint(slash + 1, 32, &len) != 0)
			return -1;
	}
	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*mask = len == 0 ? 0 : ~0u << (32 - len);
	*ip = ntohl(a.s_addr) & *mask;
	return 0;
}

static int parse_ports(char *s, uint16_t *lo, uint16_t *hi)
{
	char *dash = strchr(s, '-');
	unsigned long a, b;

	if (strcmp(s, "*") == 0) {
		*lo = 0;
		*hi = 65535;
		return 0;
	}
	if (dash != NULL)
		*dash = '\0';
	if (parse_uint(s, 65535, &a) != 0)
		return -1;
	b = a;
	if (dash != NULL && parse_uint(dash + 1, 65535, &b) != 0)
		return -1;
	if (b < a)
		return -1;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

/* Parse "proto,src_ip,src_port,dst_ip,dst_port" (text, NUL-terminated, modified in place). */
static int parse_rule(char *text, struct fw_rule *r)
{
	char *field[5], *p = text, *comma;
	unsigned int i;

	for (i = 0; i < 5; i++) {
		comma = strchr(p, ',');
		if ((comma == NULL) != (i == 4))
			return -1;
		if (comma != NULL)
			*comma = '\0';
		field[i] = p;
		p = comma + 1;
	}
	for (i = 0; i < 5; i++) { /* trim each field in place */
		size_t len;

		while (*field[i] == ' ' || *field[i] == '\t')
			field[i]++;
		len = strlen(field[i]);
		while (len > 0 && (field[i][len - 1] == ' ' || field[i][len - 1] == '\t'))
			field[i][--len] = '\0';
	}
	memset(r, 0, sizeof(*r));
	if (parse_proto(field[0], r) != 0 || parse_addr(field[1], &r->src_ip, &r->src_mask) != 0 ||
	    parse_ports(field[2], &r->sport_lo, &r->sport_hi) != 0 ||
	    parse_addr(field[3], &r->dst_ip, &r->dst_mask) != 0 ||
	    parse_ports(field[4], &r->dport_lo, &r->dport_hi) != 0)
		return -1;
	return 0;
}

static int rule_is_exact(const struct fw_rule *r)
{
	return !r->proto_any && r->src_mask == ~0u && r->dst_mask == ~0u && r->sport_lo == r->sport_hi &&
	       r->dport_lo == r->dport_hi;
}

static void rule_flow(const struct fw_rule *r, struct sp_flow *f)
{
	memset(f, 0, sizeof(*f));
	f->src_ip = htonl(r->src_ip);
	f->dst_ip = htonl(r->dst_ip);
	f->src_port = htons(r->sport_lo);
	f->dst_port = htons(r->dport_lo);
	f->proto = r->proto;
}

/* Calls fn(rule, ctx) for every rule of the list in arg key, the rule's action set to action; 0, the
 * first non-zero result of fn, or -EINVAL (logged) for a rule that does not parse. */
static int for_each_rule(const char *key, uint8_t action, int (*fn)(const struct fw_rule *, void *),
			 void *ctx)
{
	const char *list = sp_arg(key), *p, *end, *b, *e;
	char text[FW_RULE_MAX_LEN];
	struct fw_rule r;
	int rc;

	if (list == NULL)
		return 0;
	for (p = list; *p != '\0'; p = *end == ';' ? end + 1 : end) {
		end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		b = skip_space(p, end);
		e = trim_end(b, end);
		if (b == e)
			continue; /* empty item, e.g. a trailing ';' */
		rc = -1;
		if ((size_t)(e - b) < sizeof(text)) {
			memcpy(text, b, (size_t)(e - b));
			text[e - b] = '\0';
			rc = parse_rule(text, &r);
		}
		if (rc != 0) {
			sp_log("%s: bad rule '%.*s' (want proto,src_ip,src_port,dst_ip,dst_port)", key,
			       (int)(e - b), b);
			return -EINVAL;
		}
		r.action = action;
		rc = fn(&r, ctx);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int count_exact(const struct fw_rule *r, void *ctx)
{
	if (rule_is_exact(r))
		(*(uint32_t *)ctx)++;
	return 0;
}

/* Exact rules into the hash table (OR-ing the lists a flow is on), the others into the local array. */
static int install_rule(const struct fw_rule *r, void *ctx)
{
	struct sp_flow key;
	const uint8_t *old;
	uint8_t bits;
	int rc;

	(void)ctx;
	if (!rule_is_exact(r)) {
		if (n_wildcard == FW_MAX_WILDCARD) {
			sp_log("more than %d wildcard rules", FW_MAX_WILDCARD);
			return -ENOSPC;
		}
		wildcard[n_wildcard++] = *r;
		return 0;
	}
	rule_flow(r, &key);
	old = sp_get_state(exact_table, &key);
	bits = (uint8_t)((old != NULL ? *old : 0) | r->action);
	rc = sp_put_state(exact_table, &key, &bits);
	if (rc != 0)
		sp_log("put_state(fw_exact): %d", rc);
	return rc;
}

static const char *const lists[] = {"blacklist", "whitelist", "suspicious"};
static const uint8_t list_action[] = {FW_BLACK, FW_WHITE, FW_SUSP};

static int fw_init(void)
{
	const char *mode = sp_arg("mode");
	struct sp_table_opts opts = {.key_size = sizeof(struct sp_flow), .value_size = 1};
	uint32_t n_exact = 0;
	unsigned int i;
	int rc;

	if (mode == NULL)
		default_verdict = sp_arg("whitelist") != NULL ? SP_DROP : SP_PASS;
	else if (strcmp(mode, "allow") == 0)
		default_verdict = SP_PASS;
	else if (strcmp(mode, "deny") == 0)
		default_verdict = SP_DROP;
	else {
		sp_log("mode must be 'allow' or 'deny', not '%s'", mode);
		return -EINVAL;
	}
	for (i = 0; i < 3; i++) {
		rc = for_each_rule(lists[i], list_action[i], count_exact, &n_exact);
		if (rc != 0)
			return rc;
	}
	opts.capacity = n_exact > 0 ? n_exact : 1;
	/* per-flow|read: an exact rule is a connection's entry on the black/white lists, the paper's Table III
	 * classification ("connection black/white lists: per-flow, R"); a platform that keeps per-flow state
	 * local (SNF) keeps it local, whatever it does with global state */
	exact_table = sp_create_table("fw_exact", SP_PER_FLOW | SP_READ, &opts);
	if (exact_table == NULL)
		return -ENOMEM;
	n_wildcard = 0;
	for (i = 0; i < 3; i++) {
		rc = for_each_rule(lists[i], list_action[i], install_rule, NULL);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int rule_matches(const struct fw_rule *r, const struct sp_flow *f, uint16_t sport, uint16_t dport)
{
	return (r->proto_any || r->proto == f->proto) && (ntohl(f->src_ip) & r->src_mask) == r->src_ip &&
	       (ntohl(f->dst_ip) & r->dst_mask) == r->dst_ip && sport >= r->sport_lo &&
	       sport <= r->sport_hi && dport >= r->dport_lo && dport <= r->dport_hi;
}

static int fw_handler(struct sp_pkt *pkt)
{
	struct sp_flow f;
	const uint8_t *hit;
	unsigned int bits = 0, i;
	uint16_t sport, dport;

	if (sp_flow_of(pkt, &f) != 0)
		return default_verdict;
	hit = sp_get_state(exact_table, &f);
	if (hit != NULL)
		bits = *hit;
	if (!(bits & FW_BLACK) && n_wildcard > 0) {
		sport = ntohs(f.src_port);
		dport = ntohs(f.dst_port);
		for (i = 0; i < n_wildcard; i++) {
			if (rule_matches(&wildcard[i], &f, sport, dport)) {
				bits |= wildcard[i].action;
				if (bits & FW_BLACK)
					break;
			}
		}
	}
	if (bits & FW_BLACK)
		return SP_DROP;
	if (!(bits & FW_WHITE) && default_verdict == SP_DROP)
		return SP_DROP;
	return (bits & FW_SUSP) ? FW_SUSPICIOUS : SP_PASS;
}

/* distribute(ids, next, fw.suspicious): suspicious flows to branch 0, the rest to branch 1. */
static int select_suspicious(int verdict)
{
	return verdict == FW_SUSPICIOUS ? 0 : 1;
}

SP_NF("fw", fw_init, fw_handler);
SP_NF_ARGS("mode", "blacklist", "whitelist", "suspicious");
SP_SELECTOR(suspicious, select_suspicious);
