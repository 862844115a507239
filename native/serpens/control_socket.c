/*
 * control_socket.c: serpensd's control thread and its socket. A DPDK control thread (off the data-plane
 * core) accepts one client at a time on a Unix stream socket, reads JSON requests one per line, hands
 * each to the file of its concern and writes the reply as one line (docs/serpens-control.md); between
 * requests, and while no client talks, it runs the periodic duties (instance_tick.c) every 100 ms.
 * Separate because it is the protocol and the thread, not what a request does.
 *
 * The control thread changes what the data plane sees only by publishing a new routing table (routes.c).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_cycles.h>

#include <rte_lcore.h>

#include "control_int.h"

#define LINE_MAX_BYTES (1 << 20)

struct serpensd *D;
static int listen_fd = -1;
static pthread_t thread;
static uint64_t request_ns; /* mono_ns when the current request was read (start_instance's steps begin) */

json_t *fail(const char *fmt, ...)
{
	char buf[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", buf);
}

json_t *ok(void) { return json_pack("{s:b}", "ok", 1); }

static json_t *set_knobs(json_t *req)
{
	json_t *v;

	if ((v = json_object_get(req, "keep_warm_s")))
		D->keep_warm_s = json_number_value(v);
	if ((v = json_object_get(req, "wake_batch")) && json_integer_value(v) > 0)
		D->ctl->wake_batch = (uint32_t)json_integer_value(v);
	if ((v = json_object_get(req, "flush_us")))
		D->flush_us = (unsigned int)json_integer_value(v); /* takes effect at restart */
	return ok();
}

/* "at_ns" (CLOCK_MONOTONIC) on a scaling request: act then, not now. A client can send the request ahead of
 * time and stay off both cores at the moment that is measured (experiments/figure_14.py). NULL: go on;
 * else the error to reply. */
static json_t *wait_for_at(json_t *req, const char *cmd)
{
	json_t *v = json_object_get(req, "at_ns");
	struct timespec ts;
	json_int_t at;

	if (!v)
		return NULL;
	at = json_is_integer(v) ? json_integer_value(v) : -1;
	if (at < 0 || (uint64_t)at > mono_ns() + 10ull * 1000000000ull)
		return fail("%s: 'at_ns' is a CLOCK_MONOTONIC time in ns, at most 10 s ahead", cmd);
	ts.tv_sec = (time_t)(at / 1000000000);
	ts.tv_nsec = (long)(at % 1000000000);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	return NULL;
}

/* A scaling reply says when serpensd began to act on it (machine TSC, as the moves' stamps). */
static json_t *stamped(json_t *rep, uint64_t t0)
{
	if (json_is_true(json_object_get(rep, "ok")))
		json_object_set_new(rep, "t_request_tsc", json_integer((json_int_t)t0));
	return rep;
}

static json_t *handle(json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	json_t *v, *err;
	uint64_t t0;

	if (!cmd)
		return fail("request without 'cmd'");
	if (!strcmp(cmd, "deploy_nf"))
		return deploy_nf(req);
	if (!strcmp(cmd, "deploy_sfc"))
		return deploy_sfc(req);
	if (!strcmp(cmd, "start_instance")) {
		const char *sfc = json_string_value(json_object_get(req, "sfc"));
		int id = find_sfc(sfc ? sfc : "");

		if (id < 0)
			return fail("start_instance: no SFC named '%s' is deployed", sfc ? sfc : "");
		v = json_object_get(req, "pin");
		if (v && !json_is_boolean(v))
			return fail("start_instance: 'pin' is true or false");
		if (json_is_true(v) && !D->pin_flows)
			return fail("start_instance: 'pin' keeps existing flows where they are: serpensd needs --pin-flows");
		if ((err = wait_for_at(req, cmd)))
			return err;
		t0 = rte_rdtsc();
		/* a request for later is received when its time comes */
		return stamped(start_instance_at(id, json_is_true(v), json_object_get(req, "at_ns") ? 0 : request_ns),
			       t0);
	}
	if (!strcmp(cmd, "stop_instance")) {
		if ((err = wait_for_at(req, cmd)))
			return err;
		t0 = rte_rdtsc();
		v = json_object_get(req, "instance");
		return stamped(stop_instance(json_is_integer(v) ? (int)json_integer_value(v) : -1), t0);
	}
	if (!strcmp(cmd, "move_flows"))
		return move_flows(req);
	if (!strcmp(cmd, "stats"))
		return stats();
	if (!strcmp(cmd, "read_state"))
		return read_state(req);
	if (!strcmp(cmd, "dump_table"))
		return dump_table(req);
	if (!strcmp(cmd, "set"))
		return set_knobs(req);
	if (!strcmp(cmd, "shutdown")) {
		control_stop_all(D);
		D->quit = 1;
		return ok();
	}
	return fail("unknown command '%s'", cmd);
}

/* Wait up to 100 ms for fd (or, fd < 0, nothing); run the periodic duties when the time is up or the
 * data plane asks for them at once (packets found no instance: an on-demand start should not wait for the
 * next 100 ms). Returns poll's count for fd (0: not readable). */
static int wait_or_tick(int fd)
{
	struct pollfd p[2] = {{.fd = D->tick_fd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	uint64_t v;
	int n = poll(p, fd >= 0 ? 2 : 1, 100);

	if (n > 0 && (p[0].revents & POLLIN) && read(D->tick_fd, &v, sizeof(v)) > 0)
		tick();
	else if (n == 0)
		tick();
	return n > 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : 0;
}

static void serve_client(int fd)
{
	static char buf[LINE_MAX_BYTES];
	size_t have = 0;
	ssize_t n;
	char *nl;

	while (!D->quit) {
		if (!wait_or_tick(fd))
			continue;
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n <= 0)
			return;
		request_ns = mono_ns();
		have += (size_t)n;
		buf[have] = '\0';
		while ((nl = memchr(buf, '\n', have))) {
			json_error_t jerr;
			json_t *req, *rep;
			char *out;

			*nl = '\0';
			req = json_loads(buf, 0, &jerr);
			rep = req ? handle(req) : fail("not JSON: %s", jerr.text);
			json_decref(req);
			out = json_dumps(rep, JSON_COMPACT);
			json_decref(rep);
			if (out) {
				size_t len = strlen(out);

				out[len] = '\n';
				/* MSG_NOSIGNAL: a client that closed before reading its reply is dropped (EPIPE)
				 * and costs serpensd nothing */
				if (send(fd, out, len + 1, MSG_NOSIGNAL) < 0) {
					free(out);
					return;
				}
				free(out);
			}
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have);
		}
		if (have == sizeof(buf) - 1)
			return; /* a line longer than we accept */
	}
}

static void *control_main(void *arg)
{
	int fd;

	(void)arg;
	/* its short waits (a move's inbox poll, the grace period) should last what they ask for, not the
	 * default 50 µs of timer slack more */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	start_placement_setup();
	while (!D->quit) {
		if (!wait_or_tick(listen_fd))
			continue;
		fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		serve_client(fd);
		close(fd);
	}
	return NULL;
}

int control_start(struct serpensd *d)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};

	D = d;
	d->tick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (d->tick_fd < 0) {
		fprintf(stderr, "serpensd: eventfd: %s\n", strerror(errno));
		return -1;
	}
	if (nf_dir_setup(d) != 0)
		return -1;
	if (strlen(d->control_path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "serpensd: control socket path too long: %s\n", d->control_path);
		return -1;
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", d->control_path);
	unlink(d->control_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(listen_fd, 4) != 0) {
		fprintf(stderr, "serpensd: control socket %s: %s\n", d->control_path, strerror(errno));
		return -1;
	}
	control_publish_routes(d);
	return rte_ctrl_thread_create(&thread, "serpens-ctl", NULL, control_main, NULL);
}

void control_stop(struct serpensd *d)
{
	d->quit = 1;
	pthread_join(thread, NULL);
	close(listen_fd);
	unlink(d->control_path);
}
