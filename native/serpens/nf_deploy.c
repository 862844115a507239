/*
 * nf_deploy.c: deploy_nf, the NF Manager's side of a deployment in serpensd (the steps themselves are
 * shared with serpens-startbench: native/serpens/startup/nfm.c). Every deployment gets its own copy of the
 * object in the NF directory; its init runs once in deploy mode (tables created in the State Manager,
 * initial state written) — not here: in a confined child of the tenant's deployer (deployer.h,
 * docs/security.md), after which serpensd takes the new tables from the tenant's region; and for the
 * startup methods that map images the image is built once (parsed and relocated here, no NF code runs).
 * Separate from the SFC graph and the instances because it is the only part that touches NF objects and
 * their files.
 *
 * What a deployed NF costs serpensd's memory (docs/startup.md, "Memory"): its descriptor (in the control
 * memzone: hugepages), its image (serpens: the memfd's allocated pages; snapshot: a file on disk) and the
 * list of its selectors (checked at deploy_sfc: nf_defines). serpensd never loads an NF: an NF whose tables
 * have split/merge/update hooks of its own, which the State Manager would call here, is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chainer.h"
#include "control_int.h"
#include "deployer_client.h"
#include "handover.h"
#include "nfm.h"
#include "remote_state.h"
#include "tenant_region.h"

/* the selectors each NF defines, as its deployer found them ("name\0name\0\0"): deploy_sfc checks an SFC's
 * against these, without loading the NF in serpensd */
static char nf_selectors[SP_MAX_NFS][DP_SELECTORS_LEN];
static char nf_dir[PATH_MAX];

int nf_dir_setup(const struct serpensd *d)
{
	if (d->nf_dir)
		snprintf(nf_dir, sizeof(nf_dir), "%s", d->nf_dir);
	else
		snprintf(nf_dir, sizeof(nf_dir), "/tmp/serpensd-%d-nfs", (int)getpid());
	if (mkdir(nf_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "serpensd: cannot create %s: %s\n", nf_dir, strerror(errno));
		return -1;
	}
	return 0;
}

int find_nf(const char *name)
{
	int i;

	for (i = 0; i < SP_MAX_NFS; i++)
		if (D->ctl->nfs[i].used && strcmp(D->ctl->nfs[i].name, name) == 0)
			return i;
	return -1;
}

bool nf_defines(int nf, const char *sym)
{
	static const char pfx[] = "serpens_selector_";
	const char *p;

	if (nf < 0 || nf >= SP_MAX_NFS || strncmp(sym, pfx, sizeof(pfx) - 1) != 0)
		return false;
	for (p = nf_selectors[nf]; *p; p += strlen(p) + 1)
		if (strcmp(p, sym + sizeof(pfx) - 1) == 0)
			return true;
	return false;
}

/* Build the NF's image once, into a memfd that runtimes map at a fixed address (native/serpens/loader);
 * for --startup snapshot, save it to a file next to the object and keep nothing resident. */
static int build_image(int slot, struct sp_nf_desc *d, char *err, size_t errlen)
{
	int fd = nfm_image_build(d->path, d->name, SP_NF_IMAGE_BASE + (uint64_t)slot * SP_NF_IMAGE_SPAN,
				 SP_NF_IMAGE_SPAN, &d->image, NULL, err, errlen);

	if (fd < 0)
		return -1;
	d->image_fd = fd;
	d->owner_pid = (int32_t)getpid();
	if (D->starter->snapshot) {
		size_t n = strlen(d->path); /* <nf-dir>/<name>.so -> <nf-dir>/<name>.img */

		if (n < 3 || n + 2 > sizeof(d->snapshot)) {
			snprintf(err, errlen, "NF %s: its snapshot path would be too long", d->name);
			close(fd);
			return -1;
		}
		memcpy(d->snapshot, d->path, n - 3);
		memcpy(d->snapshot + n - 3, ".img", 5);
		if (nfm_snapshot_write(fd, &d->image, d->snapshot, err, errlen) != 0) {
			d->snapshot[0] = '\0';
			close(fd);
			return -1;
		}
		close(fd);
		d->image_fd = -1;
	}
	d->has_image = 1;
	return 0;
}

/* The NF object a request names, opened without blocking (a FIFO with no writer, or a device, would hold
 * the control thread) and only if it is a regular file: its fd, or -1 with err. The copy is then made
 * from this fd (/proc/self/fd/N), so what was checked is what gets deployed. */
static int open_object(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;

	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "cannot stat %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file (%s): an NF is a shared object", path,
			 S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISDIR(st.st_mode) ? "a directory" :
			 S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : S_ISSOCK(st.st_mode) ? "a socket" :
			 "not a file");
		close(fd);
		return -1;
	}
	return fd;
}

/* The tables [before, now) of region tidx, which deployment nf's deployer created: into serpensd's own
 * handles (splits, merges, timers, inspection), and for a remote backend into its table list. 0, or -1. */
static int adopt_tables(int tidx, const struct sp_nf_desc *d, unsigned int before, char *err, size_t errlen)
{
	struct sm_region *r = tr_region(tidx);
	unsigned int i, end = sm_table_count(r);
	uint32_t flags, ks, vs;
	uint64_t count;

	if (sm_adopt_tables(r, before, end, d->tenant, err, errlen) != 0)
		return -1;
	for (i = before; i < end; i++) {
		const char *name = sm_table_name(r, i);

		if (!sm_table_is_remote(r, name))
			continue;
		if (sm_table_info(r, name, &flags, &ks, &vs, &count) != 0 ||
		    rs_table_adopt(name, d->name, r, flags, ks, vs) != 0) {
			snprintf(err, errlen, "remote table %s: cannot take it over", name);
			return -1;
		}
	}
	return 0;
}

json_t *deploy_nf(json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	const char *path = json_string_value(json_object_get(req, "path"));
	json_t *args = json_object_get(req, "args"), *v, *tables, *bad;
	static struct dp_request q;
	static struct dp_reply rep;
	char tenant[SM_TENANT_LEN];
	struct sp_nf_desc *d = NULL;
	const char *key;
	char err[DP_ERR_LEN + 64], aerr[300], from[64];
	struct sm_region *region;
	unsigned int before;
	int i, slot = -1, fd, rc, tidx;
	size_t off = 0;

	if (!name || !*name || strlen(name) >= SP_NAME_LEN || strchr(name, '/') || !path)
		return fail("deploy_nf: 'name' (no '/', < %d chars) and 'path' are required", SP_NAME_LEN);
	if ((bad = tenant_field(req, "deploy_nf", tenant)))
		return bad;
	if (find_nf(name) >= 0)
		return fail("deploy_nf: an NF named '%s' is already deployed", name);
	for (i = 0; i < SP_MAX_NFS && slot < 0; i++)
		if (!D->ctl->nfs[i].used)
			slot = i;
	if (slot < 0)
		return fail("deploy_nf: %d NFs deployed already", SP_MAX_NFS);
	d = &D->ctl->nfs[slot];
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(d->tenant, sizeof(d->tenant), "%s", tenant);
	/* every deployment gets its own copy: two deployments of one object never share globals */
	if ((size_t)snprintf(d->path, sizeof(d->path), "%s/%s.so", nf_dir, name) >= sizeof(d->path)) {
		snprintf(err, sizeof(err), "the NF directory's path is too long");
		return fail("deploy_nf %s: %s", name, err);
	}
	if ((fd = open_object(path, err, sizeof(err))) < 0)
		return fail("deploy_nf %s: %s", name, err);
	snprintf(from, sizeof(from), "/proc/self/fd/%d", fd);
	rc = nfm_copy(from, d->path, err, sizeof(err));
	close(fd);
	if (rc != 0)
		return fail("deploy_nf %s: %s", name, err);
	if (args && !json_is_object(args))
		return fail("deploy_nf %s: 'args' must be an object of strings", name);
	json_object_foreach(args, key, v) {
		char num[64];
		const char *val = json_is_string(v) ? json_string_value(v) : NULL;
		size_t kl = strlen(key) + 1, vl;

		if (!val && json_is_number(v)) {
			snprintf(num, sizeof(num), "%.17g", json_number_value(v));
			val = num;
		}
		if (!val)
			return fail("deploy_nf %s: argument '%s' must be a string or a number", name, key);
		vl = strlen(val) + 1;
		if (off + kl + vl + 1 > sizeof(d->args))
			return fail("deploy_nf %s: arguments longer than %zu bytes", name, sizeof(d->args));
		memcpy(d->args + off, key, kl);
		memcpy(d->args + off + kl, val, vl);
		off += kl + vl;
	}
	d->args[off] = '\0';
	d->args_len = (uint32_t)off;
	/* its tables are its tenant's (state.h), in its tenant's own region (tenant_region.h; made now if this
	 * is the tenant's first NF) */
	tidx = tr_index(d->tenant, true, err, sizeof(err));
	if (tidx < 0) {
		nfm_remove(d->path);
		return fail("deploy_nf %s: %s", name, err);
	}
	/* its tenant's Redis ACL user, at the tenant's first deployment (remote_acl.c); handed to the tenant's
	 * processes with its region (handover.h) */
	if (D->ctl->state_backend != RS_SERPENS && D->redis_admin_pass[0] && !ho_cred_known(tidx)) {
		char user[RS_USER_LEN], pass[RS_PASS_LEN];

		if (rs_tenant_user(d->tenant, user, pass, err, sizeof(err)) != 0) {
			nfm_remove(d->path);
			return fail("deploy_nf %s: %s", name, err);
		}
		ho_cred_set(tidx, user, pass);
	}
	region = tr_region(tidx);
	before = sm_table_count(region);
	/* init, in deploy mode, in the tenant's deployer: never here (deployer.h, docs/security.md) */
	memset(&q, 0, sizeof(q));
	snprintf(q.name, sizeof(q.name), "%s", d->name);
	snprintf(q.dir, sizeof(q.dir), "%.*s", (int)sizeof(q.dir) - 1, nf_dir); /* shorter than d->path */
	snprintf(q.file, sizeof(q.file), "%s.so", d->name);
	memcpy(q.args, d->args, sizeof(q.args));
	q.args_len = d->args_len;
	if (dc_deploy(tidx, d->tenant, &q, &rep, err, sizeof(err)) != 0) {
		adopt_tables(tidx, d, before, aerr, sizeof(aerr)); /* whatever it created before it went */
		nfm_remove(d->path);
		return fail("%s", err);
	}
	if (adopt_tables(tidx, d, before, aerr, sizeof(aerr)) != 0) {
		nfm_remove(d->path);
		return fail("deploy_nf %s: %s", name, aerr);
	}
	if (!rep.ok) {
		nfm_remove(d->path); /* its tables stay, as a failed init left them */
		return fail("%s", rep.err);
	}
	/* The State Manager runs a table's split/merge/update hooks in serpensd: an NF's own hook is NF code,
	 * which no longer runs here (docs/security.md) */
	if (rep.hooked) {
		nfm_remove(d->path);
		return fail("deploy_nf %s: its tables have split/merge/update hooks of its own, which the State "
			    "Manager would run inside serpensd: refused (only the default hooks of nf.h)", name);
	}
	memcpy(nf_selectors[slot], rep.selectors, sizeof(nf_selectors[slot]));
	if (D->starter->image && build_image(slot, d, err, sizeof(err)) != 0) {
		nfm_remove(d->path);
		return fail("deploy_nf: %s", err); /* what the loader cannot honour is refused */
	}
	/* runtimes of its tenant get the image by descriptor, and only they (handover.h) */
	if (d->has_image && d->image_fd >= 0)
		ho_image_add(slot, d->image_fd, tidx);
	d->used = 1;
	tables = json_array();
	for (i = (int)before; i < (int)sm_table_count(region); i++)
		json_array_append_new(tables, json_string(sm_table_name(region, (unsigned int)i)));
	return json_pack("{s:b, s:o, s:s}", "ok", 1, "tables", tables, "tenant", d->tenant);
}

void control_cleanup(struct serpensd *d)
{
	int i;

	dc_stop_all(); /* no deploy child runs in (chroot'd to) the NF directory any more */
	for (i = 0; i < SP_MAX_NFS; i++)
		if (d->ctl->nfs[i].used) {
			nfm_remove(d->ctl->nfs[i].path);
			if (d->ctl->nfs[i].snapshot[0])
				nfm_remove(d->ctl->nfs[i].snapshot);
		}
	rmdir(nf_dir);
}
