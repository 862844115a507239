/*
 * nfm.h: the NF Manager's deployment steps, shared by serpensd and serpens-startbench: every deployment
 * gets its own copy of the object (two deployments never share globals), init runs once in deploy mode
 * in the State Manager (tables created, initial state written), and for the methods that need it the
 * shared-memory image is built once into a memfd and saved to a file (starter.h: image, snapshot).
 */
#ifndef SERPENS_NFM_H
#define SERPENS_NFM_H

#include <stddef.h>
#include <stdint.h>

#include "starter.h"

/* The copy is read-only and immutable (FS_IMMUTABLE_FL: docs/security.md); remove it with nfm_remove. */
int nfm_copy(const char *from, const char *to, char *err, size_t errlen);
/* Clear the copy's immutable flag and unlink it (what unlink(2) returns). */
int nfm_remove(const char *path);
/* init in deploy mode through the same dlopen loader the load/exec/fork starters use; the NF stays
 * loaded in *out (the caller may keep it for its selectors or st_unload it). 0, or -1 with err. serpensd
 * never calls it itself: a tenant's deployer's confined child does (deployer.h); serpens-startbench,
 * which has no tenants, calls it in its own process. */
int nfm_deploy_init(const struct st_nf *nf, struct st_loaded *out, char *err, size_t errlen);
/* Build the image of the object at `path` for address `base` into a new memfd of `span` bytes: its fd,
 * or -1 with err. *bytes: what the image occupies (allocated blocks). */
int nfm_image_build(const char *path, const char *name, uintptr_t base, size_t span, struct ldr_image *img,
		    uint64_t *bytes, char *err, size_t errlen);
/* Save the first img->size bytes of the image memfd to `to` (the snapshot method's file). */
int nfm_snapshot_write(int fd, const struct ldr_image *img, const char *to, char *err, size_t errlen);

#endif
