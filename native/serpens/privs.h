/*
 * privs.h: what a runtime gives up before any NF code runs in it (docs/security.md).
 */
#ifndef SERPENS_PRIVS_H
#define SERPENS_PRIVS_H

#include <stddef.h>

/* PR_SET_NO_NEW_PRIVS, then drop every capability in privs.c's list from the effective, permitted and
 * inheritable sets and from the bounding set. 0, or -1 with err. */
int sp_drop_privileges(char *err, size_t errlen);

#endif
