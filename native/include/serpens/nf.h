/*
 * serpens/nf.h: the NF programming abstraction of the paper (Fig. 8), the one header every NF includes.
 *
 * An NF is a C file with an init function and a per-packet handler, compiled to a shared object, that
 * uses only what is declared here. Every platform of the harness (Serpens' shared-memory State Manager,
 * Fission's remote Redis store, SNF's mix, ...) implements these calls its own way behind one table of
 * operations (struct sp_state_ops, serpens/state_ops.h), so the *same NF binary* runs on all of them.
 *
 * The names of Fig. 8 (create_table, get_state, ..., trigger) are macros for sp_-prefixed symbols: NF
 * code reads like the paper, while the symbols an NF imports cannot collide with a library's.
 *
 * Chaining (chain / distribute / aggregate of Fig. 8) is declared by the control plane when it deploys an
 * SFC (harness/serpens/sfc.py); an NF only returns a verdict, and a selector maps verdicts to branches.
 */
#ifndef SERPENS_NF_H
#define SERPENS_NF_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------ */
/* Packets                                                                                          */

/* One packet as an NF sees it. data/len may be changed by the NF (e.g. a VPN that grows the frame
 * through sp_pkt_resize); the platform owns the buffer behind it. */
struct sp_pkt {
	uint8_t *data;     /* first byte of the Ethernet header */
	uint32_t len;      /* frame length without FCS */
	uint32_t sfc;      /* SFC id the gateway tagged the packet with */
	void *buf;         /* the platform's buffer (a struct rte_mbuf * on DPDK platforms) */
};

/* Grow or shrink the frame at its tail by delta bytes; 0, or -ENOSPC when the buffer has no room. */
int sp_pkt_resize(struct sp_pkt *pkt, int delta);

/* Handler verdicts. Values >= SP_PASS mean "keep the packet"; a value above SP_PASS is also handed to
 * the selector of a distribute() that follows this NF in the chain (e.g. FW: suspicious → IDS). */
#define SP_DROP (-1)
#define SP_PASS 0

/* The 5-tuple, as a fixed 16-byte key (padding zeroed so it can be hashed and compared as bytes).
 * Addresses and ports in network byte order, as in the packet. */
struct sp_flow {
	uint32_t src_ip;
	uint32_t dst_ip;
	uint16_t src_port;
	uint16_t dst_port;
	uint8_t proto;
	uint8_t pad[3];
};

#define SP_ETH_HLEN 14
#define SP_ETHERTYPE_IPV4 0x0800
#define SP_PROTO_TCP 6
#define SP_PROTO_UDP 17

/* Byte offsets of the IPv4 and L4 headers in an Ethernet/IPv4 frame, or -1 (not IPv4, truncated). */
static inline int sp_l3_offset(const struct sp_pkt *p)
{
	if (p->len < SP_ETH_HLEN + 20)
		return -1;
	if (((uint16_t)p->data[12] << 8 | p->data[13]) != SP_ETHERTYPE_IPV4)
		return -1;
	return SP_ETH_HLEN;
}

static inline int sp_l4_offset(const struct sp_pkt *p)
{
	int l3 = sp_l3_offset(p);
	int ihl;

	if (l3 < 0)
		return -1;
	ihl = (p->data[l3] & 0x0f) * 4;
	if (ihl < 20 || (uint32_t)(l3 + ihl + 8) > p->len)
		return -1;
	return l3 + ihl;
}

/* Fill f from an IPv4 packet (ports 0 for protocols other than TCP/UDP); 0, or -1 if not IPv4. */
static inline int sp_flow_of(const struct sp_pkt *p, struct sp_flow *f)
{
	int l3 = sp_l3_offset(p), l4;
	const uint8_t *ip;

	if (l3 < 0)
		return -1;
	ip = p->data + l3;
	memset(f, 0, sizeof(*f));
	memcpy(&f->src_ip, ip + 12, 4);
	memcpy(&f->dst_ip, ip + 16, 4);
	f->proto = ip[9];
	if (f->proto == SP_PROTO_TCP || f->proto == SP_PROTO_UDP) {
		l4 = sp_l4_offset(p);
		if (l4 < 0)
			return -1;
		memcpy(&f->src_port, p->data + l4, 2);
		memcpy(&f->dst_port, p->data + l4 + 2, 2);
	}
	return 0;
}

/* The flow of the reply direction. */
static inline void sp_flow_reverse(const struct sp_flow *f, struct sp_flow *r)
{
	memset(r, 0, sizeof(*r));
	r->src_ip = f->dst_ip;
	r->dst_ip = f->src_ip;
	r->src_port = f->dst_port;
	r->dst_port = f->src_port;
	r->proto = f->proto;
}

/* ------------------------------------------------------------------------------------------------ */
/* State: tables of fixed-size keys and values (Fig. 8, "state storage and handling")               */

/* Flags: exactly one of SP_PER_FLOW | SP_GLOBAL, exactly one of SP_READ | SP_WRITE, and for
 * SP_GLOBAL | SP_WRITE exactly one of SP_RELEASE | SP_EVENTUAL (which must not appear otherwise).
 * Any other combination is refused by create_table (-EINVAL). */
#define SP_PER_FLOW (1u << 0)
#define SP_GLOBAL (1u << 1)
#define SP_READ (1u << 2)
#define SP_WRITE (1u << 3)
#define SP_RELEASE (1u << 4)  /* single-writer global state: split into per-instance sub-states */
#define SP_EVENTUAL (1u << 5) /* multi-writer global state: per-instance replicas, merged by update */

typedef struct sp_table sp_table;

/* Hooks for global|write tables; NULL selects the paper's defaults (see sp_pool and sp_counters below):
 * release:  split moves half of the free resources to the new instance's sub-state,
 *           update redistributes all free resources equally, merge returns a sub-state's resources;
 * eventual: split gives the new instance an empty (zero) replica, update adds every replica into the
 *           merged value, merge folds a departing replica in.
 * A hook gets the value of every instance slot (vals[i], NULL where no instance is active) and the
 * merged/base value, and may change them; the platform pauses the instances while it runs. */
typedef void (*sp_hook_fn)(void *base, void **vals, unsigned int nvals, uint32_t value_size);

struct sp_table_opts {
	uint32_t key_size;   /* bytes; keys are compared as bytes */
	uint32_t value_size; /* bytes */
	uint32_t capacity;   /* most keys the table must hold */
	sp_hook_fn split;    /* global|write only; NULL = default */
	sp_hook_fn merge;
	sp_hook_fn update;
};

sp_table *sp_create_table(const char *name, uint32_t flags, const struct sp_table_opts *opts);
void *sp_get_state(sp_table *t, const void *key);
int sp_put_state(sp_table *t, const void *key, const void *value);
int sp_delete_state(sp_table *t, const void *key);
int sp_split(sp_table *t, const void *key);
int sp_merge(sp_table *t, const void *key);
int sp_update(sp_table *t, const void *key);
int sp_timer(sp_table *t, const void *key, uint64_t timeout_us);
int sp_trigger(sp_table *t, const void *key);

/* timer(t, key, us) runs update(t, key) every `us` microseconds in the State Manager; key NULL means every
 * key of the table (e.g. MON folding all host counters).
 *
 * get_state returns a pointer to the value in place (this instance's sub-state or replica for
 * global|write tables), or NULL if the key is absent; values may be updated through it. put_state
 * copies value in; it returns 0 or a negative errno (-ENOSPC full, -EPERM on a read table after init).
 * delete_state removes a per-flow key; on a global table it is an error (-EPERM, and the platform
 * reports it), as the paper says. */
#ifndef SP_NO_FIG8_NAMES /* short names are macros: include serpens/nf.h after system/library headers */
#define create_table sp_create_table
#define get_state sp_get_state
#define put_state sp_put_state
#define delete_state sp_delete_state
#define split sp_split
#define merge sp_merge
#define update sp_update
#define timer sp_timer
#define trigger sp_trigger
#endif

/* The value layouts the default hooks understand.
 * A release-consistency resource pool: a stack of free 32-bit items (e.g. NAT's IP/port pairs). */
struct sp_pool {
	uint32_t nfree;
	uint32_t cap;
	uint32_t item[]; /* item[0..nfree) are free */
};
#define SP_POOL_SIZE(cap) ((uint32_t)(sizeof(struct sp_pool) + (size_t)(cap) * sizeof(uint32_t)))

static inline int sp_pool_take(struct sp_pool *p, uint32_t *out)
{
	if (p->nfree == 0)
		return -1;
	*out = p->item[--p->nfree];
	return 0;
}

static inline int sp_pool_give(struct sp_pool *p, uint32_t v)
{
	if (p->nfree >= p->cap)
		return -1;
	p->item[p->nfree++] = v;
	return 0;
}

/* An eventual-consistency value: an array of 64-bit counters (value_size / 8 of them). */
struct sp_counters {
	uint64_t c[1];
};

/* ------------------------------------------------------------------------------------------------ */
/* Deployment arguments and diagnostics                                                            */

/* The value of a deployment argument (harness: the NF's `args:` in the SFC YAML), or NULL. */
const char *sp_arg(const char *key);
/* Log a message tagged with the NF's name (goes to the platform's log). */
void sp_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* During init: 1 when it runs at deployment (in serpensd: its state writes become the tables' initial
 * state), 0 when it runs in an instance (the tables exist and init's state writes are skipped). An NF can
 * skip building initial state that only a deployment keeps (NAT's address/port pool). 0 outside init. */
int sp_deploying(void);

/* Argument helpers for init. A missing argument gives the default; a bad one is logged with what was
 * expected and returns -EINVAL (init should then fail, so the deployment is refused with the reason). */
static inline int sp_arg_u32(const char *key, uint32_t dflt, uint32_t min, uint32_t max, uint32_t *out)
{
	const char *s = sp_arg(key);
	unsigned long v;
	char *end;

	*out = dflt;
	if (s == NULL)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || errno != 0 || *end != '\0' || v < min || v > max) {
		sp_log("%s: want a number in %u..%u, got '%s'", key, min, max, s);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

/* *index = position of the argument's value in choices (NULL-terminated); 0 when it is missing. */
static inline int sp_arg_choice(const char *key, const char *const *choices, int *index)
{
	const char *s = sp_arg(key);
	int i;

	*index = 0;
	if (s == NULL)
		return 0;
	for (i = 0; choices[i]; i++)
		if (strcmp(s, choices[i]) == 0) {
			*index = i;
			return 0;
		}
	sp_log("%s: want one of '%s'%s%s, got '%s'", key, choices[0], choices[1] ? " or '" : "",
	       choices[1] ? choices[1] : "", s);
	return -EINVAL;
}

/* ------------------------------------------------------------------------------------------------ */
/* The NF itself                                                                                    */

struct sp_nf {
	const char *name;
	int (*init)(void);                   /* create tables, set up; 0 or a negative errno */
	int (*handler)(struct sp_pkt *pkt);  /* SP_DROP, SP_PASS or a verdict > SP_PASS */
};

/* Every NF object defines exactly one descriptor with this macro. init runs on deployment in the State
 * Manager (tables are created and initial state written there, once) and again in every process that
 * runs the NF (there create_table attaches to the existing table and state writes made by init are not
 * repeated), so NF code can keep table handles in static variables exactly as Fig. 9 does. */
#define SP_NF(nf_name, nf_init, nf_handler) \
	const struct sp_nf serpens_nf = {.name = (nf_name), .init = (nf_init), .handler = (nf_handler)}

/* The argument keys an NF takes, declared once next to its descriptor:
 *
 *     SP_NF("fw", fw_init, fw_handler);
 *     SP_NF_ARGS("mode", "blacklist", "whitelist", "suspicious");
 *
 * serpensd checks a deployment's arguments against them before init runs, and refuses an unknown key
 * with the NF's name, the key and this list (a typo such as "blaklist" is an error, not an argument the
 * NF silently never reads). SP_NF_NO_ARGS declares an NF that takes none. An NF that declares nothing
 * is deployed unchecked, as before. A symbol of its own (serpens_nf_args, found as serpens_nf is) rather
 * than a field of struct sp_nf, so that objects built before it existed keep loading. */
#define SP_NF_ARGS(...) const char *const serpens_nf_args[] = {__VA_ARGS__, NULL}
#define SP_NF_NO_ARGS const char *const serpens_nf_args[] = {NULL}

/* A selector for distribute(): maps the upstream NF's verdict to a branch index (0-based), or -1 to
 * drop. Exported as serpens_selector_<name>; the SFC names it as "<nf>.<name>". */
typedef int (*sp_selector_fn)(int verdict);
#define SP_SELECTOR(sel_name, fn) const sp_selector_fn serpens_selector_##sel_name = (fn)

#ifdef __cplusplus
}
#endif

#endif /* SERPENS_NF_H */
