/*
 * attack_report.h: how the hostile test NFs that run in a runtime (hostile.c, hostile_redis.c) say what
 * each attempt did: one line "<attack> <what> blocked|SUCCEEDED <detail>" appended to the file their init
 * opened as `out` (the argument `report`), flushed at once so that the test reads every line even if the
 * process is killed. (hostile_init.c cannot write a file — the deploy child's mounts are read-only — and
 * reports into a table instead.) A header of static definitions: each test NF is a shared object of its
 * own, built from one source file.
 */
#ifndef SERPENS_TESTNFS_ATTACK_REPORT_H
#define SERPENS_TESTNFS_ATTACK_REPORT_H

#include <stdarg.h>
#include <stdio.h>

static FILE *out;

__attribute__((format(printf, 4, 5))) static void report(const char *attack, const char *what, int ok,
							const char *fmt, ...)
{
	va_list ap;

	if (!out)
		return;
	fprintf(out, "%s %s %s ", attack, what, ok ? "SUCCEEDED" : "blocked");
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	fflush(out);
}

#endif /* SERPENS_TESTNFS_ATTACK_REPORT_H */
