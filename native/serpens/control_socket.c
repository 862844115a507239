/*
 * control_socket.c: serpensd's control thread and its socket. A DPDK control thread (off the data-plane
 * core) serves every client of a Unix stream socket from one epoll loop: non-blocking sockets, each client
 * with its own input and output buffer, so a client that sends half a line, never reads, or floods cannot
 * hold up another. Requests are JSON, one per line (docs/serpens-control.md); a complete line is handed to
 * the dispatcher in one place (run_line) and executed there, one request at a time, on this thread — the
 * Instance Manager is single-threaded by design; only the I/O is multiplexed. The same loop runs the
 * periodic duties (instance_tick.c) every 100 ms and at once when the data plane rings tick_fd (packets
 * found no instance), and wakes scaling requests that asked to act at a given time ("at_ns").
 *
 * Limits, each refused with one error line (never a silent close, never a signal): a request line is at
 * most REQ_MAX_BYTES; at most MAX_CLIENTS clients are connected at once (one more is accepted, told so and
 * closed); a client's next request waits until its previous reply is written (a client that does not read
 * cannot make serpensd buffer without bound).
 *
 * Separate because it is the protocol and the thread, not what a request does. The control thread changes
 * what the data plane sees only by publishing a new routing table (routes.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_cycles.h>

#include <rte_lcore.h>

#include "control_int.h"
#include "server_link.h"

#define REQ_MAX_BYTES (1u << 20) /* one request line, its newline included */
#define MAX_CLIENTS 1024
/* the kernel caps it at net.core.somaxconn (4096 by default since Linux 5.4): a burst of connections waits
 * there until the loop accepts it, instead of being refused while there is room */
#define LISTEN_BACKLOG 4096
#define TICK_NS (100ull * 1000000ull)
#define IN_FIRST 4096
#define KEEP_BUF (64u << 10) /* a client's buffer larger than this is freed once it is empty */

/* epoll tags besides the client slots 0..MAX_CLIENTS-1 */
#define TAG_LISTEN ((uint64_t)MAX_CLIENTS)
#define TAG_TICK ((uint64_t)MAX_CLIENTS + 1)
#define TAG_TIMER ((uint64_t)MAX_CLIENTS + 2)

struct client {
	int fd; /* -1: a free slot */
	uint32_t events;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	json_t *parked;  /* a scaling request that waits for its at_ns */
	uint64_t at_ns;
	bool eof;        /* the client shut its side: answer its complete lines, then close */
	bool hung_up;    /* closed altogether: out of the epoll set (it would report EPOLLHUP without end) */
	bool closing;    /* refused (a line too long): close once the error is written */
	uint64_t line_ns; /* mono_ns when the read that completed its first waiting line returned */
};

struct serpensd *D;
static int listen_fd = -1, ep = -1, timer_fd = -1, spare_fd = -1;
static struct client clients[MAX_CLIENTS];
static unsigned int nclients, nparked;
static unsigned int top; /* 1 + the highest slot in use: the loop's scans stop there */
static bool listen_paused; /* out of descriptors: the listening socket is out of the epoll set until a tick */
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
	static const char *const knobs[] = {"keep_warm_s", "wake_batch", "flush_us", NULL};
	json_int_t wake, flush;
	double warm;
	json_t *err;

	/* all checked before any is applied: a refused `set` changes nothing */
	if ((err = only_fields(req, "set", knobs)) ||
	    (err = num_field(req, "set", "keep_warm_s", 0.0, 86400.0, D->keep_warm_s, &warm)) ||
	    (err = int_field(req, "set", "wake_batch", 1, RING_SIZE / 2, D->ctl->wake_batch, &wake)) ||
	    (err = int_field(req, "set", "flush_us", 0, 1000000, D->flush_us, &flush)))
		return err;
	D->keep_warm_s = warm;
	D->ctl->wake_batch = (uint32_t)wake;
	D->flush_us = (unsigned int)flush; /* takes effect at restart */
	return ok();
}

/* "at_ns" (CLOCK_MONOTONIC) on a scaling request: act then, not now. A client can send the request ahead of
 * time and stay off both cores at the moment that is measured (experiments/figure_14.py). NULL, *at = 0
 * when absent, or the error to reply. The loop parks the request until then (run_line); it never sleeps. */
static json_t *at_ns_of(json_t *req, const char *cmd, uint64_t *at)
{
	uint64_t limit = mono_ns() + 10ull * 1000000000ull;
	json_t *v = json_object_get(req, "at_ns");

	*at = 0;
	if (!v)
		return NULL;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > limit)
		return fail("%s: 'at_ns' must be a CLOCK_MONOTONIC time in ns, 0..%llu (now, at most 10 s ahead)", cmd,
			    (unsigned long long)limit);
	*at = (uint64_t)json_integer_value(v);
	return NULL;
}

static bool is_scaling(const char *cmd)
{
	return cmd && (!strcmp(cmd, "start_instance") || !strcmp(cmd, "stop_instance"));
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
	json_int_t slot;
	uint64_t t0, at;

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
		if ((err = at_ns_of(req, cmd, &at)))
			return err;
		t0 = rte_rdtsc();
		/* a request for later is received when its time comes */
		return stamped(start_instance_at(id, json_is_true(v), json_object_get(req, "at_ns") ? 0 : request_ns),
			       t0);
	}
	if (!strcmp(cmd, "start_instances")) { /* Fig. 11(a): n instances started together */
		const char *sfc = json_string_value(json_object_get(req, "sfc"));
		int id = find_sfc(sfc ? sfc : "");
		json_int_t n;

		if (id < 0)
			return fail("start_instances: no SFC named '%s' is deployed", sfc ? sfc : "");
		if ((err = int_field(req, cmd, "n", 1, (json_int_t)D->ctl->max_instances, -1, &n)))
			return err;
		if (n < 1)
			return fail("start_instances: 'n' (instances to start together, 1..%u) is required",
				    D->ctl->max_instances);
		v = json_object_get(req, "pooled");
		if (v && !json_is_boolean(v))
			return fail("start_instances: 'pooled' is true or false");
		t0 = rte_rdtsc();
		return stamped(start_instances_at(id, (unsigned int)n, json_is_true(v), request_ns), t0);
	}
	if (!strcmp(cmd, "stop_instance")) {
		if ((err = at_ns_of(req, cmd, &at)))
			return err;
		if (!json_object_get(req, "instance"))
			return fail("stop_instance: 'instance' (a slot, 0..%u) is required", D->ctl->max_instances - 1);
		if ((err = int_field(req, cmd, "instance", 0, (json_int_t)D->ctl->max_instances - 1, -1, &slot)))
			return err;
		t0 = rte_rdtsc();
		return stamped(stop_instance((int)slot), t0);
	}
	if (!strcmp(cmd, "move_flows"))
		return move_flows(req);
	if (!strcmp(cmd, "stats"))
		return stats();
	if (!strcmp(cmd, "read_state"))
		return read_state(req);
	if (!strcmp(cmd, "dump_table"))
		return dump_table(req);
	if (!strncmp(cmd, "link_", 5)) /* across servers: server_link_ctl.c, state_transfer.c */
		return server_link_request(req);
	if (!strncmp(cmd, "share_", 6))
		return state_share_request(req);
	if (!strcmp(cmd, "set"))
		return set_knobs(req);
	if (!strcmp(cmd, "shutdown")) {
		control_stop_all(D);
		D->quit = 1;
		return ok();
	}
	return fail("unknown command '%s'", cmd);
}

/* ------------------------------------------------------------------------------------------------ */
/* Clients                                                                                          */

static void watch(struct client *c)
{
	uint32_t want = 0;
	struct epoll_event ev;

	if (c->hung_up)
		return;

	/* read while there is room for more of the current line and nothing stops this client; the parked
	 * or unanswered request keeps what follows in the kernel's buffer (backpressure) */
	if (!c->eof && !c->closing && c->in_len < REQ_MAX_BYTES)
		want |= EPOLLIN;
	if (c->out_off < c->out_len)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	ev.events = want;
	ev.data.u64 = (uint64_t)(c - clients);
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
	c->events = want;
}

static void drop(struct client *c)
{
	if (!c->hung_up)
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out);
	if (c->parked) {
		json_decref(c->parked);
		nparked--;
	}
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	nclients--;
	while (top && clients[top - 1].fd < 0)
		top--;
}

/* Write what is queued; false: the client is gone (dropped). */
static bool flush_out(struct client *c)
{
	ssize_t n;

	while (c->out_off < c->out_len) {
		/* MSG_NOSIGNAL: a client that closed before reading its reply is dropped (EPIPE) and costs serpensd
		 * nothing (serpensd also ignores SIGPIPE) */
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break; /* the rest when the socket has room again (EPOLLOUT) */
		if (n <= 0) {
			drop(c);
			return false;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->closing) {
			drop(c);
			return false;
		}
		if (c->out_cap > KEEP_BUF) { /* one big reply (a dump_table) does not pin its memory */
			free(c->out);
			c->out = NULL;
			c->out_cap = 0;
		}
	}
	watch(c);
	return true;
}

/* Queue a reply (one line) and start writing it; false: the client is gone. */
static bool reply(struct client *c, json_t *rep)
{
	char *s = json_dumps(rep, JSON_COMPACT);
	size_t len;

	json_decref(rep);
	if (!s) {
		drop(c); /* out of memory: closing beats an answer out of step */
		return false;
	}
	len = strlen(s);
	if (c->out_len + len + 1 > c->out_cap) {
		size_t cap = c->out_len + len + 1;
		char *o = realloc(c->out, cap);

		if (!o) {
			free(s);
			drop(c);
			return false;
		}
		c->out = o;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	free(s);
	return flush_out(c);
}

/* The one place a complete request line is handed to the dispatcher (line: NUL-terminated, without its
 * newline). A scaling request with a future at_ns is parked on its client and run by run_due. */
static void run_line(struct client *c, char *line)
{
	json_error_t jerr;
	json_t *req = json_loads(line, 0, &jerr);
	uint64_t at;
	json_t *err;

	if (!req) {
		reply(c, fail("not JSON: %s", jerr.text));
		return;
	}
	if (is_scaling(json_string_value(json_object_get(req, "cmd")))) {
		err = at_ns_of(req, json_string_value(json_object_get(req, "cmd")), &at);
		if (!err && at > mono_ns()) {
			c->parked = req;
			c->at_ns = at;
			nparked++;
			return;
		}
		json_decref(err); /* handle() says it again */
	}
	reply(c, handle(req));
	json_decref(req);
}

/* Run the client's next complete line, if it may go on (nothing parked, its last reply written). true: a
 * request ran. */
static bool run_next(struct client *c)
{
	char *nl;
	size_t used;

	if (c->fd < 0 || c->parked || c->out_len || c->closing)
		return false;
	nl = c->in_len ? memchr(c->in, '\n', c->in_len) : NULL;
	if (!nl) {
		if (c->eof) /* nothing more will come: what is left is not a request */
			drop(c);
		else if (c->in_len >= REQ_MAX_BYTES) {
			c->closing = true;
			reply(c, fail("request longer than %u bytes (the limit of one request line, newline included): "
				      "closing the connection", REQ_MAX_BYTES));
		}
		return false;
	}
	*nl = '\0';
	used = (size_t)(nl + 1 - c->in);
	request_ns = c->line_ns ? c->line_ns : mono_ns();
	c->line_ns = 0; /* a further line already in the buffer was received no later than now */
	run_line(c, c->in);
	if (c->fd < 0)
		return true; /* dropped while replying */
	c->in_len -= used;
	memmove(c->in, c->in + used, c->in_len);
	if (!c->in_len && c->in_cap > KEEP_BUF) { /* nor one big request */
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	watch(c);
	return true;
}

/* Parked requests whose time has come; the earliest still waiting is left armed on timer_fd. */
static void run_due(void)
{
	struct itimerspec its = {0};
	uint64_t next = 0, now;
	unsigned int i;

	if (!nparked)
		return; /* and the timer was disarmed when the last one ran */
	now = mono_ns();
	for (i = 0; i < top; i++) {
		struct client *c = &clients[i];
		json_t *req = c->parked;

		if (c->fd < 0 || !req)
			continue;
		if (c->at_ns <= now) {
			c->parked = NULL;
			nparked--;
			reply(c, handle(req)); /* its at_ns is now past: handle acts at once */
			json_decref(req);
			now = mono_ns();
		} else if (!next || c->at_ns < next) {
			next = c->at_ns;
		}
	}
	its.it_value.tv_sec = (time_t)(next / 1000000000ull);
	its.it_value.tv_nsec = (long)(next % 1000000000ull);
	timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL); /* 0: disarmed */
}

static void read_in(struct client *c)
{
	ssize_t n;

	while (c->in_len < REQ_MAX_BYTES && !c->eof) {
		if (c->in_len == c->in_cap) {
			size_t cap = c->in_cap ? c->in_cap * 2 : IN_FIRST;
			char *b;

			if (cap > REQ_MAX_BYTES)
				cap = REQ_MAX_BYTES;
			b = realloc(c->in, cap);
			if (!b) {
				drop(c);
				return;
			}
			c->in = b;
			c->in_cap = cap;
		}
		n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) { /* reset: nobody to answer */
			drop(c);
			return;
		}
		if (n == 0) {
			c->eof = true;
			break;
		}
		c->in_len += (size_t)n;
		if (memchr(c->in + c->in_len - (size_t)n, '\n', (size_t)n)) {
			c->line_ns = mono_ns(); /* the request's receipt: start_instance's steps begin here */
			break; /* a complete request: run it before reading more */
		}
	}
	watch(c);
}

/* One connection beyond MAX_CLIENTS (or beyond the process's descriptors): told why, then closed. The
 * reply fits in an empty socket buffer, so the non-blocking send does not come short. */
static void refuse(int fd, const char *why)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}\n", why);

	if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* nothing to do: the client left already */
	}
	close(fd);
}

static void accept_all(void)
{
	struct epoll_event ev = {.events = EPOLLIN};
	unsigned int i;
	int fd;

	for (;;) {
		fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
			/* out of descriptors: the spare one lets serpensd accept, answer and close this client
			 * instead of leaving it in the backlog with no word */
			close(spare_fd);
			fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd >= 0)
				refuse(fd, "serpensd is out of file descriptors: try again later");
			spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				return; /* the backlog is empty: accept fails with EMFILE before it looks there */
			continue;
		}
		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			/* not even a descriptor for the refusal: stop watching the socket until the next tick
			 * instead of spinning on a backlog that cannot be accepted */
			epoll_ctl(ep, EPOLL_CTL_DEL, listen_fd, NULL);
			listen_paused = true;
			return;
		}
		if (fd < 0)
			return; /* EAGAIN: the backlog is empty (or a transient error: the next wake-up retries) */
		if (nclients >= MAX_CLIENTS) {
			refuse(fd, "serpensd serves at most " RTE_STR(MAX_CLIENTS) " control clients at once: try again "
				   "later");
			continue;
		}
		for (i = 0; clients[i].fd >= 0; i++)
			;
		ev.data.u64 = i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			refuse(fd, "serpensd cannot watch another client now: try again later");
			continue;
		}
		clients[i].fd = fd;
		clients[i].events = EPOLLIN;
		nclients++;
		if (i >= top)
			top = i + 1;
	}
}

/* ------------------------------------------------------------------------------------------------ */
/* The loop                                                                                         */

static int watch_fd(int fd, uint64_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int wait_ms(uint64_t next_tick, bool busy)
{
	uint64_t now = mono_ns();

	if (busy || now >= next_tick)
		return 0;
	return (int)((next_tick - now + 999999ull) / 1000000ull);
}

static void *control_main(void *arg)
{
	struct epoll_event evs[64];
	uint64_t next_tick = mono_ns() + TICK_NS, v;
	bool busy = false, tick_now;
	unsigned int i;
	int n, k;

	(void)arg;
	/* its short waits (a move's inbox poll, the grace period) should last what they ask for, not the
	 * default 50 µs of timer slack more */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	start_placement_setup();
	while (!D->quit) {
		n = epoll_wait(ep, evs, 64, wait_ms(next_tick, busy));
		tick_now = false;
		for (k = 0; k < n; k++) {
			uint64_t tag = evs[k].data.u64;
			struct client *c;

			if (tag == TAG_LISTEN) {
				accept_all();
			} else if (tag == TAG_TICK) {
				tick_now = read(D->tick_fd, &v, sizeof(v)) > 0;
			} else if (tag == TAG_TIMER) {
				if (read(timer_fd, &v, sizeof(v)) < 0) {
					/* EAGAIN: re-armed meanwhile; run_due looks at the clock anyway */
				}
			} else if (tag < MAX_CLIENTS && (c = &clients[tag])->fd >= 0) {
				if ((evs[k].events & EPOLLOUT) && !flush_out(c))
					continue;
				if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					read_in(c);
				if (c->fd >= 0 && c->eof && (evs[k].events & (EPOLLHUP | EPOLLERR))) {
					if (c->out_off < c->out_len) { /* a reply nobody can read any more */
						drop(c);
						continue;
					}
					/* what it sent still runs (its replies meet EPIPE and drop it) */
					epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
					c->hung_up = true;
				}
			}
		}
		run_due(); /* first: a parked request acts as close to its at_ns as the loop can */
		if (tick_now || mono_ns() >= next_tick) {
			tick();
			next_tick = mono_ns() + TICK_NS;
			if (listen_paused && (spare_fd >= 0 || (spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0))
				listen_paused = watch_fd(listen_fd, TAG_LISTEN) != 0;
		}
		/* one request per client per round: a client with many queued lines takes turns with the rest */
		busy = false;
		for (i = 0; i < top && !D->quit; i++)
			busy |= run_next(&clients[i]);
	}
	for (i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			drop(&clients[i]);
	return NULL;
}

/* A loop with a thousand clients needs more than the usual 1024 descriptors: the soft limit goes up to
 * the hard one (serpensd's other files: hugepages, rings' memfds, NF images). */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int control_start(struct serpensd *d)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	unsigned int i;

	D = d;
	for (i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
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
	raise_fd_limit();
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", d->control_path);
	unlink(d->control_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(listen_fd, LISTEN_BACKLOG) != 0) {
		fprintf(stderr, "serpensd: control socket %s: %s\n", d->control_path, strerror(errno));
		return -1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (ep < 0 || timer_fd < 0 || watch_fd(listen_fd, TAG_LISTEN) != 0 || watch_fd(d->tick_fd, TAG_TICK) != 0 ||
	    watch_fd(timer_fd, TAG_TIMER) != 0) {
		fprintf(stderr, "serpensd: control loop: %s\n", strerror(errno));
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
	close(ep);
	close(timer_fd);
	if (spare_fd >= 0)
		close(spare_fd);
	unlink(d->control_path);
}
