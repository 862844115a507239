/*
 * privs.c: a runtime's privileges after EAL initialisation (privs.h). Separate because it is the only
 * place that talks to the kernel about credentials, and the list of what is kept is a security decision
 * that must be read in one piece.
 *
 * Runtimes run as root, like serpensd, because as DPDK secondaries they map serpensd's hugepage files and
 * talk over its multi-process socket, both root's and mode 0600 (a per-tenant uid would need those
 * shared with that uid: not done, docs/security.md). What is dropped is what an NF could use to undo the
 * other defences or to reach beyond its process:
 *   - CAP_LINUX_IMMUTABLE: the deployed NF copies and snapshots are immutable (startup/nfm.c); without
 *     it, not even root can make them writable again;
 *   - CAP_SYS_ADMIN: mounts (a writable bind mount of the NF directory), namespaces, and the rest;
 *   - module loading, uid/gid and capability changes, device nodes, network and audit administration,
 *     BPF and perf, and the rest of the list below.
 * Kept, and why: CAP_SYS_PTRACE — the image loader opens serpensd's image memfd through
 * /proc/<serpensd>/fd/N, which the kernel allows a process whose permitted capabilities are not a
 * superset of serpensd's only with CAP_SYS_PTRACE (fd passing would remove that need); CAP_IPC_LOCK,
 * CAP_SYS_NICE (memory locking and scheduling of a polling process); CAP_DAC_* and CAP_FOWNER (files of
 * the run directory and of DPDK's runtime directory). NO_NEW_PRIVS makes sure nothing exec'd by the
 * process regains anything.
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

static const int dropped[] = {
	CAP_LINUX_IMMUTABLE, CAP_SYS_ADMIN, CAP_SYS_MODULE, CAP_SYS_BOOT, CAP_MKNOD, CAP_SETUID, CAP_SETGID,
	CAP_SETPCAP, CAP_SETFCAP, CAP_NET_ADMIN, CAP_SYS_TIME, CAP_MAC_ADMIN, CAP_MAC_OVERRIDE, CAP_BPF,
	CAP_PERFMON, CAP_SYSLOG, CAP_AUDIT_CONTROL, CAP_AUDIT_WRITE, CAP_SYS_PACCT, CAP_SYS_TTY_CONFIG,
	CAP_LEASE, CAP_WAKE_ALARM, CAP_BLOCK_SUSPEND, CAP_CHECKPOINT_RESTORE, CAP_CHOWN,
};

int sp_drop_privileges(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	unsigned int i;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	if (syscall(SYS_capget, &hdr, data) != 0) {
		snprintf(err, errlen, "capget: %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
		int c = dropped[i];
		uint32_t bit = 1u << (c % 32);

		/* the bounding set first: it needs CAP_SETPCAP, which goes with the rest below */
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL) {
			snprintf(err, errlen, "PR_CAPBSET_DROP %d: %s", c, strerror(errno));
			return -1;
		}
		data[c / 32].effective &= ~bit;
		data[c / 32].permitted &= ~bit;
		data[c / 32].inheritable &= ~bit;
	}
	if (syscall(SYS_capset, &hdr, data) != 0) {
		snprintf(err, errlen, "capset: %s", strerror(errno));
		return -1;
	}
	return 0;
}
