/*
 * instance_tick.c: what the control thread does every 100 ms, between requests and while it waits for
 * one (control_socket.c). Reap runtimes that exited: a crashed instance is counted per SFC, its state
 * merged back and a replacement started (the same position with per-NF chaining); a pooled runtime
 * that died is replaced; a dead zygote is forgotten (the next start launches one). Stop instances idle
 * for keep_warm_s (scale to zero), and start one for an SFC (or an NF's position) whose packets found
 * none (auto-start). Separate because these are the Instance Manager acting on its own, with no client
 * to answer: failures go to the log.
 */
#include <stdio.h>
#include <sys/wait.h>

#include <rte_cycles.h>

#include "control_int.h"

uint64_t crashes[SP_MAX_SFCS];
char crash_msg[SP_MAX_SFCS][160];

/* A start the control thread made on its own (a replacement, on demand) has no client to read its
 * error: the log gets it. */
static void report_failed_start(json_t *rep)
{
	if (!json_is_true(json_object_get(rep, "ok")))
		fprintf(stderr, "serpensd: %s\n", json_string_value(json_object_get(rep, "error")));
	json_decref(rep);
}

/* A ready instance's process exited: report it, merge its state, start a replacement (the same position
 * with per-NF chaining, else the whole SFC). */
static void crashed(int i, pid_t pid, int status)
{
	int sfc = D->ctl->inst[i].sfc, pos = D->ctl->inst[i].position;

	D->ctl->inst[i].exit_status = status;
	crashes[sfc]++;
	snprintf(crash_msg[sfc], sizeof(crash_msg[sfc]), "instance %d (pid %d) %s %d", i, (int)pid,
		 WIFSIGNALED(status) ? "killed by signal" : "exited with status",
		 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	fprintf(stderr, "serpensd: SFC %s: %s; restarting it, state kept\n", D->ctl->sfcs[sfc].name, crash_msg[sfc]);
	retire(i, true);
	report_failed_start(D->delivery->per_nf ? start_one(sfc, pos, false) : start_instance(sfc, false));
}

/* Periodic duties: reap crashed runtimes (report, merge state, restart), keep-warm, start on demand. */
void tick(void)
{
	uint64_t now, hz = rte_get_tsc_hz();
	int i, status, sfc, pos;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (D->delivery->reaped && D->delivery->reaped(D, pid, status))
			continue; /* the chaining mechanism's own process (the proxy): restarted */
		for (sfc = 0; sfc < SP_MAX_SFCS; sfc++)
			if (D->zygote_pid[sfc] == pid) { /* its instances die with it; the next start makes a new one */
				fprintf(stderr, "serpensd: the zygote of SFC %s (pid %d) died\n", D->ctl->sfcs[sfc].name,
					(int)pid);
				D->zygote_pid[sfc] = 0;
				D->ctl->zygote[sfc].state = ZY_NONE;
			}
		if (pool_reaped(pid))
			continue; /* a pool process that died waiting: replaced */
		for (i = 0; i < SM_MAX_INSTANCES; i++)
			if (D->pid[i] == pid && D->ctl->inst[i].state == INST_READY)
				crashed(i, pid, status);
	}
	for (i = 0; i < SM_MAX_INSTANCES; i++) /* forked instances: their zygote reaped them */
		if (D->forked[i] && D->ctl->inst[i].state == INST_READY && slot_exited(i, &status))
			crashed(i, D->pid[i], status);
	/* now again: a replacement started above (or a packet queued by another process since) is newer than
	 * the first reading, and must not look idle for 2^64 cycles */
	now = rte_rdtsc();
	for (i = 0; i < SM_MAX_INSTANCES; i++) {
		struct sp_instance *in = &D->ctl->inst[i];
		uint64_t last = __atomic_load_n(&in->last_pkt_tsc, __ATOMIC_RELAXED);

		if (in->state == INST_READY && D->keep_warm_s > 0 && now > last &&
		    now - last > (uint64_t)(D->keep_warm_s * (double)hz) && rte_ring_empty(D->rx[i])) {
			/* kept warm long enough with no packet: scale in (to zero if it is the last one, unless
			 * its flows' state lives in it); its buckets go to the others first */
			if (stop_loses_state(i))
				continue;
			json_decref(stop_instance(i));
			now = rte_rdtsc();
		}
	}
	for (sfc = 0; D->auto_start && D->delivery->per_nf && sfc < SP_MAX_SFCS; sfc++) {
		/* per-NF chaining: the proxy marks positions whose packets found no instance */
		uint64_t want = __atomic_exchange_n(&D->ctl->delivery.want_start[sfc], 0, __ATOMIC_RELAXED);

		for (pos = 0; want && D->ctl->sfcs[sfc].used && pos < (int)D->ctl->sfcs[sfc].npos; pos++) {
			bool has = false;

			if (!(want & (1ull << pos)))
				continue;
			for (i = 0; i < SM_MAX_INSTANCES; i++)
				has |= D->ctl->inst[i].state == INST_READY && D->ctl->inst[i].sfc == sfc &&
				       D->ctl->inst[i].position == pos;
			if (!has)
				json_decref(start_one(sfc, pos, false));
		}
	}
	for (sfc = 0; D->auto_start && !D->delivery->per_nf && sfc < SP_MAX_SFCS; sfc++) {
		bool has = false;

		if (!D->ctl->sfcs[sfc].used || !__atomic_load_n(&D->want_start[sfc], __ATOMIC_RELAXED))
			continue;
		for (i = 0; i < SM_MAX_INSTANCES; i++)
			has |= D->ctl->inst[i].state == INST_READY && D->ctl->inst[i].sfc == sfc;
		__atomic_store_n(&D->want_start[sfc], 0, __ATOMIC_RELAXED);
		if (!has)
			report_failed_start(start_instance(sfc, false)); /* packets arrived for an SFC with no instance */
	}
}
