/*
 * deployer.h: deploy-mode NF init out of serpensd (docs/security.md, "Deploy-mode init").
 *
 * An NF's init runs once in deploy mode when it is deployed: the State Manager creates its tables and init
 * writes their initial state. That is tenant code, so it must not run in serpensd (root, every capability,
 * every tenant's state region mapped). Instead each tenant gets a deployer: a serpens-runtime started as
 * a DPDK secondary of serpensd (`-D <tenant>`) at the tenant's first deploy_nf, which maps that tenant's
 * state region only (handed over as to a runtime: tenant_region.h) and stays. For each deploy_nf serpensd
 * sends it a request over a Unix socket (the deployer listens, serpensd connects and checks the listener's
 * pid); the deployer forks a child, which makes a PID namespace of its own and forks the process that runs
 * init as its PID 1 (when that ends, the kernel kills whatever the init forked; the deployer, a child
 * subreaper, reaps what is left). That process
 *   - confines itself: a mount namespace of its own with every file system read-only, no supplementary
 *     groups, uid/gid nobody (which clears every capability), not dumpable, no new privileges, killed
 *     with its deployer;
 *   - loads the deployment's copy (dlopen), checks the deployment's argument keys, runs init in deploy mode
 *     (tables created in the tenant's region, state written there or in the remote store);
 *   - reports the outcome to its deployer over a pipe and exits.
 * The deployer waits for the child (a time limit, then SIGKILL), and replies to serpensd: ok, or the error
 * string the deploy_nf reply carries. serpensd then takes the new tables from the region's directory
 * (sm_adopt_tables, rs_table_adopt): nothing it keeps about a table is filled by tenant code in its own
 * memory.
 *
 * Why a resident deployer per tenant with a child per deploy (and not a fresh secondary per deploy, or a
 * pool process): an exec'd secondary costs its EAL initialisation (~25-30 ms) per deploy, 500 of them in
 * Fig. 11(b); a fork costs ~1 ms. The child, not the deployer, runs tenant code: nothing an init leaves
 * behind (globals, threads, handlers) reaches the next deployment. A pool process is bound to no tenant
 * until a start and exists only with pooled startup methods.
 */
#ifndef SERPENS_DEPLOYER_H
#define SERPENS_DEPLOYER_H

#include <stdint.h>
#include <sys/types.h>

#include "ctl.h"

#define DP_SOCK_FMT "serpens-deployer-%d"    /* abstract socket of the deployer with that pid */
#define DP_INIT_TIMEOUT_MS 20000             /* a deploy-mode init that runs longer is killed */
#define DP_REPLY_TIMEOUT_MS (DP_INIT_TIMEOUT_MS + 5000) /* serpensd's wait for the deployer's reply */
#define DP_UID 65534                         /* nobody: the deploy child's uid and gid */
#define DP_ERR_LEN 600
#define DP_SELECTORS_LEN 1024

/* serpensd -> deployer: one deployment (the copy is <dir>/<file> in serpensd's NF directory) */
struct dp_request {
	char name[SP_NAME_LEN];
	char dir[SP_PATH_LEN];
	char file[SP_NAME_LEN + 4];
	char args[SP_ARGS_LEN];
	uint32_t args_len;
};

/* deployer -> serpensd: the outcome */
struct dp_reply {
	int32_t ok;
	int32_t hooked;                      /* a table with the NF's own split/merge/update hook */
	uint32_t ntables;                    /* the region's table count after init (serpensd checks it) */
	char err[DP_ERR_LEN];                /* the deploy_nf reply's error, complete ("deploy_nf ...") */
	char selectors[DP_SELECTORS_LEN];    /* the NF's selectors defined non-NULL: "name\0name\0\0" */
};

/* serpens-runtime -D <tenant>: the deployer process (deployer.c), after EAL initialisation and before the
 * runtime's privilege drop. Returns the process's exit status. */
int deployer_run(const char *tenant);

#endif /* SERPENS_DEPLOYER_H */
