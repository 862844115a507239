/*
 * runtime_trim.c: the all-zero pages of a secondary's own memseg-list arrays, given back.
 *
 * In dynamic memory mode every DPDK secondary creates its own copy of each of the primary's memseg lists'
 * arrays (rte_fbarray files <runtime dir>/fbarray_memseg-<size>-<socket>-<list>_<pid> on tmpfs): which
 * hugepage segments this process has mapped, so that it can follow the primary's memory hotplug. Their
 * size is fixed by DPDK's build (here 4 lists x 8192 segments x 48 B: 1.5 MiB), and rte_fbarray_init
 * zero-fills the whole file, so all of it is allocated in every secondary although only the pages of
 * the segments in use (a few) and each list's used-mask hold anything. Measured: 1.5 MiB of a pool
 * process's 2.7 MiB PSS.
 *
 * A page of such a file that is all zero is punched out (fallocate PUNCH_HOLE): the file reads the same,
 * zeros, and a page comes back only when something touches it again (a hotplug sync that maps a new
 * segment). The check and the punch run under the memory hotplug read lock: the primary holds the write
 * lock while it allocates or frees hugepage memory and while it has the secondaries sync, so no sync can
 * write into a page between the check and the punch.
 */
#include "runtime_trim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_eal_memconfig.h>

static int page_is_zero(const uint64_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len / sizeof(*p); i++)
		if (p[i])
			return 0;
	return 1;
}

/* One of this process's own memseg-list arrays? */
static int own_fbarray(const char *path, const char *dir, const char *suffix)
{
	size_t n = strlen(dir), ls = strlen(path), lsuf = strlen(suffix);

	return !strncmp(path, dir, n) && path[n] == '/' && !strncmp(path + n + 1, "fbarray_memseg", 14) &&
	       ls > lsuf && !strcmp(path + ls - lsuf, suffix);
}

long rt_trim_fbarrays(char *err, size_t errlen)
{
	const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	char line[PATH_MAX + 128], path[PATH_MAX], suffix[32], dir[PATH_MAX];
	unsigned long a, b, off, p;
	long freed = 0;
	FILE *maps = fopen("/proc/self/maps", "r");
	int fd;

	if (!maps || !realpath(rte_eal_get_runtime_dir(), dir)) { /* maps names it resolved (/var/run -> /run) */
		snprintf(err, errlen, "cannot read /proc/self/maps or resolve %s: %s", rte_eal_get_runtime_dir(),
			 strerror(errno));
		if (maps)
			fclose(maps);
		return -1;
	}
	snprintf(suffix, sizeof(suffix), "_%d", (int)getpid());
	rte_mcfg_mem_read_lock();
	while (fgets(line, sizeof(line), maps)) {
		if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %4095s", &a, &b, &off, path) != 4 ||
		    !own_fbarray(path, dir, suffix))
			continue;
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
			freed = -1;
			break;
		}
		for (p = a; p < b; p += pg)
			if (page_is_zero((const uint64_t *)p, pg) &&
			    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(off + (p - a)), (off_t)pg) == 0)
				freed += (long)pg;
		close(fd);
	}
	rte_mcfg_mem_read_unlock();
	fclose(maps);
	return freed;
}
