/*
 * report.h: JSON report helpers shared by serpens-gen, serpens-wire and
 * serpensd.
 *
 * Why: the Python driver reads these files while the processes may still be
 * running (stats snapshots), so a file must never be seen half-written: it is
 * written to a temporary name in the same directory and renamed into place.
 */
#ifndef SERPENS_REPORT_H
#define SERPENS_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "hist.h"

/* Write path atomically: write(tmp, arg) fills "<path>.tmp.<pid>", which is
 * then renamed over path (or removed if anything failed). Returns 0, or -1
 * with a reason in err. */
typedef int (*report_write_fn)(const char *tmp, const void *arg, char *err,
			       size_t errlen);
int report_file_atomic(const char *path, report_write_fn write,
		       const void *arg, char *err, size_t errlen);

/* Dump root to path atomically (tmp file + fsync + rename).
 * Returns 0, or -1 with a reason in err. */
int report_write_atomic(const char *path, json_t *root, char *err,
			size_t errlen);

/* json_integer for unsigned counters (saturates at INT64_MAX). */
json_t *report_u64(uint64_t v);

/* Set key to a new reference; aborts on allocation failure (a report
 * missing fields is worse than no report). */
void report_set(json_t *obj, const char *key, json_t *val);

/* Non-empty buckets as [[lowest_value_ns, count], ...]. */
json_t *report_hist_buckets(const struct hist *h);

#endif
