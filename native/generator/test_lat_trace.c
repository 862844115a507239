/*
 * test_lat_trace.c: unit test of serpens-gen's latency trace (lat_trace.h):
 * records beyond the arrays are counted, a refused burst's records are taken
 * back (also past the end of the arrays), the seqs of a pg_id stay
 * contiguous across a refusal, the file's layout, and the flow id (the
 * value pinned here is what harness/traffic/latency_trace.py: flow_id()
 * computes, so C and Python agree).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "latency.h"
#include "lat_trace.h"

static int failures;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
			__LINE__, #cond); \
		failures++; \
	} \
} while (0)

static void test_overflow_is_counted_and_rewind_is_exact(void)
{
	struct lat_trace t;
	char err[256];
	uint32_t i;

	CHECK(lat_trace_alloc(&t, 4, err, sizeof(err)) == 0);
	for (i = 0; i < 3; i++)
		lat_trace_add_tx(&t, 7, i, 100 + i, 0xabc, 0);
	lat_trace_rewind_tx(&t, 2);             /* the PMD took 1 of 3 */
	CHECK(t.n_tx == 1);
	for (i = 1; i < 7; i++)                 /* seqs 1..6: 3 overflow */
		lat_trace_add_tx(&t, 7, i, 200 + i, 0xabc, 0);
	CHECK(lat_trace_stored(t.n_tx, t.cap) == 4);
	CHECK(t.n_tx - lat_trace_stored(t.n_tx, t.cap) == 3);
	for (i = 0; i < 4; i++)
		CHECK(t.tx[i].seq == i);
	CHECK(t.tx[1].tx_tsc == 201);           /* not the refused 101 */
	lat_trace_rewind_tx(&t, 3);             /* refused: the 3 that overflowed */
	CHECK(t.n_tx == 4 && lat_trace_stored(t.n_tx, t.cap) == 4);
	for (i = 0; i < 5; i++)
		lat_trace_add_rx(&t, 7, i, 1, 2);
	CHECK(t.n_rx == 5 && lat_trace_stored(t.n_rx, t.cap) == 4);
	lat_trace_free(&t);
}

static void test_file_layout(void)
{
	struct lat_trace_hdr h;
	struct lat_trace_tx tx;
	struct lat_trace_rx rx;
	struct lat_trace t;
	char path[] = "/tmp/test_lat_trace_XXXXXX", err[256];
	long size;
	FILE *f;
	int fd;

	fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	CHECK(lat_trace_alloc(&t, 2, err, sizeof(err)) == 0);
	lat_trace_add_tx(&t, 3, 0, 1000, 0x11223344, 0);
	lat_trace_add_tx(&t, 3, 1, 1001, 0, LAT_TRACE_UNBUILT);
	lat_trace_add_tx(&t, 3, 2, 1002, 5, 0);         /* overflow */
	lat_trace_add_rx(&t, 3, 0, 1000, 1500);
	CHECK(lat_trace_write(&t, path, 2600000000ull, 999, err,
			      sizeof(err)) == 0);
	f = fopen(path, "rb");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	CHECK(fread(&h, sizeof(h), 1, f) == 1);
	CHECK(memcmp(h.magic, "SGENLTRC", 8) == 0);
	CHECK(h.version == 1 && h.hdr_len == 72);
	CHECK(h.tx_rec_len == 24 && h.rx_rec_len == 24);
	CHECK(h.tsc_hz == 2600000000ull && h.tsc_start == 999);
	CHECK(h.tx_records == 2 && h.rx_records == 1);
	CHECK(h.tx_overflow == 1 && h.rx_overflow == 0);
	CHECK(fread(&tx, sizeof(tx), 1, f) == 1);
	CHECK(tx.pg_id == 3 && tx.seq == 0 && tx.tx_tsc == 1000 &&
	      tx.flow_id == 0x11223344 && tx.flags == 0);
	CHECK(fread(&tx, sizeof(tx), 1, f) == 1);
	CHECK(tx.seq == 1 && tx.flags == LAT_TRACE_UNBUILT);
	CHECK(fread(&rx, sizeof(rx), 1, f) == 1);
	CHECK(rx.pg_id == 3 && rx.seq == 0 && rx.tx_tsc == 1000 &&
	      rx.rx_tsc == 1500);
	CHECK(fseek(f, 0, SEEK_END) == 0);
	size = ftell(f);
	CHECK(size == 72 + 2 * 24 + 24);
	fclose(f);
	unlink(path);
	lat_trace_free(&t);
}

/* Ethernet + IPv4 + UDP, 16.0.0.1:1025 -> 48.0.0.1:12, padded to 60. */
static uint16_t udp_frame(uint8_t *p)
{
	static const uint8_t hdr[] = {
		2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 46, 0, 1, 0, 0, 64, 17, 0, 0,
		16, 0, 0, 1, 48, 0, 0, 1,
		0x04, 0x01, 0x00, 0x0c, 0, 26, 0, 0,
	};

	memset(p, 'x', 60);
	memcpy(p, hdr, sizeof(hdr));
	return 60;
}

static void test_flow_id_is_the_gateway_hash(void)
{
	uint8_t p[64];
	uint16_t len = udp_frame(p);
	struct lat_tx t;

	lat_tx_init(&t, 0, p, len);
	CHECK(t.fid_ip == 14);
	CHECK(lat_flow_id(&t, p, len) == 0x710b86a9u);
	p[29] = 2;                      /* 16.0.0.2 */
	CHECK(lat_flow_id(&t, p, len) == 0x68a48a80u);
	p[12] = 0x86;                   /* not IPv4: no flow id */
	p[13] = 0xdd;
	lat_tx_init(&t, 0, p, len);
	CHECK(t.fid_ip == 0 && lat_flow_id(&t, p, len) == 0);
}

/* A refused burst hands its seqs and records to the packets built in its
 * place: the seqs sent stay 0, 1, 2, ... */
static void test_rewind_keeps_seqs_contiguous(void)
{
	struct lat_trace tr;
	struct lat_tx t;
	uint8_t p[64];
	uint16_t len = udp_frame(p);
	char err[256];
	uint32_t i;

	CHECK(lat_trace_alloc(&tr, 16, err, sizeof(err)) == 0);
	lat_tx_init(&t, 9, p, len);
	t.trace = &tr;
	for (i = 0; i < 4; i++)         /* what lat_stamp records */
		lat_trace_add_tx(&tr, t.pg_id, t.seq++, 10, 1, 0);
	lat_tx_rewind(&t, 3);           /* 1 of 4 taken */
	CHECK(t.seq == 1 && tr.n_tx == 1);
	lat_tx_unbuilt(&t, 2, 20);      /* due into the full ring */
	CHECK(t.seq == 3 && tr.n_tx == 3);
	CHECK(tr.tx[1].seq == 1 && tr.tx[2].seq == 2);
	CHECK(tr.tx[2].flags == LAT_TRACE_UNBUILT && tr.tx[2].tx_tsc == 20);
	lat_trace_free(&tr);
}

int main(void)
{
	test_overflow_is_counted_and_rewind_is_exact();
	test_file_layout();
	test_flow_id_is_the_gateway_hash();
	test_rewind_keeps_seqs_contiguous();
	if (failures) {
		fprintf(stderr, "%d check(s) failed\n", failures);
		return 1;
	}
	printf("lat_trace: all checks passed\n");
	return 0;
}
