/*
 * eal_files.c: hugepage/runtime file clean-up for primary processes (see
 * eal_files.h).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_memory.h>

#include "eal_files.h"

static int seen(const struct eal_files *f, const char *path)
{
	unsigned int i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->paths[i], path) == 0)
			return 1;
	return 0;
}

static int collect_one(const struct rte_memseg_list *msl,
		       const struct rte_memseg *ms, void *arg)
{
	struct eal_files *f = arg;
	char link[64], path[PATH_MAX];
	ssize_t n;
	int fd;

	(void)msl;
	fd = rte_memseg_get_fd_thread_unsafe(ms);
	if (fd < 0 || f->n >= EAL_FILES_MAX)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0 || path[0] != '/')
		return 0;       /* memfd (in-memory mode): nothing on disk */
	path[n] = '\0';
	if (!seen(f, path))
		f->paths[f->n++] = strdup(path);
	return 0;
}

static void free_paths(struct eal_files *f)
{
	unsigned int i;

	for (i = 0; i < f->n; i++)
		free(f->paths[i]);
	f->n = 0;
}

void eal_files_collect(struct eal_files *f)
{
	const char *rd;

	free_paths(f);
	memset(f, 0, sizeof(*f));
	if (rte_eal_process_type() != RTE_PROC_PRIMARY)
		return;
	rte_memseg_walk(collect_one, f);
	/* In-memory processes share the default runtime dir: leave it. */
	rd = rte_eal_get_runtime_dir();
	if (rd != NULL && f->n > 0)
		snprintf(f->rundir, sizeof(f->rundir), "%s", rd);
}

static int dpdk_runtime_file(const char *name)
{
	static const char *const prefixes[] = {
		"config", "hugepage_info", "fbarray_", "mp_socket",
		"dpdk_telemetry", NULL,
	};
	unsigned int i;

	for (i = 0; prefixes[i] != NULL; i++)
		if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
			return 1;
	return 0;
}

static void remove_rundir(const char *dir)
{
	char path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d = opendir(dir);

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!dpdk_runtime_file(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);     /* fails, harmlessly, if anything else is left */
}

void eal_files_remove(struct eal_files *f)
{
	unsigned int i;

	for (i = 0; i < f->n; i++)
		unlink(f->paths[i]);
	free_paths(f);
	if (f->rundir[0] != '\0')
		remove_rundir(f->rundir);
	f->rundir[0] = '\0';
}

static struct eal_files *armed_files;

static void remove_at_exit(void)
{
	if (armed_files != NULL)
		eal_files_remove(armed_files);
}

void eal_files_arm(struct eal_files *f)
{
	eal_files_collect(f);
	if (armed_files == NULL)
		atexit(remove_at_exit);
	armed_files = f;
}

void eal_files_finish(struct eal_files *f)
{
	eal_files_collect(f);
	eal_files_remove(f);
}
