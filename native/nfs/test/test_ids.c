/*
 * test_ids.c: the IDS module (argv[1]) with the committed pattern file (argv[2]) -- it flags exactly
 * the packets whose L4 payload carries a pattern (every literal pattern of the file, caseless ones also
 * with their case flipped, plus a few regexes), counts the alerts per flow and the scanned/matched
 * totals, drops instead of alerting with action=drop, never changes a packet, never allocates in the
 * handler, runs on the database its deployment published (without the file), and refuses pattern
 * files Hyperscan cannot compile.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc_count.h"
#include "nftest.h"

static const struct sp_nf *ids;
static const char *patterns_path;



/* Run the handler with allocation alloc_counting on. */
static int run(int slot, struct nft_frame *f)
{
	int v;

	alloc_counting = 1;
	v = nft_run(ids, slot, &f->pkt);
	alloc_counting = 0;
	return v;
}

/* ------------------------------------------------------------------------------------------------ */
/* Frames                                                                                           */

#define UDP_PAYLOAD 42 /* 14 + 20 + 8 */
#define TCP_PAYLOAD 54 /* 14 + 20 + 20 */

/* A UDP frame of len bytes from 16.0.0.1:sport whose payload starts with bytes[0, n). */
static void udp_with(struct nft_frame *f, uint16_t sport, const void *bytes, size_t n, uint32_t len)
{
	nft_udp(f, "16.0.0.1", sport, "48.0.0.1", 80, len, true);
	memcpy(f->data + UDP_PAYLOAD, bytes, n);
	nft_set_checksums(f, true);
}

static void tcp_with(struct nft_frame *f, uint16_t sport, const void *bytes, size_t n, uint32_t len)
{
	nft_tcp(f, "16.0.0.2", sport, "48.0.0.1", 80, len);
	memcpy(f->data + TCP_PAYLOAD, bytes, n);
	nft_set_checksums(f, true);
}

/* ------------------------------------------------------------------------------------------------ */
/* The committed pattern file                                                                       */

struct literal {
	unsigned int id;
	int caseless;
	uint8_t bytes[200];
	size_t n;
};

/* Decode a pattern that is a plain literal (as data/ids/derive.py writes contents: printable
 * characters that are not regex metacharacters, and \xHH escapes); 0 if it is one, -1 if it is a
 * regex. */
static int decode_literal(const char *re, size_t len, struct literal *lit)
{
	static const char meta[] = ".^$|?*+()[]{}\\/";
	size_t i;
	unsigned int v;

	lit->n = 0;
	for (i = 0; i < len; i++) {
		if (lit->n == sizeof(lit->bytes))
			return -1;
		if (re[i] == '\\') {
			if (i + 3 >= len || re[i + 1] != 'x' || sscanf(re + i + 2, "%2x", &v) != 1 ||
			    !isxdigit((unsigned char)re[i + 2]) || !isxdigit((unsigned char)re[i + 3]))
				return -1;
			lit->bytes[lit->n++] = (uint8_t)v;
			i += 3;
		} else if (strchr(meta, re[i]) != NULL || !isprint((unsigned char)re[i])) {
			return -1;
		} else {
			lit->bytes[lit->n++] = (uint8_t)re[i];
		}
	}
	return 0;
}

/* Every literal pattern of the file; returns how many were read (and how many lines in all). */
static unsigned int read_literals(struct literal *out, unsigned int max, unsigned int *lines)
{
	FILE *fp = fopen(patterns_path, "r");
	char line[1024], *tab1, *tab2, *last;
	unsigned int n = 0;

	*lines = 0;
	if (fp == NULL) {
		fprintf(stderr, "cannot open %s\n", patterns_path);
		exit(2);
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		(*lines)++;
		tab1 = strchr(line, '\t');
		tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
		if (tab2 == NULL)
			continue;
		*tab2 = '\0';
		last = strrchr(tab1 + 1, '/');
		if (n == max || tab1[1] != '/' || last == tab1 + 1)
			continue;
		out[n].id = (unsigned int)strtoul(line, NULL, 10);
		out[n].caseless = strchr(last, 'i') != NULL;
		if (decode_literal(tab1 + 2, (size_t)(last - tab1 - 2), &out[n]) == 0)
			n++;
	}
	fclose(fp);
	return n;
}

/* ------------------------------------------------------------------------------------------------ */
/* Tests                                                                                            */

static void lookup_totals(const char *deployment, uint64_t got[2])
{
	char table[64];
	uint32_t key = 0;

	snprintf(table, sizeof(table), "%s/ids_totals", deployment);
	got[0] = got[1] = ~0ull;
	CHECK(sm_table_lookup(nft_region(), table, &key, sizeof(key), got, 2 * sizeof(uint64_t)) == 0);
}

static uint64_t lookup_alerts(const char *deployment, const struct nft_frame *f)
{
	char table[64];
	struct sp_flow key;
	uint64_t n = 0;

	snprintf(table, sizeof(table), "%s/ids_alerts", deployment);
	CHECK(sp_flow_of(&f->pkt, &key) == 0);
	if (sm_table_lookup(nft_region(), table, &key, sizeof(key), &n, sizeof(n)) != 0)
		return 0;
	return n;
}

static void test_ids_flags_exactly_the_packets_carrying_a_pattern(void)
{
	const char *args[] = {"patterns", patterns_path, "flows", "4096", "update_interval_ms", "0", NULL};
	static struct literal lits[1024];
	struct nft_frame f, orig;
	unsigned int n, lines, i, j, caseless = 0, sensitive_checked = 0;
	uint64_t scanned = 0, matched = 0, totals[2];
	uint16_t sport = 1000;
	int slot, v;

	alloc_counting = 1; /* init allocates (Hyperscan database, scratch): proves the alloc_counting reaches it */
	CHECK(nft_deploy(ids, "ids1", args) == 0);
	alloc_counting = 0;
	CHECK(alloc_count > 0);
	alloc_count = 0;
	slot = nft_start(ids, "ids1", args);
	CHECK(slot >= 0);
	n = read_literals(lits, sizeof(lits) / sizeof(lits[0]), &lines);
	CHECK(lines >= 300 && n >= 250); /* "a few hundred" patterns, most of them literals */

	/* A clean packet of each protocol and size passes, unchanged, uncounted in ids_alerts. */
	for (i = 70; i <= 250; i += 36) {
		nft_udp(&f, "16.0.0.9", 9, "48.0.0.1", 80, i, true);
		orig = f;
		CHECK(run(slot, &f) == SP_PASS);
		CHECK(memcmp(&f, &orig, sizeof(f)) == 0);
		CHECK(lookup_alerts("ids1", &f) == 0);
		nft_tcp(&f, "16.0.0.9", 9, "48.0.0.1", 80, i);
		CHECK(run(slot, &f) == SP_PASS);
		CHECK(lookup_alerts("ids1", &f) == 0);
		scanned += 2;
	}

	/* Every literal, in its own flow, in a UDP packet (and the caseless ones with flipped case, in a
	 * TCP packet), is flagged: alert counted for that flow, packet passed unchanged. */
	for (i = 0; i < n; i++) {
		udp_with(&f, sport, lits[i].bytes, lits[i].n, 250);
		orig = f;
		v = run(slot, &f);
		CHECK(v == SP_PASS);
		CHECK(memcmp(&f, &orig, sizeof(f)) == 0);
		if (lookup_alerts("ids1", &f) != 1)
			fprintf(stderr, "pattern %u (%zu bytes) was not flagged\n", lits[i].id, lits[i].n);
		CHECK(lookup_alerts("ids1", &f) == 1);
		scanned++, matched++, sport++;
		if (!lits[i].caseless)
			continue;
		for (j = 0; j < lits[i].n; j++)
			if (isalpha(lits[i].bytes[j]))
				lits[i].bytes[j] ^= 0x20;
		tcp_with(&f, sport, lits[i].bytes, lits[i].n, 250);
		CHECK(run(slot, &f) == SP_PASS);
		CHECK(lookup_alerts("ids1", &f) == 1);
		scanned++, matched++, sport++, caseless++;
	}
	CHECK(caseless >= 50);

	/* A case-sensitive pattern (ET 2009560, Meterpreter getuid) does not match in other case. */
	for (i = 0; i < n; i++)
		if (lits[i].id == 2009560) {
			char upper[64];

			CHECK(!lits[i].caseless && lits[i].n < sizeof(upper));
			for (j = 0; j < lits[i].n; j++)
				upper[j] = (char)toupper(lits[i].bytes[j]);
			udp_with(&f, sport, upper, lits[i].n, 120);
			CHECK(run(slot, &f) == SP_PASS);
			CHECK(lookup_alerts("ids1", &f) == 0);
			scanned++, sport++, sensitive_checked = 1;
		}
	CHECK(sensitive_checked);

	/* Regexes of the set: SQLMAP's " AND 123456=7890" (ET 2012755), a UTF-8 encoded shellcode run
	 * (ET 2003173, caseless), and a pattern ending where the payload ends. */
	{
		static const char sqlmap[] = "GET /?id=1 AND 123456=7890 HTTP/1.1";
		static const char utf8[] = "x=%U41%u42%u43%U44%u45%u46;";
		static const char near_miss[] = "GET /?id=1 AND 12345=7890 HTTP/1.1"; /* 5 digits */

		udp_with(&f, sport, sqlmap, sizeof(sqlmap) - 1, 200);
		CHECK(run(slot, &f) == SP_PASS && lookup_alerts("ids1", &f) == 1);
		scanned++, matched++, sport++;
		tcp_with(&f, sport, utf8, sizeof(utf8) - 1, 200);
		CHECK(run(slot, &f) == SP_PASS && lookup_alerts("ids1", &f) == 1);
		scanned++, matched++, sport++;
		udp_with(&f, sport, near_miss, sizeof(near_miss) - 1, 200);
		CHECK(run(slot, &f) == SP_PASS && lookup_alerts("ids1", &f) == 0);
		scanned++, sport++;
	}

	/* Two matching packets of one flow count 2 for that flow. */
	udp_with(&f, 7, "stdapi_fs_stat", 14, 100);
	CHECK(run(slot, &f) == SP_PASS);
	CHECK(run(slot, &f) == SP_PASS);
	CHECK(lookup_alerts("ids1", &f) == 2);
	scanned += 2, matched += 2;

	/* Bytes outside the payload are not scanned: a pattern in the Ethernet padding after a short IPv4
	 * packet, and a frame that is not IPv4, pass without being scanned. */
	nft_udp(&f, "16.0.0.3", 3, "48.0.0.1", 80, 60, false);
	f.data[16] = 0, f.data[17] = 20 + 8 + 2; /* IPv4 total length 30: payload "xx", then padding */
	memcpy(f.data + UDP_PAYLOAD + 2, "core_migrate", 12);
	nft_set_checksums(&f, false);
	CHECK(run(slot, &f) == SP_PASS && lookup_alerts("ids1", &f) == 0);
	scanned++;
	nft_arp(&f);
	memcpy(f.data + 20, "core_migrate", 12);
	CHECK(run(slot, &f) == SP_PASS);

	lookup_totals("ids1", totals);
	CHECK(totals[0] == scanned && totals[1] == matched);
	if (totals[0] != scanned || totals[1] != matched)
		fprintf(stderr, "totals: scanned %llu (want %llu), matched %llu (want %llu)\n",
			(unsigned long long)totals[0], (unsigned long long)scanned,
			(unsigned long long)totals[1], (unsigned long long)matched);
	CHECK(alloc_count == 0);
	nft_stop(slot);
	printf("ids: %u patterns in the file, %u literals (%u caseless) checked one by one\n", lines, n,
	       caseless);
}

static void test_ids_drop_action_drops_matching_packets(void)
{
	const char *args[] = {"patterns", patterns_path, "action", "drop", NULL};
	struct nft_frame f;
	uint64_t totals[2];
	int slot;

	CHECK(nft_deploy(ids, "ids2", args) == 0);
	slot = nft_start(ids, "ids2", args);
	CHECK(slot >= 0);
	udp_with(&f, 1, "sp_password", 11, 80);
	CHECK(run(slot, &f) == SP_DROP);
	CHECK(lookup_alerts("ids2", &f) == 1);
	tcp_with(&f, 2, "SP_PASSWORD", 11, 80); /* ET 2000105 is nocase */
	CHECK(run(slot, &f) == SP_DROP);
	nft_udp(&f, "16.0.0.1", 3, "48.0.0.1", 80, 80, false);
	CHECK(run(slot, &f) == SP_PASS);
	lookup_totals("ids2", totals);
	CHECK(totals[0] == 3 && totals[1] == 2);
	CHECK(alloc_count == 0);
	nft_stop(slot);
}

static void test_ids_runtime_uses_the_deployed_database(void)
{
	const char *deploy_args[] = {"patterns", patterns_path, NULL};
	const char *run_args[] = {"patterns", "/nonexistent/patterns.txt", NULL}; /* not read */
	struct sm_region *r = nft_region();
	uint64_t errors = sm_errors(r), count = 0;
	uint32_t flags, ks, vs;
	struct nft_frame f;
	int slot;

	CHECK(nft_deploy(ids, "ids8", deploy_args) == 0);
	CHECK(sm_table_info(r, "ids8/ids_db_meta", &flags, &ks, &vs, &count) == 0);
	CHECK(flags == (SP_GLOBAL | SP_READ) && count == 1);
	CHECK(sm_table_info(r, "ids8/ids_db", &flags, &ks, &vs, &count) == 0);
	CHECK(flags == (SP_GLOBAL | SP_READ) && count >= 1 && vs == 65536);
	slot = nft_start(ids, "ids8", run_args);
	CHECK(slot >= 0);
	udp_with(&f, 1, "stdapi_fs_ls", 12, 100);
	CHECK(run(slot, &f) == SP_PASS && lookup_alerts("ids8", &f) == 1);
	CHECK(sm_errors(r) == errors); /* no API misuse on the way */
	CHECK(alloc_count == 0);
	nft_stop(slot);
}

static void test_ids_refuses_bad_arguments_and_pattern_files(void)
{
	char path[] = "/tmp/test_ids_XXXXXX";
	const char *bad_action[] = {"patterns", patterns_path, "action", "block", NULL};
	const char *missing[] = {"patterns", "/nonexistent/patterns.txt", NULL};
	const char *bad_file[] = {"patterns", path, NULL};
	int fd = mkstemp(path);

	CHECK(nft_deploy(ids, "ids3", bad_action) == -EINVAL);
	CHECK(nft_deploy(ids, "ids4", missing) == -ENOENT);
	CHECK(fd >= 0);
	CHECK(write(fd, "1\t/abc/\tok\n2\t/(unclosed/\tbad\n", 29) == 29);
	close(fd);
	CHECK(nft_deploy(ids, "ids5", bad_file) == -EINVAL);
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && write(fd, "1\t/abc/q\tbad flag\n", 18) == 18);
	close(fd);
	CHECK(nft_deploy(ids, "ids6", bad_file) == -EINVAL);
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0 && write(fd, "# nothing\n", 10) == 10);
	close(fd);
	CHECK(nft_deploy(ids, "ids7", bad_file) == -EINVAL);
	unlink(path);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s ids.so patterns.txt\n", argv[0]);
		return 2;
	}
	ids = nft_load(argv[1]);
	patterns_path = argv[2];
	CHECK(strcmp(ids->name, "ids") == 0);
	test_ids_flags_exactly_the_packets_carrying_a_pattern();
	test_ids_drop_action_drops_matching_packets();
	test_ids_runtime_uses_the_deployed_database();
	test_ids_refuses_bad_arguments_and_pattern_files();
	return nft_finish("test_ids");
}
