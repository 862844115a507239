/*
 * lat_trace.c: allocation and the file of serpens-gen's latency trace (see
 * lat_trace.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lat_trace.h"
#include "report.h"

/* MAP_POPULATE: the pages are faulted in now, not by the first store of the
 * trial into each of them (a fault every 170 records). */
static void *map_records(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int lat_trace_alloc(struct lat_trace *t, uint64_t cap, char *err,
		    size_t errlen)
{
	memset(t, 0, sizeof(*t));
	if (cap == 0)
		cap = 1;        /* mmap refuses 0 bytes */
	t->bytes = (size_t)cap * sizeof(struct lat_trace_tx);
	t->tx = map_records(t->bytes);
	t->rx = t->tx ? map_records(t->bytes) : NULL;
	if (t->rx == NULL) {
		snprintf(err, errlen, "cannot map 2 x %zu bytes for %lu "
			 "records of each kind: %s", t->bytes,
			 (unsigned long)cap, strerror(errno));
		lat_trace_free(t);
		return -1;
	}
	t->cap = cap;
	return 0;
}

void lat_trace_free(struct lat_trace *t)
{
	if (t->tx != NULL)
		munmap(t->tx, t->bytes);
	if (t->rx != NULL)
		munmap(t->rx, t->bytes);
	t->tx = NULL;
	t->rx = NULL;
	t->cap = 0;
}

static int write_all(FILE *f, const void *p, size_t size, size_t n)
{
	return n == 0 || fwrite(p, size, n, f) == n ? 0 : -1;
}

struct trace_file {
	const struct lat_trace *t;
	const struct lat_trace_hdr *h;
};

static int write_file(const char *tmp, const void *arg, char *err,
		      size_t errlen)
{
	const struct lat_trace *t = ((const struct trace_file *)arg)->t;
	const struct lat_trace_hdr *h = ((const struct trace_file *)arg)->h;
	FILE *f = fopen(tmp, "wb");
	int bad;

	if (f == NULL) {
		snprintf(err, errlen, "cannot create %s: %s", tmp,
			 strerror(errno));
		return -1;
	}
	bad = write_all(f, h, sizeof(*h), 1) ||
		write_all(f, t->tx, sizeof(*t->tx), h->tx_records) ||
		write_all(f, t->rx, sizeof(*t->rx), h->rx_records) ||
		fflush(f) != 0 || fsync(fileno(f)) != 0;
	if (fclose(f) != 0 || bad) {
		snprintf(err, errlen, "cannot write %s: %s", tmp,
			 strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int lat_trace_write(const struct lat_trace *t, const char *path,
		    uint64_t tsc_hz, uint64_t tsc_start, char *err,
		    size_t errlen)
{
	struct lat_trace_hdr h;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, LAT_TRACE_MAGIC, sizeof(h.magic));
	h.version = LAT_TRACE_VERSION;
	h.hdr_len = sizeof(h);
	h.tx_rec_len = sizeof(struct lat_trace_tx);
	h.rx_rec_len = sizeof(struct lat_trace_rx);
	h.tsc_hz = tsc_hz;
	h.tsc_start = tsc_start;
	h.tx_records = lat_trace_stored(t->n_tx, t->cap);
	h.rx_records = lat_trace_stored(t->n_rx, t->cap);
	h.tx_overflow = t->n_tx - h.tx_records;
	h.rx_overflow = t->n_rx - h.rx_records;
	return report_file_atomic(path, write_file,
				  &(struct trace_file){.t = t, .h = &h}, err,
				  errlen);
}
