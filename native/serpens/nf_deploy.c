/*
 * nf_deploy.c: deploy_nf, the NF Manager's side of a deployment in serpensd (the steps themselves are
 * shared with serpens-startbench: native/serpens/startup/nfm.c). Every deployment gets its own copy of the
 * object in the NF directory, its init runs once here in deploy mode (tables created in the State
 * Manager, initial state written), and for the startup methods that map images the image is built once.
 * Separate from the SFC graph and the instances because it is the only part that touches NF objects and
 * their files.
 *
 * What a deployed NF costs serpensd's memory (docs/startup.md, "Memory"): its descriptor (in the control
 * memzone: hugepages), its image (serpens: the memfd's allocated pages; snapshot: a file on disk), and —
 * unless it is unloaded after its deploy-mode init — the deployment's dlopen in serpensd (its mapped pages,
 * its copy-on-write data, the loader's bookkeeping: ~28 KiB for FW). serpensd needs the NF loaded only to
 * call into it: its own state hooks (split/merge/update, run by the State Manager here) and its selectors
 * (checked at deploy_sfc). So an NF with an image, whose tables have only the default hooks (with the
 * State Manager's own backend: a remote backend keeps hook pointers of its own), is unloaded at once, and
 * its selectors are looked up in its image instead (nf_defines).
 */
#include <dlfcn.h>
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
#include "handover.h"
#include "nfm.h"

static void *nf_dl[SP_MAX_NFS]; /* each NF as serpensd's deploy-time init loaded it, NULL once unloaded */
static char nf_dir[PATH_MAX];

static int open_image(const struct sp_nf_desc *d)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", d->image_fd); /* its own offset, read-only */
	return open(path, O_RDONLY | O_CLOEXEC);
}

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

/* The image of NF `nf` mapped read-only at its base for a look-up, or -1: its memfd, or its snapshot. */
static int map_image_for_lookup(const struct sp_nf_desc *d)
{
	int fd = d->image_fd >= 0 ? open_image(d) : (d->snapshot[0] ? open(d->snapshot, O_RDONLY | O_CLOEXEC) : -1);
	void *m;

	if (fd < 0)
		return -1;
	/* read-only and shared: nothing is copied, and the pages read (symbols, the selector's pointer) are
	 * pages the image holds anyway */
	m = mmap((void *)d->image.base, d->image.size, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		return -1;
	if (m != (void *)d->image.base) {
		munmap(m, d->image.size);
		return -1;
	}
	return 0;
}

bool nf_defines(int nf, const char *sym)
{
	const struct sp_nf_desc *d = &D->ctl->nfs[nf];
	const void *const *p;
	bool found;

	if (nf_dl[nf]) {
		p = dlsym(nf_dl[nf], sym);
		return p && *p;
	}
	if (!d->has_image || map_image_for_lookup(d) != 0)
		return false;
	p = ldr_sym(&d->image, sym);
	found = p && *p;
	munmap((void *)d->image.base, d->image.size);
	return found;
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

/* The NF's declared argument keys (SP_NF_ARGS in nf.h), checked against the deployment's before its init
 * runs: a typo ("blaklist") is refused, naming the key and the keys the NF takes, instead of being ignored
 * (a firewall that passes everything). An NF that declares nothing is not checked (older NFs). NULL: fine,
 * else the error reply. The copy is loaded here (and stays loaded: nfm_deploy_init's dlopen of the same
 * file shares it) only to read the declaration. */
static json_t *check_arg_keys(const struct sp_nf_desc *d, void **dl)
{
	const char *const *known, *const *k;
	const char *a;
	char list[512];
	size_t off = 0;

	*dl = dlopen(d->path, RTLD_NOW | RTLD_LOCAL);
	if (!*dl)
		return NULL; /* the loader's own error comes from nfm_deploy_init */
	known = dlsym(*dl, "serpens_nf_args");
	if (!known)
		return NULL;
	for (a = d->args; *a; a += strlen(a) + 1, a += strlen(a) + 1) {
		for (k = known; *k && strcmp(*k, a); k++)
			;
		if (*k)
			continue;
		for (k = known; *k && off < sizeof(list); k++)
			off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s", k == known ? "" : ", ", *k);
		return fail("deploy_nf %s: unknown argument '%.64s'; the NF takes %s", d->name, a,
			    off ? list : "no arguments");
	}
	return NULL;
}

json_t *deploy_nf(json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	const char *path = json_string_value(json_object_get(req, "path"));
	json_t *args = json_object_get(req, "args"), *v, *tables, *bad;
	char tenant[SM_TENANT_LEN];
	struct sp_nf_desc *d = NULL;
	struct st_loaded loaded;
	struct st_nf view;
	const char *key;
	char err[600], from[64];
	struct sm_region *region;
	unsigned int before;
	bool hooked;
	int i, slot = -1, fd, rc, tidx;
	size_t off = 0;
	void *dl;

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
	if ((bad = check_arg_keys(d, &dl))) {
		if (dl)
			dlclose(dl); /* its init never ran: nothing of it to keep */
		nfm_remove(d->path);
		return bad;
	}
	/* its tables are its tenant's (state.h), in its tenant's own region (tenant_region.h; made now if this
	 * is the tenant's first NF) */
	tidx = tr_index(d->tenant, true, err, sizeof(err));
	if (tidx < 0 || sm_set_region(tr_region(tidx)) != 0) {
		if (dl)
			dlclose(dl);
		nfm_remove(d->path);
		return fail("deploy_nf %s: %s", name, tidx < 0 ? err : "no room for another state region");
	}
	region = tr_region(tidx);
	before = sm_table_count(region);
	chainer_nf_view(d, &view);
	sm_set_tenant(d->tenant);
	rc = nfm_deploy_init(&view, &loaded, err, sizeof(err));
	hooked = sm_tables_hooked(before, sm_table_count(region)); /* the handles of the current region */
	sm_set_tenant(SM_DEFAULT_TENANT);
	sm_set_region(D->state);
	if (dl)
		dlclose(dl); /* loaded.dl holds the object now (or nothing does) */
	if (rc != 0) {
		nf_dl[slot] = loaded.dl; /* kept when init failed: its tables may exist */
		nfm_remove(d->path);
		return fail("deploy_nf: %s", err);
	}
	nf_dl[slot] = loaded.dl;
	if (D->starter->image && build_image(slot, d, err, sizeof(err)) != 0) {
		nfm_remove(d->path);
		return fail("deploy_nf: %s", err); /* what the loader cannot honour is refused */
	}
	/* runtimes of its tenant get the image by descriptor, and only they (handover.h) */
	if (d->has_image && d->image_fd >= 0)
		ho_image_add(slot, d->image_fd, tidx);
	/* unloaded unless serpensd must call into it (above) */
	if (d->has_image && D->ctl->state_backend == RS_SERPENS && !hooked) {
		dlclose(nf_dl[slot]);
		nf_dl[slot] = NULL;
	}
	d->used = 1;
	tables = json_array();
	for (i = (int)before; i < (int)sm_table_count(region); i++)
		json_array_append_new(tables, json_string(sm_table_name(region, (unsigned int)i)));
	return json_pack("{s:b, s:o, s:s}", "ok", 1, "tables", tables, "tenant", d->tenant);
}

void control_cleanup(struct serpensd *d)
{
	int i;

	for (i = 0; i < SP_MAX_NFS; i++)
		if (d->ctl->nfs[i].used) {
			nfm_remove(d->ctl->nfs[i].path);
			if (d->ctl->nfs[i].snapshot[0])
				nfm_remove(d->ctl->nfs[i].snapshot);
		}
	rmdir(nf_dir);
}
