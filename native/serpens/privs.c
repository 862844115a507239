/*
 * privs.c: a runtime's privileges after EAL initialisation (privs.h). Separate because it is the only
 * place that talks to the kernel about credentials, and what is kept is a security decision that must be
 * read in one piece.
 *
 * Kept: no capability at all. Every descriptor a runtime needs from serpensd that it could not open by
 * itself comes by SCM_RIGHTS (handover.h: its tenant's state region, its SFC's NF images), so nothing is
 * opened through /proc/<serpensd>/fd any more and CAP_SYS_PTRACE, kept for that until now, goes with the
 * rest. What the runtime still does after EAL initialisation needs none:
 *   - its EAL's hugepage files (one per memseg list, --single-file-segments) stay open from initialisation;
 *     a later memory sync maps them through those descriptors; the multi-process socket is bound already;
 *   - the files it opens later (NF copies and snapshots, libraries, /proc/self) are root's and readable by
 *     their owner, and the runtime's uid is still root (the per-tenant uid: docs/security.md, why not);
 *   - memory locking, scheduling and signals: only of itself (sched_setaffinity needs no capability),
 *     a zygote's of its own children, same uid.
 * Dropping them all (effective, permitted, inheritable, ambient and the bounding set) takes with it what an
 * NF could use to undo the other defences: CAP_LINUX_IMMUTABLE (the immutable NF copies, startup/nfm.c),
 * CAP_SYS_ADMIN (mounts, /proc/<pid>/map_files), CAP_SYS_PTRACE (serpensd's memory: every tenant's region),
 * CAP_DAC_OVERRIDE and CAP_FOWNER (any file of the machine, whoever owns it), and the rest.
 *
 * Not dumpable: runtimes share a uid (root) and, now, an empty capability set, so the kernel's ptrace check
 * (same uid, permitted set a subset) would let one tenant's runtime ptrace, or read and write through
 * /proc/<pid>/mem, pidfd_getfd or process_vm_writev, another tenant's. A non-dumpable process is reachable
 * so only with CAP_SYS_PTRACE (serpensd, the harness). NO_NEW_PRIVS: nothing the process execs regains a
 * privilege (a set-uid binary).
 */
#include "privs.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

#define CAP_PROBE_MAX 64 /* capability numbers tried for the bounding set: the kernel says EINVAL past its last */

int sp_drop_privileges(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	int c;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		snprintf(err, errlen, "PR_SET_DUMPABLE: %s", strerror(errno));
		return -1;
	}
	/* the bounding set first: dropping from it needs CAP_SETPCAP, which goes with the rest below */
	for (c = 0; c < CAP_PROBE_MAX; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) {
			snprintf(err, errlen, "PR_CAPBSET_DROP %d: %s", c, strerror(errno));
			return -1;
		}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
		snprintf(err, errlen, "PR_CAP_AMBIENT_CLEAR_ALL: %s", strerror(errno));
		return -1;
	}
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) != 0) {
		snprintf(err, errlen, "capset: %s", strerror(errno));
		return -1;
	}
	return 0;
}
