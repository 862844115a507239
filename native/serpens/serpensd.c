/*
 * serpensd.c: one Serpens daemon per server (DPDK primary) — the data plane: Gateway, Router, wake-ups,
 * transmit, State Manager timers. Deployment, the Instance Manager and the control socket run in a
 * control thread (control_socket.c and the files control_int.h lists).
 *
 * Per burst received from the port: the Gateway matches each packet against the SFCs' rules (first
 * match wins) and hands it to the SFC's first hop; what happens then is the chaining mechanism's
 * (--chaining, delivery.h): by default (consolidated) the Router hashes its 5-tuple to one of the SFC's
 * instances (so a flow always reaches the same instance) and queues it on that instance's ring; with
 * local-proxy it goes to the proxy process that carries it from NF instance to NF instance. A sleeper is
 * woken once wake_batch packets (default 128, the paper's choice) are queued or the oldest has waited
 * flush_us, so latency stays bounded at low load (hop.c). With --colocate (2-core machines: instances
 * share the data-plane core) serpensd hands the core to the woken process and waits until it has drained
 * its ring, so two busy loops never compete for one core. What left the SFCs is sent out.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_memzone.h>

#include "args.h"
#include "dp_guard.h"
#include "eal_files.h"
#include "eal_init_lock.h"
#include "memif_region.h"
#include "port.h"
#include "serpensd.h"
#include "server_link.h"
#include "sig.h"

#define POOL_MBUFS 65535
#define POOL_CACHE 512

static struct serpensd D;

static void sigpipe_default(void) { signal(SIGPIPE, SIG_DFL); }

/* A control client that closes before reading its reply must not kill serpensd: a write to a closed socket
 * or pipe fails with EPIPE instead (control_socket.c also sends with MSG_NOSIGNAL). An ignored signal stays
 * ignored across exec, so every child serpensd forks (runtimes, the global proxy) gets the default back
 * and starts as it did before. */
static void ignore_sigpipe(void)
{
	signal(SIGPIPE, SIG_IGN);
	pthread_atfork(NULL, NULL, sigpipe_default);
}

static void usage_exit(const char *why)
{
	char chaining[300];

	snprintf(chaining, sizeof(chaining), "%s", sp_delivery_names("|"));
	fprintf(stderr,
		"serpensd: %s\nusage: serpensd [EAL args] -- --control PATH --runtime PATH [--nf-dir DIR]\n"
		"       [--state-mb N] [--wake-batch N] [--batch N] [--flush-us N] [--rx-gap-ns N] [--keep-warm-s S]\n"
		"       [--colocate]\n"
		"       [--instance-lcore N] [--no-auto-start] [--startup exec|fork|load|snapshot|serpens] [--pool N]\n"
		"       [--max-instances N]\n"
		"       [--state-backend serpens|fission|snf] [--redis HOST:PORT] [--redis-timeout-ms N]\n"
		"       (environment: SERPENS_REDIS_ADMIN=USER:PASSWORD, Redis's admin: a Redis user per tenant)\n"
		"       [--chaining %s] [--gproxy PATH] [--gproxy-hold N]\n"
		"       [--scaling %s] [--pin-flows] [--start-placement instance|same|other|any] [--tsc-hz HZ]\n"
		"       [--link gateway|worker --link-ip IP --link-peer IP,MAC ... [--link-port DEVICE]]\n",
		why, chaining, sc_protocol_names("|"));
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'}, {"runtime", required_argument, NULL, 'r'},
		{"nf-dir", required_argument, NULL, 'n'},  {"state-mb", required_argument, NULL, 's'},
		{"wake-batch", required_argument, NULL, 'w'}, {"flush-us", required_argument, NULL, 'f'},
		{"keep-warm-s", required_argument, NULL, 'k'}, {"colocate", no_argument, NULL, 'o'},
		{"instance-lcore", required_argument, NULL, 'i'}, {"no-auto-start", no_argument, NULL, 'a'},
		{"pool", required_argument, NULL, 'p'}, {"startup", required_argument, NULL, 'L'},
		{"state-backend", required_argument, NULL, 'B'}, {"redis", required_argument, NULL, 'R'},
		{"redis-timeout-ms", required_argument, NULL, 'T'}, {"batch", required_argument, NULL, 'b'},
		{"chaining", required_argument, NULL, 'C'}, {"gproxy", required_argument, NULL, 'G'},
		{"gproxy-hold", required_argument, NULL, 'H'}, {"scaling", required_argument, NULL, 'S'},
		{"pin-flows", no_argument, NULL, 'F'}, {"start-placement", required_argument, NULL, 'P'},
		{"tsc-hz", required_argument, NULL, 'z'}, {"max-instances", required_argument, NULL, 'M'},
		{"rx-gap-ns", required_argument, NULL, 'g'},
		{"link", required_argument, NULL, 'l'}, {"link-ip", required_argument, NULL, 'l'},
		{"link-peer", required_argument, NULL, 'l'}, {"link-port", required_argument, NULL, 'l'},
		{NULL, 0, NULL, 0}};
	static const char *const placements[] = {"instance", "same", "other", "any"};
	static char why[400];
	const char *startup = "serpens";
	char *colon;
	int b;
	int opt, idx;

	D.state_mb = 256;
	D.flush_us = 50;
	D.rx_gap_ns = 5000;
	D.keep_warm_s = 30;
	D.auto_start = true;
	D.ctl->wake_batch = 128;
	D.ctl->batch = SP_MAX_BATCH;
	D.instance_lcore = D.lcore;
	D.delivery = &sp_delivery_consolidated;
	D.gproxy_hold = 1024;
	D.ctl->max_instances = SM_DEFAULT_INSTANCES;
	while ((opt = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		switch (opt) {
		case 'c': D.control_path = optarg; break;
		case 'r': D.runtime_path = optarg; break;
		case 'n': D.nf_dir = optarg; break;
		case 's': D.state_mb = (unsigned int)atoi(optarg); break;
		case 'w': D.ctl->wake_batch = (uint32_t)atoi(optarg); break;
		case 'b': D.ctl->batch = (uint32_t)atoi(optarg); break;
		case 'f': D.flush_us = (unsigned int)atoi(optarg); break;
		case 'g': {
			uint64_t ns;

			if (arg_u64(optarg, 0, 1000000, &ns))
				usage_exit("--rx-gap-ns must be 0..1000000 (0: receive on every turn)");
			D.rx_gap_ns = (unsigned int)ns;
			break;
		}
		case 'k': D.keep_warm_s = atof(optarg); break;
		case 'o': D.ctl->colocate = 1; break;
		case 'i': D.instance_lcore = (unsigned int)atoi(optarg); break;
		case 'a': D.auto_start = false; break;
		case 'p': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);

			if (!*optarg || *end || *optarg == '-' || n > SP_MAX_POOL)
				usage_exit("--pool must be a number of pool processes, 0..512");
			D.pool_size = (unsigned int)n;
			break;
		}
		case 'M': { /* instance slots: docs/startup.md, "Many instances at once" */
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);

			if (!*optarg || *end || *optarg == '-' || n < 1 || n > SM_MAX_INSTANCES)
				usage_exit("--max-instances must be a number of instance slots, 1..100");
			D.ctl->max_instances = (uint32_t)n;
			break;
		}
		case 'L': startup = optarg; break;
		case 'z': {
			uint64_t hz;

			/* the kernel's calibration (harness/tsc.py): every busy time and stage cost reported in
			 * ns is converted with it, not with DPDK's estimate rounded to 10 MHz */
			if (arg_u64(optarg, SP_MIN_TSC_HZ, SP_MAX_TSC_HZ, &hz))
				usage_exit("--tsc-hz must be the TSC frequency in Hz, 1e8..1e11");
			D.ctl->tsc_hz = hz;
			break;
		}
		case 'B':
			if ((b = rs_backend_parse(optarg)) < 0)
				usage_exit("--state-backend is serpens, fission or snf");
			D.ctl->state_backend = (uint32_t)b;
			break;
		case 'R':
			colon = strrchr(optarg, ':');
			if (!colon || colon == optarg || (size_t)(colon - optarg) >= sizeof(D.ctl->redis_host) ||
			    atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535)
				usage_exit("--redis is HOST:PORT");
			snprintf(D.ctl->redis_host, sizeof(D.ctl->redis_host), "%.*s", (int)(colon - optarg), optarg);
			D.ctl->redis_port = (uint32_t)atoi(colon + 1);
			break;
		case 'T': D.ctl->redis_timeout_ms = (uint32_t)atoi(optarg); break;
		case 'C':
			D.delivery = sp_delivery_find(optarg);
			if (!D.delivery) {
				snprintf(why, sizeof(why), "--chaining '%.40s' is not one of: %s", optarg,
					 sp_delivery_names(", "));
				usage_exit(why);
			}
			break;
		case 'G': D.gproxy_path = optarg; break;
		case 'F': D.pin_flows = true; break;
		case 'S':
			if ((b = sc_protocol_parse(optarg, &D.ctl->scaling.onf_mode)) < 0) {
				snprintf(why, sizeof(why), "--scaling '%.40s' is not one of: %s", optarg,
					 sc_protocol_names(", "));
				usage_exit(why);
			}
			D.ctl->scaling.protocol = (uint32_t)b;
			break;

		case 'H':
			if (atoi(optarg) < 1 || atoi(optarg) > (1 << 20))
				usage_exit("--gproxy-hold must be 1..1048576 packets");
			D.gproxy_hold = (unsigned int)atoi(optarg);
			break;
		case 'P':
			for (b = 0; b < 4 && strcmp(optarg, placements[b]); b++)
				;
			if (b == 4)
				usage_exit("--start-placement is instance, same, other or any");
			D.start_placement = (enum sp_placement)b;
			break;
		case 'l': /* across servers (server_link.h) */
			if (server_link_option(opts[idx].name, optarg, why, sizeof(why)) != 0)
				usage_exit(why);
			break;
		default: usage_exit("unknown option");
		}
	}
	if (!D.control_path || !D.runtime_path)
		usage_exit("--control and --runtime are required");
	if (D.delivery == &sp_delivery_global_proxy && !D.gproxy_path)
		usage_exit("--chaining global-proxy needs --gproxy PATH (serpens-gproxy)");
	if (D.ctl->wake_batch == 0 || D.ctl->wake_batch > RING_SIZE / 2 || D.state_mb < 4)
		usage_exit("--wake-batch must be 1..4096 and --state-mb at least 4");
	if (D.ctl->batch == 0 || D.ctl->batch > SP_MAX_BATCH)
		usage_exit("--batch must be 1..128");
	if (D.pin_flows && D.delivery != &sp_delivery_consolidated)
		usage_exit("--pin-flows pins flows to instances in the router: it needs --chaining consolidated");
	if (D.ctl->state_backend != RS_SERPENS && !D.ctl->redis_port)
		usage_exit("--state-backend fission/snf needs --redis HOST:PORT");
	if (D.ctl->redis_timeout_ms == 0)
		D.ctl->redis_timeout_ms = 1000;
	D.starter = st_by_name(startup);
	if (!D.starter) {
		snprintf(why, sizeof(why), "--startup: unknown method '%s' (known: %s)", startup, st_names());
		usage_exit(why);
	}
	/* every instance is a process of its own here: the Instance Manager stops, reaps and restarts it
	 * by its pid, and a runtime's per-process state (the State Manager's slot, the remote store's
	 * connection, the Chainer) is one instance's (docs/startup.md) */
	if (D.starter->resident == ST_RES_HOST)
		usage_exit("--startup thread: serpensd runs every instance as a process of its own (an instance "
			   "thread would share a host's per-process state and crash with it); see docs/startup.md");
	if (D.starter->resident != ST_RES_POOL && D.pool_size) {
		snprintf(why, sizeof(why), "--pool applies to --startup load and serpens, not %s", D.starter->name);
		usage_exit(why);
	}
	D.ctl->startup = (uint32_t)D.starter->method;
}

/* fission/snf: NF state (all of it, or the global tables) in Redis. serpensd deploys into it and moves
 * sub-states on scale-out/in; it refuses to start if Redis does not answer. The serpens backend never
 * touches Redis. */
static void setup_remote_state(void)
{
	struct rs_config rc = {.backend = (enum rs_backend)D.ctl->state_backend, .host = D.ctl->redis_host,
			       .port = (int)D.ctl->redis_port, .timeout_ms = D.ctl->redis_timeout_ms, .manager = 1,
			       .user = D.redis_admin_user, .pass = D.redis_admin_pass};
	char err[600] = "invalid configuration";

	if (D.ctl->state_backend == RS_SERPENS)
		return;
	if (rs_setup(&rc) != 0 || rs_ping(err, sizeof(err)) != 0)
		rte_exit(EXIT_FAILURE, "state backend %s: %s\n", rs_backend_name(rc.backend), err);
}

/* Redis's admin credential, "USER:PASSWORD" in SERPENS_REDIS_ADMIN (the harness's redis_server.py makes
 * it): taken before anything else and wiped from the environment, so that no runtime inherits it. Not an
 * option: a command line is readable by every process (/proc/<pid>/cmdline); the environment only with
 * ptrace rights over serpensd, which its runtimes, without capabilities, lack (docs/security.md). */
static void take_redis_admin(void)
{
	char *v = getenv("SERPENS_REDIS_ADMIN"), *colon = v ? strchr(v, ':') : NULL;

	if (!v)
		return;
	if (colon && colon != v && colon[1] && (size_t)(colon - v) < sizeof(D.redis_admin_user) &&
	    strlen(colon + 1) < sizeof(D.redis_admin_pass)) {
		snprintf(D.redis_admin_user, sizeof(D.redis_admin_user), "%.*s", (int)(colon - v), v);
		snprintf(D.redis_admin_pass, sizeof(D.redis_admin_pass), "%s", colon + 1);
	}
	memset(v, 'x', strlen(v)); /* the initial environment's copy (/proc/<pid>/environ) too */
	unsetenv("SERPENS_REDIS_ADMIN");
	if (!D.redis_admin_pass[0]) {
		fprintf(stderr, "serpensd: SERPENS_REDIS_ADMIN is USER:PASSWORD (at most %zu and %zu characters)\n",
			sizeof(D.redis_admin_user) - 1, sizeof(D.redis_admin_pass) - 1);
		exit(2);
	}
}

/* Every runtime it starts (pool, exec'd instances, proxy, zygotes, the OpenNF controller) is a DPDK
 * secondary; two initialising together can fail one of them in DPDK 22.11 (eal_init_lock.h). They take
 * turns on a lock file beside the control socket, named in the environment they inherit. */
static void publish_eal_init_lock(void)
{
	char path[PATH_MAX], err[300];
	const char *slash = strrchr(D.control_path, '/');

	snprintf(path, sizeof(path), "%.*s/eal-init.lock", slash ? (int)(slash - D.control_path) : 1,
		 slash ? D.control_path : ".");
	if (eal_init_lock_publish(path, err, sizeof(err)) != 0)
		rte_exit(EXIT_FAILURE, "%s\n", err);
}

static void setup_shared(unsigned int max_instances)
{
	const struct rte_memzone *mz;
	unsigned int i;

	mz = rte_memzone_reserve(SP_CTL_MZ, sizeof(struct sp_ctl), (int)rte_socket_id(), 0);
	if (!mz)
		rte_exit(EXIT_FAILURE, "cannot reserve the control memzone: %s\n", rte_strerror(rte_errno));
	D.ctl = mz->addr;
	memset(D.ctl, 0, sizeof(*D.ctl));
	D.ctl->magic = SP_CTL_MAGIC;
	D.ctl->tsc_hz = rte_get_tsc_hz(); /* main() puts --tsc-hz's value over it */
	D.ctl->max_instances = max_instances;
	for (i = 0; i < max_instances; i++) { /* a slot beyond --max-instances never holds an instance */
		snprintf(D.ctl->inst[i].rx_ring, sizeof(D.ctl->inst[i].rx_ring), "sp_rx_%u", i);
		snprintf(D.ctl->inst[i].tx_ring, sizeof(D.ctl->inst[i].tx_ring), "sp_tx_%u", i);
		D.rx[i] = rte_ring_create(D.ctl->inst[i].rx_ring, RING_SIZE, (int)rte_socket_id(),
					  RING_F_SP_ENQ | RING_F_SC_DEQ);
		D.tx[i] = rte_ring_create(D.ctl->inst[i].tx_ring, RING_SIZE, (int)rte_socket_id(),
					  RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (!D.rx[i] || !D.tx[i])
			rte_exit(EXIT_FAILURE, "cannot create instance rings: %s\n", rte_strerror(rte_errno));
	}
}

/* Runtimes order their mempool handler tables as serpensd's (ctl.h, mempool_ops). */
static void publish_mempool_ops(void)
{
	unsigned int i;

	RTE_BUILD_BUG_ON(RTE_DIM(D.ctl->mempool_ops) < RTE_MEMPOOL_MAX_OPS_IDX ||
			 sizeof(D.ctl->mempool_ops[0]) < RTE_MEMPOOL_OPS_NAMESIZE);
	for (i = 0; i < rte_mempool_ops_table.num_ops; i++)
		snprintf(D.ctl->mempool_ops[i], sizeof(D.ctl->mempool_ops[i]), "%s", rte_mempool_ops_table.ops[i].name);
	D.ctl->n_mempool_ops = rte_mempool_ops_table.num_ops;
	D.ctl->mbuf_ops_index = D.pool->ops_index;
}

/* The State Manager's regions, one per tenant, outside the EAL memory (tenant_region.h): the default
 * tenant's now (D.state), every other tenant's at its first deploy_nf. */
static void setup_state(void)
{
	char err[256];

	sm_set_region_slots(D.ctl->max_instances); /* every tenant's region: a value per slot in global|write keys */
	if (tr_setup(D.ctl, (size_t)D.state_mb << 20, err, sizeof(err)) != 0)
		rte_exit(EXIT_FAILURE, "%s\n", err);
	D.state = tr_region(0);
	sm_set_region(D.state);
	sm_set_instance(-1);
	sm_set_phase_deploy(true);
}

/* Every tenant region's timers (update on a timer: eventual state's folds, NF timers). */
static void run_timers(uint64_t now_us)
{
	int i;

	for (i = 0; i < SP_MAX_TENANTS; i++)
		if (tr_region(i))
			sm_run_timers(tr_region(i), now_us);
}

static void setup_port(void)
{
	int ret;

	if (rte_eth_dev_count_avail() == 0)
		rte_exit(EXIT_FAILURE, "no port: pass --vdev net_memif0,role=server,socket=PATH\n");
	D.pool = port_pool_create("serpens_mbufs", POOL_MBUFS, POOL_CACHE);
	publish_mempool_ops();
	port_configure(0, D.pool);
	ret = port_start(0, 0);
	if (ret != 0)
		rte_exit(EXIT_FAILURE, "port 0: start failed: %s\n", rte_strerror(-ret));
}

/* The chaining mechanism (delivery.h): proxy chainings tag packets between processes with a dynamic
 * field, registered here before any mbuf carries it; the mechanism's own rings and processes next. */
static void setup_delivery(void)
{
	D.ctl->delivery.mode = D.delivery->mode;
	D.ctl->delivery.flush_us = D.flush_us;
	D.tag_off = -1;
	if (D.delivery->per_nf) {
		D.tag_off = sp_chain_tag_register();
		if (D.tag_off < 0)
			rte_exit(EXIT_FAILURE, "cannot register the chain tag mbuf field: %s\n",
				 rte_strerror(rte_errno));
	}
	if (D.delivery->setup && D.delivery->setup(&D) != 0)
		rte_exit(EXIT_FAILURE, "--chaining %s: cannot set up its delivery (see above)\n", D.delivery->name);
}

/* The gateway stage's counters (docs/stages.md) take the TSC around work only: a receive that brought
 * packets, wake-ups, a transmit that found packets. An idle loop adds nothing.
 *
 * The receive gap (--rx-gap-ns): a burst that did not fill drained the port, and receiving again at once
 * would bring the one or two packets that arrived meanwhile (at 2 Mpps a turn of this loop is shorter than
 * a packet's interval). Every receive and route has costs per burst (the memif PMD allocates and frees
 * DP_BURST mbufs, the shared ring's indices and descriptors come from the generator's core, the Router's
 * table and staging, a ring enqueue, two TSC reads), so the next receive waits rx_gap_ns and takes what
 * gathered: ~10 packets per burst instead of ~2 at 2 Mpps (docs/serpens-dataplane.md, "Per-packet cost").
 * The loop goes on waking and transmitting meanwhile. A full burst, or an empty one, does not start a gap:
 * under load, and for the first packet after idle, nothing waits. A packet waits rx_gap_ns at most, on top
 * of the instance's wake_batch/flush_us queueing. */
static void main_loop(void)
{
	struct sp_gateway_stage *gw = &D.ctl->gateway;
	struct rte_mbuf *m[DP_BURST];
	uint64_t hz = D.ctl->tsc_hz, flush_tsc = hz * D.flush_us / 1000000, next_timer = 0, now, prev = 0;
	uint64_t t_rx, wake, next_rx = 0, rx_gap = hz * D.rx_gap_ns / 1000000000ull;
	struct link_watch link;
	uint16_t nb;

	link_watch_init(&link, 0, hz / 1000, rte_rdtsc());
	dp_guard_arm();
	__atomic_store_n(&D.dp_running, 1, __ATOMIC_RELEASE);
	while (likely(!sig_quit && !D.quit)) {
		t_rx = rte_rdtsc();
		nb = 0;
		if (t_rx >= next_rx) {
			nb = rte_eth_rx_burst(0, 0, m, DP_BURST);
			next_rx = nb && nb < DP_BURST ? t_rx + rx_gap : 0;
		}
		if (nb) {
			/* across servers the link takes its packets first; the rest are this server's */
			unsigned int local = sl_role ? server_link_route(&D, m, nb) : nb;

			D.port_rx += nb;
			D.rx_bursts++;
			if (local)
				D.delivery->route(&D, m, local);
		}
		now = rte_rdtsc();
		if (nb) {
			gw->busy_cycles += now - t_rx;
			gw->packets += nb;
		}
		if (prev && (now - prev) * 1000000000ull / hz > D.loop_max_ns)
			D.loop_max_ns = (now - prev) * 1000000000ull / hz;
		wake = D.delivery->poll(&D, now, flush_tsc);
		gw->busy_cycles += wake;
		gw->wake_cycles += wake;
		{
			uint64_t t1 = rte_rdtsc(), t2;
			unsigned int taken = D.delivery->transmit(&D);

			if (sl_role == SL_GATEWAY) /* what came back from the workers */
				taken += server_link_poll(&D);

			t2 = rte_rdtsc();
			if (taken)
				gw->busy_cycles += t2 - t1;
			if ((t2 - t1) * 1000000000ull / hz > D.tx_max_ns)
				D.tx_max_ns = (t2 - t1) * 1000000000ull / hz;
			prev = t2; /* the iteration's end: a TSC read costs ~20 ns in a VM, none more per turn */
			if (unlikely(t2 >= next_timer)) {
				run_timers(t2 / (hz / 1000000));
				next_timer = t2 + hz / 1000;
				t1 = rte_rdtsc();
				if ((t1 - t2) * 1000000000ull / hz > D.timers_max_ns)
					D.timers_max_ns = (t1 - t2) * 1000000000ull / hz;
				/* a generator connected with a new memif region: map its pages now, before
				 * its clock starts, not page by page in the trial (memif_region.h) */
				if (link_watch_came_up(&link, t1))
					memif_regions_populate();
				prev = t1;
			}
		}
		__atomic_fetch_add(&D.dp_epoch, 1, __ATOMIC_RELEASE);
		dp_guard_quiescent();
	}
	__atomic_store_n(&D.dp_running, 0, __ATOMIC_RELEASE);
	dp_guard_disarm();
}

int main(int argc, char **argv)
{
	static struct eal_files files;
	static struct sp_ctl boot; /* options parsed before the memzone exists */
	char **eal_argv;
	int ret;

	if (argc == 2 && !strcmp(argv[1], "--starters")) { /* the startup methods this binary runs, no EAL */
		st_describe(stdout);
		return 0;
	}
	/* One file per memseg list rather than one per hugepage. Every runtime is a secondary of this
	 * process and follows its layout: with a file per hugepage a secondary keeps a table of 8192 fds
	 * per memseg list (128 KiB of PSS in each of 100 pool processes; docs/startup.md, "Memory"). */
	eal_argv = calloc((size_t)argc + 2, sizeof(*eal_argv));
	if (!eal_argv)
		return 1;
	eal_argv[0] = argv[0];
	eal_argv[1] = "--single-file-segments";
	memcpy(eal_argv + 2, argv + 1, (size_t)(argc - 1) * sizeof(*argv));
	argc++;
	argv = eal_argv;
	rte_openlog_stream(stderr);
	take_redis_admin();
	{
		char err[256];

		/* before EAL initialisation maps anything: the tenants' regions' addresses stay free */
		if (tr_reserve(err, sizeof(err)) != 0) {
			fprintf(stderr, "serpensd: %s\n", err);
			return 1;
		}
	}
	ret = rte_eal_init(argc, argv);
	if (ret < 0)
		rte_exit(EXIT_FAILURE, "EAL initialisation failed: %s\n", rte_strerror(rte_errno));
	eal_files_arm(&files);
	sig_install(0);
	ignore_sigpipe();
	D.lcore = rte_lcore_id();
	D.ctl = &boot;
	parse_args(argc - ret, argv + ret);
	publish_eal_init_lock();
	if (D.lcore >= SP_INSTANCE_LCORE0)
		rte_exit(EXIT_FAILURE, "serpensd's lcore %u: must be below %u, where its runtimes' lcore ids begin "
			 "(ctl.h)\n", D.lcore, SP_INSTANCE_LCORE0);
	setup_shared(boot.max_instances);
	D.ctl->wake_batch = boot.wake_batch;
	D.ctl->batch = boot.batch;
	D.ctl->colocate = boot.colocate;
	D.ctl->state_backend = boot.state_backend;
	memcpy(D.ctl->redis_host, boot.redis_host, sizeof(boot.redis_host));
	D.ctl->redis_port = boot.redis_port;
	D.ctl->redis_timeout_ms = boot.redis_timeout_ms;
	if (boot.tsc_hz)
		D.ctl->tsc_hz = boot.tsc_hz;
	D.ctl->startup = boot.startup;
	D.ctl->scaling.protocol = boot.scaling.protocol;
	D.ctl->scaling.onf_mode = boot.scaling.onf_mode;
	setup_state();
	setup_remote_state();
	setup_port();
	if (server_link_setup(&D) != 0)
		rte_exit(EXIT_FAILURE, "--link: cannot set up the link between servers (see above)\n");
	setup_delivery();
	if (control_setup_scaling(&D) != 0)
		rte_exit(EXIT_FAILURE, "--scaling %s: cannot set it up (see above)\n",
			 sc_protocol_name((enum sc_protocol)D.ctl->scaling.protocol));
	if (control_fill_pool(&D) != 0) /* before the control thread, which reaps children */
		rte_exit(EXIT_FAILURE, "cannot launch the pool of %u runtimes (see above)\n", D.pool_size);
	if (control_start(&D) != 0)
		rte_exit(EXIT_FAILURE, "cannot start the control socket at %s\n", D.control_path);
	eal_files_collect(&files);
	printf("READY\n");
	fflush(stdout);
	main_loop();
	control_stop(&D);     /* join the control thread first: from here on one thread does everything */
	control_stop_all(&D);
	if (D.delivery->shutdown)
		D.delivery->shutdown(&D);
	control_cleanup(&D);
	server_link_shutdown();
	port_shutdown(0);
	eal_files_finish(&files); /* not rte_eal_cleanup(): see eal_files.h */
	return 0;
}
