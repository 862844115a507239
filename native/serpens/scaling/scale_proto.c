/*
 * scale_proto.c: the names of serpensd's --scaling protocols (scale_shared.h), for every process.
 */
#include <stdio.h>
#include <string.h>

#include "scale_shared.h"

static const char *const names[SC_NPROTO] = {
	[SC_SHARED] = "shared", [SC_SNF] = "snf", [SC_S6] = "s6", [SC_CHC] = "chc", [SC_OPENNF] = "opennf"};

const char *sc_protocol_name(enum sc_protocol p) { return (unsigned int)p < SC_NPROTO ? names[p] : "?"; }

int sc_protocol_parse(const char *s, uint32_t *onf_mode)
{
	int i;

	*onf_mode = SC_ONF_ORDER; /* OpenNF's move with both of its guarantees */
	if (!strcmp(s, "opennf-loss-free")) {
		*onf_mode = SC_ONF_LOSS_FREE;
		return SC_OPENNF;
	}
	for (i = 0; i < SC_NPROTO; i++)
		if (!strcmp(s, names[i]))
			return i;
	return -1;
}

const char *sc_protocol_names(const char *sep)
{
	static char buf[128];
	size_t len = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < SC_NPROTO; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? sep : "", names[i]);
	snprintf(buf + len, sizeof(buf) - len, "%sopennf-loss-free", sep);
	return buf;
}
