/* deployer_client.h: serpensd's side of the tenants' deployers (deployer.h). Control thread only. */
#ifndef SERPENS_DEPLOYER_CLIENT_H
#define SERPENS_DEPLOYER_CLIENT_H

#include <sys/types.h>

#include "deployer.h"

#pragma GCC visibility push(hidden)

/* Run deployment q's init in deploy mode in the deployer of tenant `tenant` (state region index t),
 * starting that deployer first if it has none. 0: *rep holds the outcome (rep->ok, else rep->err), -1: no
 * outcome (the deployer could not start, died, or did not answer), err says why. */
int dc_deploy(int t, const char *tenant, const struct dp_request *q, struct dp_reply *rep, char *err,
	      size_t errlen);
pid_t dc_pid(int t);   /* tenant region t's deployer, or 0 */
void dc_stop_all(void); /* at exit: every deployer killed and reaped */

#pragma GCC visibility pop

#endif
