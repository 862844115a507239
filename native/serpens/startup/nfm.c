/* nfm.c: the NF Manager's deployment steps (nfm.h). */
#include "nfm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"

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
	close(out);
	if (n < 0) {
		snprintf(err, errlen, "cannot copy %s to %s", from, to);
		return -1;
	}
	return 0;
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
	int fd = memfd_create(name, 0), rc;

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
	close(out);
	return 0;
}
