/*
 * eal_init_lock.c: one DPDK secondary initialising its EAL at a time (see eal_init_lock.h for the race).
 */
#include "eal_init_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <rte_eal.h>

int eal_init_lock_publish(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		snprintf(err, errlen, "cannot create the EAL init lock %s: %s", path, strerror(errno));
		return -1;
	}
	close(fd);
	if (setenv(EAL_INIT_LOCK_ENV, path, 1) != 0) {
		snprintf(err, errlen, "cannot set %s: %s", EAL_INIT_LOCK_ENV, strerror(errno));
		return -1;
	}
	return 0;
}

int eal_init_serialised(int argc, char **argv)
{
	const char *path = getenv(EAL_INIT_LOCK_ENV);
	int fd, ret;

	if (!path || !*path)
		return rte_eal_init(argc, argv);
	/* a named lock that cannot be taken is an error, not a reason to run into the race unprotected */
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "cannot open the EAL init lock %s (%s): %s\n", path, EAL_INIT_LOCK_ENV, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) != 0) {
		if (errno != EINTR) {
			fprintf(stderr, "cannot lock the EAL init lock %s: %s\n", path, strerror(errno));
			close(fd);
			return -1;
		}
	}
	ret = rte_eal_init(argc, argv);
	close(fd); /* releases the lock: the next secondary may initialise */
	return ret;
}
