/* local_proxy.h: the local proxy of --chaining local-proxy (SAND's per-server bus), run by
 * serpens-runtime -P (local_proxy.c). */
#ifndef SERPENS_LOCAL_PROXY_H
#define SERPENS_LOCAL_PROXY_H

#include "ctl.h"

/* Serve until serpensd stops it; the process's exit status. */
int local_proxy_run(struct sp_ctl *ctl);

#endif
