/*
 * handover.h: the descriptors serpensd hands a runtime, and only those (docs/security.md).
 *
 * A runtime needs two kinds of descriptor it must not be able to reach by itself: its tenant's state
 * region (tenant_region.h) and the sealed image memfds of the NFs of the SFC it starts (--startup serpens:
 * native/serpens/loader). Opening either through /proc/<serpensd>/... would need ptrace rights over
 * serpensd (CAP_SYS_PTRACE), and with those an NF reads and writes serpensd's memory, every tenant's
 * region included. So serpensd passes them (SCM_RIGHTS) over a Unix socket the runtime listens on
 * (abstract name "serpens-region-<pid>"), after checking the listener is that pid (SO_PEERCRED); the
 * runtime takes messages only from its parent, serpensd.
 *
 * What serpensd sends is decided by what it knows privately, never by the shared control memzone (every
 * runtime can write that): the tenant it started the process for, the SFC it started (its NFs as
 * deploy_sfc saw them, ho_sfc_add) and each NF's tenant (deploy_nf, ho_image_add). An image goes only to
 * a process of the NF's own tenant, and only with the start (or prewarm) of an SFC that uses it.
 *
 * With the region goes the tenant's Redis credential (remote_acl.c), when serpensd made one: the name and
 * password of the Redis ACL user that reaches only that tenant's keys. It is in serpensd's memory only
 * (never in the control memzone, a file or a command line) and in the processes of that tenant.
 *
 * One message: struct ho_msg, and its descriptors in order — the region's first if region >= 0, then one
 * per entry of nf[].
 */
#ifndef SERPENS_HANDOVER_H
#define SERPENS_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctl.h"

/* ---- serpensd ---------------------------------------------------------------------------------- */

/* deploy_nf: NF slot nf of tenant `tenant` (a region index) has its image in serpensd's memfd `fd`. */
void ho_image_add(int nf, int fd, int tenant);
/* deploy_sfc, from serpensd's own copy of the SFC before it is published: the NFs SFC slot sfc runs. */
void ho_sfc_add(int sfc, const struct sp_sfc_desc *s, int tenant);
/* Tenant `tenant`'s (a region index) Redis user and password, sent with its region from now on. */
void ho_cred_set(int tenant, const char *user, const char *pass);
/* Does tenant have a Redis credential yet? */
bool ho_cred_known(int tenant);
/* Hand process pid (serving tenant `tenant`) that tenant's state region (if region) and the images of SFC
 * sfc's NFs (sfc >= 0) that are that tenant's. 0, or -1 with err. */
int ho_send(pid_t pid, int tenant, bool region, int sfc, char *err, size_t errlen);

/* ---- a runtime --------------------------------------------------------------------------------- */

/* Listen for serpensd's messages (before any NF code runs). 0, or -1 with err. */
int ho_listen(char *err, size_t errlen);
/* The word this process asks through (its slot's or zygote's region_req) and the futex word that wakes
 * serpensd's wait for it (the slot's or zygote's state). */
void ho_set_requester(uint32_t *req, uint32_t *wake);
/* Where an image descriptor that arrives goes (the Chainer's cache: chainer.c); without one it is closed. */
void ho_set_image_sink(void (*sink)(unsigned int nf, int fd));
/* Take every message serpensd has queued, without waiting. */
void ho_drain(void);
/* Ask serpensd (the request word, a wake) and wait for its answer: this start's region and images. 0, or
 * -1 with err. */
int ho_request(char *err, size_t errlen);
/* The descriptor of region idx that arrived, now the caller's, or -1. A region descriptor of another index
 * is closed (a start that failed before it took it). */
int ho_take_region(int idx);
/* The Redis user and password that came with the last region taken ("" before, or when serpensd has none):
 * stable buffers, rewritten when another region is taken (rs_config reads them at each connect). */
const char *ho_store_user(void);
const char *ho_store_pass(void);

#endif /* SERPENS_HANDOVER_H */
