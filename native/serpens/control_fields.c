/*
 * control_fields.c: the numeric fields of control requests, checked for type and range before anything
 * uses them. A value out of range is refused with one error that names the request, the field, the
 * allowed range and what was given — never cast into range (a slot 2^32 is not slot 0, a protocol 300 is
 * not 44). Separate because every request's handler shares it and it is pure checking.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_int.h"

/* What the client sent, for the error: short, and never the whole of a huge value. */
static void given(json_t *v, char *out, size_t len)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

	snprintf(out, len, "%.40s%s", s ? s : "?", s && strlen(s) > 40 ? "..." : "");
	free(s);
}

json_t *int_field(json_t *req, const char *cmd, const char *field, json_int_t min, json_int_t max, json_int_t dflt,
		  json_int_t *out)
{
	json_t *v = json_object_get(req, field);
	char got[48];

	*out = dflt;
	if (!v)
		return NULL;
	if (json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= max) {
		*out = json_integer_value(v);
		return NULL;
	}
	given(v, got, sizeof(got));
	return fail("%s: '%s' must be an integer in %lld..%lld, got %s", cmd, field, (long long)min, (long long)max,
		    got);
}

json_t *num_field(json_t *req, const char *cmd, const char *field, double min, double max, double dflt,
		  double *out)
{
	json_t *v = json_object_get(req, field);
	char got[48];

	*out = dflt;
	if (!v)
		return NULL;
	if (json_is_number(v) && isfinite(json_number_value(v)) && json_number_value(v) >= min &&
	    json_number_value(v) <= max) {
		*out = json_number_value(v);
		return NULL;
	}
	given(v, got, sizeof(got));
	return fail("%s: '%s' must be a number in %g..%g, got %s", cmd, field, min, max, got);
}

json_t *only_fields(json_t *req, const char *cmd, const char *const *known)
{
	char list[256];
	const char *key;
	size_t off = 0, i;
	json_t *v;

	json_object_foreach(req, key, v) {
		bool ok = !strcmp(key, "cmd");

		for (i = 0; known[i] && !ok; i++)
			ok = !strcmp(key, known[i]);
		if (ok)
			continue;
		for (i = 0; known[i] && off < sizeof(list); i++)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", known[i]);
		return fail("%s: unknown field '%.64s' (known: %s)", cmd, key, list);
	}
	return NULL;
}

json_t *tenant_field(json_t *req, const char *cmd, char *out)
{
	json_t *v = json_object_get(req, "tenant");
	char got[48];

	snprintf(out, SM_TENANT_LEN, "%s", SM_DEFAULT_TENANT);
	if (!v)
		return NULL;
	if (json_is_string(v) && sm_tenant_valid(json_string_value(v))) {
		snprintf(out, SM_TENANT_LEN, "%s", json_string_value(v));
		return NULL;
	}
	given(v, got, sizeof(got));
	return fail("%s: 'tenant' must be 1..%d characters of A-Z a-z 0-9 _ -, got %s", cmd, SM_TENANT_LEN - 1, got);
}

int hex_field_decode(const char *hex, uint8_t *out, size_t max)
{
	size_t n = strlen(hex), i;
	unsigned int b;

	if (n % 2 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++) {
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = (uint8_t)b;
	}
	return (int)(n / 2);
}
