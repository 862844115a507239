/*
 * gp_dir.c: the global proxy's directory mapping (see gp_dir.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gp_dir.h"

struct gp_dir *gp_dir_create(const char *path, uint64_t tsc_hz)
{
	struct gp_dir *d;
	int fd, saved;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	if (ftruncate(fd, sizeof(*d)) != 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	d = mmap(NULL, sizeof(*d), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	saved = errno;
	close(fd); /* the mapping keeps the file */
	if (d == MAP_FAILED) {
		errno = saved;
		return NULL;
	}
	memset(d, 0, sizeof(*d));
	d->version = GP_DIR_VERSION;
	d->size = sizeof(*d);
	d->tsc_hz = tsc_hz;
	__atomic_store_n(&d->magic, GP_DIR_MAGIC, __ATOMIC_RELEASE);
	return d;
}

struct gp_dir *gp_dir_open(const char *path, char *err, unsigned int errlen)
{
	struct gp_dir *d;
	struct stat st;
	int fd;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open the directory %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(*d)) {
		snprintf(err, errlen, "%s is not a gproxy directory (%lld bytes, want %zu)", path,
			 (long long)st.st_size, sizeof(*d));
		close(fd);
		return NULL;
	}
	d = mmap(NULL, sizeof(*d), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (d == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
		return NULL;
	}
	if (__atomic_load_n(&d->magic, __ATOMIC_ACQUIRE) != GP_DIR_MAGIC || d->version != GP_DIR_VERSION ||
	    d->size != sizeof(*d)) {
		snprintf(err, errlen, "%s: wrong magic, version or size (built from another gp_dir.h?)", path);
		munmap(d, sizeof(*d));
		return NULL;
	}
	return d;
}

void gp_dir_close(struct gp_dir *d)
{
	if (d)
		munmap(d, sizeof(*d));
}

void gp_dir_set_route(struct gp_dir *d, unsigned int sfc, unsigned int pos, const int8_t *slots,
		      unsigned int n)
{
	struct gp_route *r;

	if (sfc >= GP_MAX_SFCS || pos >= GP_MAX_POS)
		return;
	r = &d->routes[sfc][pos];
	if (n > GP_MAX_SLOTS)
		n = GP_MAX_SLOTS;
	__atomic_fetch_add(&d->seq, 1, __ATOMIC_ACQ_REL); /* odd: readers retry */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memset(r->slot, -1, sizeof(r->slot));
	if (n)
		memcpy(r->slot, slots, n);
	r->n = (uint8_t)n;
	__atomic_fetch_add(&d->seq, 1, __ATOMIC_RELEASE); /* even again: the new table is complete */
}

uint32_t gp_dir_snapshot(const struct gp_dir *d, struct gp_route out[GP_MAX_SFCS][GP_MAX_POS])
{
	uint32_t s1, s2;

	for (;;) {
		s1 = __atomic_load_n(&d->seq, __ATOMIC_ACQUIRE);
		if (s1 & 1) {
			__builtin_ia32_pause();
			continue;
		}
		memcpy(out, d->routes, sizeof(d->routes));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&d->seq, __ATOMIC_RELAXED);
		if (s1 == s2)
			return s1;
	}
}

int gp_dir_ring(struct gp_dir *d)
{
	/* Dekker with the proxy: what it should see (packets on the link, routes) is published before we
	 * read `sleeping`; it publishes `sleeping` before it looks for work. The fence keeps our earlier
	 * stores (a memif ring's head) from passing this load on x86. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!__atomic_load_n(&d->sleeping, __ATOMIC_SEQ_CST))
		return 0;
	__atomic_fetch_add(&d->doorbell, 1, __ATOMIC_SEQ_CST);
	gp_dir_futex_wake(&d->doorbell, 1);
	return 1;
}

int gp_dir_futex_wait(uint32_t *word, uint32_t val, long timeout_ns)
{
	struct timespec ts = {.tv_sec = timeout_ns / 1000000000L, .tv_nsec = timeout_ns % 1000000000L};

	return (int)syscall(SYS_futex, word, FUTEX_WAIT, val, timeout_ns > 0 ? &ts : NULL, NULL, 0);
}

int gp_dir_futex_wake(uint32_t *word, int n)
{
	return (int)syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}
