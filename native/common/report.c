/*
 * report.c: atomic JSON report writing (see report.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

static int write_tmp(const char *tmp, const void *arg, char *err, size_t errlen)
{
	json_t *root = (json_t *)arg;
	FILE *f = fopen(tmp, "w");

	if (f == NULL) {
		snprintf(err, errlen, "cannot create %s: %s", tmp,
			 strerror(errno));
		return -1;
	}
	if (json_dumpf(root, f, JSON_INDENT(1) | JSON_PRESERVE_ORDER) != 0 ||
	    fputc('\n', f) == EOF || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp,
			 strerror(errno));
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) != 0) {
		snprintf(err, errlen, "cannot close %s: %s", tmp,
			 strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int report_write_atomic(const char *path, json_t *root, char *err,
			size_t errlen)
{
	return report_file_atomic(path, write_tmp, root, err, errlen);
}

int report_file_atomic(const char *path, report_write_fn write,
		       const void *arg, char *err, size_t errlen)
{
	char tmp[4096];
	int n;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		snprintf(err, errlen, "path too long: %s", path);
		return -1;
	}
	if (write(tmp, arg, err, errlen) != 0)
		return -1;
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, path,
			 strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

json_t *report_u64(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX :
			    (json_int_t)v);
}

void report_set(json_t *obj, const char *key, json_t *val)
{
	if (val == NULL || json_object_set_new(obj, key, val) != 0) {
		fprintf(stderr, "out of memory building the report (%s)\n",
			key);
		abort();
	}
}

json_t *report_hist_buckets(const struct hist *h)
{
	json_t *arr = json_array();
	unsigned int i;

	if (arr == NULL)
		return NULL;
	for (i = 0; i < HIST_NBUCKETS && h->count; i++) {
		if (h->buckets[i] == 0)
			continue;
		if (json_array_append_new(arr, json_pack("[Io]",
			(json_int_t)hist_bucket_lowest(i),
			report_u64(h->buckets[i]))) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}
