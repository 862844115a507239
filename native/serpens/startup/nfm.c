/* nfm.c: the NF Manager's deployment steps (nfm.h). */
#include "nfm.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"

static int set_immutable(int fd, bool on)
{
	int flags;

	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0)
		return -1;
	flags = on ? flags | FS_IMMUTABLE_FL : flags & ~FS_IMMUTABLE_FL;
	return ioctl(fd, FS_IOC_SETFLAGS, &flags);
}

int nfm_copy(const char *from, const char *to, char *err, size_t errlen)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY), out;

	if (in < 0) {
		snprintf(err, errlen, "cannot open %s: %s", from, strerror(errno));
		return -1;
	}
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	if (out < 0) {
		snprintf(err, errlen, "cannot create %s: %s", to, strerror(errno));
		close(in);
		return -1;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			n = -1;
			break;
		}
	close(in);
	if (n < 0) {
		close(out);
		snprintf(err, errlen, "cannot copy %s to %s", from, to);
		return -1;
	}
	/* Runtimes dlopen this copy and run as root, so mode 0444 would not stop one from writing it (and
	 * the next instance of another tenant from executing what it wrote): the copy is made immutable,
	 * which root too must first undo — with CAP_LINUX_IMMUTABLE, which runtimes drop (runtime.c). */
	if (fchmod(out, 0444) != 0 || set_immutable(out, true) != 0) {
		snprintf(err, errlen, "cannot make %s immutable (FS_IMMUTABLE_FL; the NF directory must be on a "
			 "file system that supports it, e.g. ext4, xfs, tmpfs): %s", to, strerror(errno));
		close(out);
		unlink(to);
		return -1;
	}
	close(out);
	return 0;
}

int nfm_remove(const char *path)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);

	if (fd >= 0) {
		set_immutable(fd, false);
		close(fd);
	}
	return unlink(path);
}

int nfm_deploy_init(const struct st_nf *nf, struct st_loaded *out, char *err, size_t errlen)
{
	sm_set_phase_deploy(true);
	sm_set_instance(-1);
	return st_load_dlopen(nf, out, err, errlen);
}

int nfm_image_build(const char *path, const char *name, uintptr_t base, size_t span, struct ldr_image *img,
		    uint64_t *bytes, char *err, size_t errlen)
{
	char why[400];
	struct stat st;
	void *m;
	/* sealable: once built, nobody (serpensd included) can change the bytes runtimes execute */
	int fd = memfd_create(name, MFD_ALLOW_SEALING), rc;

	if (fd < 0 || ftruncate(fd, (off_t)span) != 0) {
		snprintf(err, errlen, "NF %s: cannot create its image memfd: %s", name, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "NF %s: cannot map its image memfd: %s", name, strerror(errno));
		close(fd);
		return -1;
	}
	/* the image stays pristine: deploy-mode init ran through dlopen, on the deployment's own copy */
	rc = ldr_image_build(path, m, span, base, img, why, sizeof(why));
	munmap(m, span);
	if (rc != 0) {
		snprintf(err, errlen, "NF %s: the shared-memory loader refuses it: %s", name, why);
		close(fd);
		return -1;
	}
	/* Sealed after the build (its only writable mapping is gone): every runtime opens this memfd through
	 * /proc/<serpensd>/fd/N, and as root it could open it read-write — the seals make write(), a
	 * MAP_SHARED|PROT_WRITE mapping and resizing fail for everyone. Runtimes map code MAP_SHARED read-only
	 * and the writable data MAP_PRIVATE (copy-on-write: loader/), which a sealed memfd allows. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
		snprintf(err, errlen, "NF %s: cannot seal its image memfd: %s", name, strerror(errno));
		close(fd);
		return -1;
	}
	if (bytes)
		*bytes = fstat(fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
	return fd;
}

int nfm_snapshot_write(int fd, const struct ldr_image *img, const char *to, char *err, size_t errlen)
{
	static char buf[65536];
	ssize_t n;
	off_t off;
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (out < 0) {
		snprintf(err, errlen, "cannot write the snapshot %s: %s", to, strerror(errno));
		return -1;
	}
	/* pread, not through a mapping: that would allocate the image's zero pages in the memfd */
	for (off = 0; off < (off_t)img->size; off += n) {
		n = pread(fd, buf, sizeof(buf), off);
		if (n <= 0 || write(out, buf, (size_t)n) != n) {
			snprintf(err, errlen, "cannot write the snapshot %s: %s", to, strerror(errno));
			close(out);
			return -1;
		}
	}
	/* runtimes map it MAP_PRIVATE; like the dlopen copy, none of them may change it (nfm_copy) */
	if (fchmod(out, 0444) != 0 || set_immutable(out, true) != 0) {
		snprintf(err, errlen, "cannot make the snapshot %s immutable: %s", to, strerror(errno));
		close(out);
		unlink(to);
		return -1;
	}
	close(out);
	return 0;
}
