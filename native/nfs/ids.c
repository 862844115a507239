/*
 * ids.c: the intrusion detection system of the paper's evaluation ("performing signature matching on
 * public patterns", Section V; Table III: connection analysis objects per-flow/W, match patterns
 * global/R). It scans every packet's L4 payload with a Hyperscan block-mode database compiled from a
 * pattern file -- by default data/ids/patterns.txt, the fast patterns of 400-odd Emerging Threats Open
 * rules (data/ids/SOURCE.md) -- and alerts on, or drops, the packets that match any pattern.
 *
 *   ids_alerts  per-flow|write, key struct sp_flow -> u64: packets of the flow that matched;
 *   ids_totals  global|write|eventual, key u32 0 -> struct sp_counters {scanned, matched}: every
 *               instance counts into its own replica, the default update() adds them up;
 *   ids_db_meta global|read, key u32 0 -> {length, chunks} of the serialized pattern database;
 *   ids_db      global|read, key u32 i -> the i-th 64 KiB piece of it.
 *
 * The match patterns are the paper's global/read state. Deployment (the State Manager's init) compiles
 * the pattern file with hs_compile_multi and publishes the serialized database in ids_db; every
 * runtime process's init deserializes its own copy from there ("maintain a copy of this state in each
 * instance", Section III-B) instead of compiling again, which takes ~0.1 s, and allocates its Hyperscan
 * scratch, so the handler never allocates. If the database cannot be published or does not load (e.g.
 * another CPU), init compiles the file itself.
 *
 * Arguments (all optional):
 *   patterns            path of the pattern file (default IDS_DEFAULT_PATTERNS, set by the build to the
 *                       repository's data/ids/patterns.txt; the harness passes the path explicitly);
 *                       read at deployment, and at run time only if the published database is unusable;
 *   action              "alert" (default: the packet passes, the alert is counted) or "drop" (a
 *                       matching packet is dropped; it is counted as well);
 *   flows               capacity of ids_alerts (default 65536);
 *   update_interval_ms  how often the State Manager folds the ids_totals replicas (default 1000, 0:
 *                       only on scale-in/out).
 *
 * Pattern file: one pattern per line, tab-separated "id /regex/flags source" (flags i = caseless,
 * s = dotall, m = multiline); '#' lines and empty lines are skipped. Every pattern is compiled with
 * HS_FLAG_SINGLEMATCH; the first match ends the scan, as one match decides the verdict.
 *
 * What is scanned: the TCP or UDP payload (after the L4 header) or, for other protocols and for
 * non-first fragments, the IP payload, bounded by the IPv4 total length (Ethernet padding is not
 * scanned). Frames that are not IPv4 pass unscanned. The packet is never modified.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hs/hs.h>

#include "serpens/nf.h"

#ifndef IDS_DEFAULT_PATTERNS
#define IDS_DEFAULT_PATTERNS "data/ids/patterns.txt"
#endif
#define IDS_DEFAULT_FLOWS 65536
#define IDS_DEFAULT_INTERVAL_MS 1000
#define IDS_DB_CHUNK 65536u /* bytes of serialized database per ids_db value */

struct db_meta {
	uint64_t len;    /* bytes of the serialized database */
	uint32_t chunks; /* values in ids_db */
	uint32_t pad;
};

enum { TOT_SCANNED, TOT_MATCHED, TOT_N };

static hs_database_t *db;
static hs_scratch_t *scratch;
static sp_table *alerts_table, *totals_table;
static const uint32_t totals_key; /* ids_totals has the one key 0 */
static const uint32_t meta_key;   /* and so has ids_db_meta */
static int drop_matches;
static int full_logged;

/* ------------------------------------------------------------------------------------------------ */
/* Arguments                                                                                        */

/* ------------------------------------------------------------------------------------------------ */
/* The pattern file                                                                                 */

struct patterns {
	char **expr;
	unsigned int *flags;
	unsigned int *ids;
	unsigned int *lines; /* line number of each pattern, for error messages */
	unsigned int n, cap;
};

static void patterns_free(struct patterns *p)
{
	unsigned int i;

	for (i = 0; i < p->n; i++)
		free(p->expr[i]);
	free(p->expr);
	free(p->flags);
	free(p->ids);
	free(p->lines);
	memset(p, 0, sizeof(*p));
}

static int patterns_grow(struct patterns *p)
{
	unsigned int cap = p->cap ? 2 * p->cap : 512;
	char **e = realloc(p->expr, cap * sizeof(*e));
	unsigned int *f, *i, *l;

	if (e == NULL)
		return -ENOMEM;
	p->expr = e;
	f = realloc(p->flags, cap * sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	p->flags = f;
	i = realloc(p->ids, cap * sizeof(*i));
	if (i == NULL)
		return -ENOMEM;
	p->ids = i;
	l = realloc(p->lines, cap * sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	p->lines = l;
	p->cap = cap;
	return 0;
}

/* Parse "id<TAB>/regex/flags[<TAB>source]" into p; 0, or -EINVAL with a message. */
static int parse_line(struct patterns *p, char *line, unsigned int line_no, const char *path)
{
	char *tab, *spec, *end, *last;
	unsigned long id;
	unsigned int flags = HS_FLAG_SINGLEMATCH;
	size_t len;

	errno = 0;
	id = strtoul(line, &end, 10);
	if (end == line || *end != '\t' || errno != 0 || id > UINT32_MAX) {
		sp_log("%s:%u: want 'id<TAB>/regex/flags<TAB>source'", path, line_no);
		return -EINVAL;
	}
	spec = end + 1;
	tab = strchr(spec, '\t');
	if (tab != NULL)
		*tab = '\0';
	len = strlen(spec);
	last = strrchr(spec, '/');
	if (len < 2 || spec[0] != '/' || last == spec) {
		sp_log("%s:%u: pattern must be /regex/flags", path, line_no);
		return -EINVAL;
	}
	for (end = last + 1; *end != '\0'; end++) {
		switch (*end) {
		case 'i': flags |= HS_FLAG_CASELESS; break;
		case 's': flags |= HS_FLAG_DOTALL; break;
		case 'm': flags |= HS_FLAG_MULTILINE; break;
		default:
			sp_log("%s:%u: unknown flag '%c' (i, s, m are understood)", path, line_no, *end);
			return -EINVAL;
		}
	}
	if (p->n == p->cap && patterns_grow(p) != 0)
		return -ENOMEM;
	*last = '\0';
	p->expr[p->n] = strdup(spec + 1);
	if (p->expr[p->n] == NULL)
		return -ENOMEM;
	p->flags[p->n] = flags;
	p->ids[p->n] = (unsigned int)id;
	p->lines[p->n] = line_no;
	p->n++;
	return 0;
}

/* The pattern file, opened without blocking and only if it is a regular file: init runs in serpensd's
 * control thread at deployment, where a FIFO with no writer would hold every other request. */
static FILE *open_regular(const char *path, int *rc)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	FILE *fp;

	if (fd < 0 || fstat(fd, &st) != 0) {
		*rc = -errno;
		sp_log("cannot open pattern file %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		*rc = -EINVAL;
		sp_log("pattern file %s is not a regular file", path);
		close(fd);
		return NULL;
	}
	fp = fdopen(fd, "r");
	if (fp == NULL) {
		*rc = -errno;
		close(fd);
	}
	return fp;
}

static int patterns_load(struct patterns *p, const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	unsigned int line_no = 0;
	int rc = 0;
	FILE *fp;

	memset(p, 0, sizeof(*p));
	fp = open_regular(path, &rc);
	if (fp == NULL)
		return rc;
	while (rc == 0 && (got = getline(&line, &cap, fp)) >= 0) {
		line_no++;
		while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
			line[--got] = '\0';
		if (got == 0 || line[0] == '#')
			continue;
		rc = parse_line(p, line, line_no, path);
	}
	free(line);
	fclose(fp);
	if (rc == 0 && p->n == 0) {
		sp_log("%s has no patterns", path);
		rc = -EINVAL;
	}
	if (rc != 0)
		patterns_free(p);
	return rc;
}

/* Compile the pattern file into *out. */
static int compile_patterns(const char *path, hs_database_t **out)
{
	struct patterns p;
	hs_compile_error_t *err = NULL;
	hs_error_t rc;
	int ret;

	ret = patterns_load(&p, path);
	if (ret != 0)
		return ret;
	rc = hs_compile_multi((const char *const *)p.expr, p.flags, p.ids, p.n, HS_MODE_BLOCK, NULL, out,
			      &err);
	if (rc != HS_SUCCESS) {
		if (err != NULL && err->expression >= 0 && (unsigned int)err->expression < p.n)
			sp_log("%s:%u: pattern %u does not compile: %s", path, p.lines[err->expression],
			       p.ids[err->expression], err->message);
		else
			sp_log("%s: Hyperscan cannot compile the pattern set: %s", path,
			       err != NULL ? err->message : "unknown error");
		hs_free_compile_error(err);
		patterns_free(&p);
		return -EINVAL;
	}
	patterns_free(&p);
	return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* The compiled patterns as global/read state                                                       */

/* Deployment publishes the serialized database in ids_db (IDS_DB_CHUNK-byte pieces, keys 0..n-1) and
 * its size in ids_db_meta; a runtime process that finds them deserializes instead of compiling. */
static int fetch_database(const struct db_meta *m, hs_database_t **out)
{
	struct sp_table_opts opts = {.key_size = sizeof(uint32_t), .value_size = IDS_DB_CHUNK, .capacity = 1};
	sp_table *t;
	char *bytes;
	const void *chunk;
	uint64_t done;
	uint32_t i;
	hs_error_t rc;

	if (m->chunks == 0 || m->len > (uint64_t)m->chunks * IDS_DB_CHUNK)
		return -EINVAL;
	t = sp_create_table("ids_db", SP_GLOBAL | SP_READ, &opts);
	bytes = t != NULL ? malloc(m->len) : NULL;
	if (bytes == NULL)
		return -ENOMEM;
	for (i = 0, done = 0; i < m->chunks; i++, done += IDS_DB_CHUNK) {
		chunk = sp_get_state(t, &i);
		if (chunk == NULL) {
			free(bytes);
			return -ENOENT;
		}
		memcpy(bytes + done, chunk, m->len - done < IDS_DB_CHUNK ? m->len - done : IDS_DB_CHUNK);
	}
	rc = hs_deserialize_database(bytes, m->len, out);
	free(bytes);
	if (rc != HS_SUCCESS) {
		sp_log("the deployed pattern database does not load here (Hyperscan error %d): compiling", rc);
		return -EINVAL;
	}
	return 0;
}

/* Best effort: a deployment that cannot publish still works, its runtimes compile the file. */
static void publish_database(sp_table *meta_table, hs_database_t *d)
{
	struct sp_table_opts opts = {.key_size = sizeof(uint32_t), .value_size = IDS_DB_CHUNK};
	struct db_meta m;
	sp_table *t;
	char *bytes = NULL, *chunk;
	size_t len;
	uint32_t i;

	if (hs_serialize_database(d, &bytes, &len) != HS_SUCCESS)
		return;
	m.len = len;
	m.chunks = (uint32_t)((len + IDS_DB_CHUNK - 1) / IDS_DB_CHUNK);
	m.pad = 0;
	/* The meta goes first: in a runtime process put_state is skipped, so it is still absent there and
	 * ids_db (which only a deployment may create) is not touched. */
	if (sp_put_state(meta_table, &meta_key, &m) != 0 || sp_get_state(meta_table, &meta_key) == NULL) {
		free(bytes);
		return;
	}
	opts.capacity = m.chunks;
	t = sp_create_table("ids_db", SP_GLOBAL | SP_READ, &opts);
	chunk = calloc(1, IDS_DB_CHUNK);
	for (i = 0; t != NULL && chunk != NULL && i < m.chunks; i++) {
		memcpy(chunk, bytes + (size_t)i * IDS_DB_CHUNK,
		       len - (size_t)i * IDS_DB_CHUNK < IDS_DB_CHUNK ? len - (size_t)i * IDS_DB_CHUNK : IDS_DB_CHUNK);
		if (sp_put_state(t, &i, chunk) != 0)
			break;
	}
	if (t == NULL || chunk == NULL || i < m.chunks)
		sp_log("cannot publish the compiled patterns: every runtime process will compile them");
	free(chunk);
	free(bytes);
}

/* Get the database -- the deployment's, or compiled from the file -- and this process's scratch,
 * replacing earlier ones (init runs twice in a process that both deploys and runs the NF, e.g. a test). */
static int load_database(const char *path)
{
	struct sp_table_opts opts = {.key_size = sizeof(uint32_t), .value_size = sizeof(struct db_meta),
				     .capacity = 1};
	const struct db_meta *m;
	sp_table *meta_table;
	hs_database_t *new_db = NULL;
	int rc;

	meta_table = sp_create_table("ids_db_meta", SP_GLOBAL | SP_READ, &opts);
	if (meta_table == NULL)
		return -ENOMEM;
	m = sp_get_state(meta_table, &meta_key);
	if (m == NULL || fetch_database(m, &new_db) != 0) {
		rc = compile_patterns(path, &new_db);
		if (rc != 0)
			return rc;
		if (m == NULL)
			publish_database(meta_table, new_db);
	}
	if (scratch != NULL) {
		hs_free_scratch(scratch);
		scratch = NULL;
	}
	if (db != NULL)
		hs_free_database(db);
	db = new_db;
	if (hs_alloc_scratch(db, &scratch) != HS_SUCCESS) {
		sp_log("cannot allocate Hyperscan scratch");
		return -ENOMEM;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* init and handler                                                                                 */

static int ids_init(void)
{
	struct sp_table_opts opts = {.key_size = sizeof(struct sp_flow), .value_size = sizeof(uint64_t)};
	uint64_t zero[TOT_N] = {0};
	const char *path = sp_arg("patterns");
	uint32_t n_flows, interval_ms;
	int rc;

	static const char *const actions[] = {"alert", "drop", NULL}; /* index 1: drop matching packets */

	if (sp_arg_choice("action", actions, &drop_matches) != 0 ||
	    sp_arg_u32("flows", IDS_DEFAULT_FLOWS, 1, UINT32_MAX, &n_flows) != 0 ||
	    sp_arg_u32("update_interval_ms", IDS_DEFAULT_INTERVAL_MS, 0, UINT32_MAX, &interval_ms) != 0)
		return -EINVAL;
	rc = load_database(path != NULL ? path : IDS_DEFAULT_PATTERNS);
	if (rc != 0)
		return rc;

	opts.capacity = n_flows;
	alerts_table = sp_create_table("ids_alerts", SP_PER_FLOW | SP_WRITE, &opts);
	opts.key_size = sizeof(totals_key);
	opts.value_size = sizeof(zero);
	opts.capacity = 1;
	totals_table = sp_create_table("ids_totals", SP_GLOBAL | SP_WRITE | SP_EVENTUAL, &opts);
	if (alerts_table == NULL || totals_table == NULL)
		return -ENOMEM;
	rc = sp_put_state(totals_table, &totals_key, zero); /* deploy: creates the key; runtime: no-op */
	if (rc != 0) {
		sp_log("put_state(ids_totals): %d", rc);
		return rc;
	}
	if (interval_ms > 0) {
		rc = sp_timer(totals_table, NULL, (uint64_t)interval_ms * 1000);
		if (rc != 0) {
			sp_log("timer(ids_totals): %d", rc);
			return rc;
		}
	}
	return 0;
}

/* The bytes to scan: [*off, *end) of the frame, or -1 if the frame is not IPv4. */
static int payload_of(const struct sp_pkt *pkt, uint32_t *off, uint32_t *end)
{
	const uint8_t *ip;
	uint32_t ihl, tot, l4, hlen;
	int l3 = sp_l3_offset(pkt);

	if (l3 < 0)
		return -1;
	ip = pkt->data + l3;
	ihl = (ip[0] & 0x0fu) * 4;
	tot = (uint32_t)ip[2] << 8 | ip[3];
	if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl)
		return -1;
	*end = (uint32_t)l3 + tot < pkt->len ? (uint32_t)l3 + tot : pkt->len;
	l4 = (uint32_t)l3 + ihl;
	*off = l4 < *end ? l4 : *end;
	if ((((uint32_t)ip[6] & 0x1f) << 8 | ip[7]) != 0) /* a non-first fragment: no L4 header */
		return 0;
	if (ip[9] == SP_PROTO_UDP)
		hlen = 8;
	else if (ip[9] == SP_PROTO_TCP && l4 + 13 <= *end)
		hlen = (pkt->data[l4 + 12] >> 4) * 4u;
	else
		hlen = 0;
	*off = l4 + hlen < *end ? l4 + hlen : *end;
	return 0;
}

static int on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
		    void *ctx)
{
	(void)from;
	(void)to;
	(void)flags;
	*(unsigned int *)ctx = id;
	return 1; /* one match decides: stop scanning */
}

static void count_alert(const struct sp_pkt *pkt)
{
	static const uint64_t one = 1;
	struct sp_flow f;
	uint64_t *n;

	if (sp_flow_of(pkt, &f) != 0)
		return;
	n = sp_get_state(alerts_table, &f);
	if (n != NULL)
		(*n)++;
	else if (sp_put_state(alerts_table, &f, &one) != 0 && !full_logged) {
		full_logged = 1;
		sp_log("ids_alerts is full: alerts of new flows go uncounted (raise 'flows')");
	}
}

static int ids_handler(struct sp_pkt *pkt)
{
	uint64_t *tot; /* this instance's replica of the struct sp_counters {scanned, matched} */
	uint32_t off, end;
	unsigned int match_id = 0;
	int matched;

	if (payload_of(pkt, &off, &end) != 0 || off >= end)
		return SP_PASS;
	matched = hs_scan(db, (const char *)pkt->data + off, end - off, 0, scratch, on_match, &match_id) ==
		  HS_SCAN_TERMINATED;
	tot = sp_get_state(totals_table, &totals_key);
	if (tot != NULL) {
		tot[TOT_SCANNED]++;
		tot[TOT_MATCHED] += (uint64_t)matched;
	}
	if (!matched)
		return SP_PASS;
	count_alert(pkt);
	return drop_matches ? SP_DROP : SP_PASS;
}

SP_NF("ids", ids_init, ids_handler);
SP_NF_ARGS("patterns", "action", "flows", "update_interval_ms");
