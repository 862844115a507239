/*
 * privs.h: what a runtime gives up before any NF code runs in it (docs/security.md).
 */
#ifndef SERPENS_PRIVS_H
#define SERPENS_PRIVS_H

#include <stddef.h>

/* PR_SET_NO_NEW_PRIVS, not dumpable, then every capability dropped: effective, permitted, inheritable,
 * ambient and bounding set (privs.c says why none is kept). 0, or -1 with err. */
int sp_drop_privileges(char *err, size_t errlen);

#endif
