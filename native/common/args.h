/*
 * args.h: strict number parsing for the application arguments (after "--").
 *
 * Why: the Python driver builds these command lines; a typo must fail loudly
 * (exit 2) instead of silently becoming 0 the way atoi() would.
 */
#ifndef SERPENS_ARGS_H
#define SERPENS_ARGS_H

#include <stdint.h>

/* Each returns 0 on success, -1 if s is not a complete number in range. */
int arg_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int arg_double(const char *s, double min, double max, double *out);

#endif
