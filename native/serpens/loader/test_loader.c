/*
 * test_loader.c: the shared-memory NF loader on the real NF objects.
 *
 *   test_loader fw.so nat.so mon.so tls.so needs.so dataimport.so ids.so patterns.txt vpn.so
 *
 * The parent builds each NF into a memfd region mapped at a fixed address and never runs it; forked
 * children unmap the inherited region and ldr_map() it from the memfd (as a runtime would), then run
 * the NF's init and handler through the State Manager on ordinary memory (nftest.c), recording every
 * verdict and output frame. Another child does the same with dlopen; the two traces must be identical
 * byte for byte, and the loader's trace must show the NF's behaviour (FW drops the blacklisted flows,
 * NAT rewrites with correct checksums). The shared region must be unchanged by the children (code is
 * shared read-only, data copy-on-write, jump table private). Malformed and TLS objects are refused with
 * a message saying why. Finally the time of ldr_map (map + bind + init) of a built image in a fresh
 * process is printed next to dlopen of the same object.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"
#include "nftest.h"

#define BASE ((uintptr_t)0x5e5e00000000ull)
#define REGION (8u << 20)
#define MAXPKT 48
#define EXT "198.18.1.1"

struct trace {
	int n;
	int failed; /* the child could not load or start the NF */
	char msg[320];
	int verdict[MAXPKT];
	uint32_t len[MAXPKT];
	uint8_t data[MAXPKT][256];
	int selector[4];  /* FW: serpens_selector_suspicious(-1, 0, 1, 2) */
	char maps[8][64]; /* permissions seen in /proc/self/maps for the region (loader children) */
	double ns;        /* time to load */
	double ns_again;  /* time to load again in the same process after unloading (warm caches) */
};

/* The platform's sp_pkt_resize for the VPN: frames here are struct nft_frame, 256 bytes of room. */
int sp_pkt_resize(struct sp_pkt *pkt, int delta)
{
	long len = (long)pkt->len + delta;

	if (len < 0 || len > (long)sizeof(((struct nft_frame *)0)->data))
		return -ENOSPC;
	pkt->len = (uint32_t)len;
	return 0;
}

static int memfd = -1;
static uint8_t *region;
static struct trace *tr; /* MAP_SHARED: written by children */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int build(const char *path, struct ldr_image *img, char *err, size_t errlen)
{
	memset(region, 0, REGION);
	return ldr_image_build(path, region, REGION, BASE, img, err, errlen);
}

/* The permissions of the mappings inside the image, in /proc/self/maps order. */
static void record_maps(const struct ldr_image *img)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512], perms[8];
	unsigned long lo, hi;
	int n = 0;

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL && n < 8)
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo >= img->base &&
		    hi <= img->base + img->size)
			snprintf(tr->maps[n++], sizeof(tr->maps[0]), "+0x%lx %s", lo - img->base, perms);
	fclose(f);
}

static void rec(const struct sp_nf *nf, int slot, struct nft_frame *f)
{
	int i = tr->n;

	if (i >= MAXPKT)
		return;
	tr->verdict[i] = nft_run(nf, slot, &f->pkt);
	tr->len[i] = f->pkt.len;
	memcpy(tr->data[i], f->data, sizeof(f->data));
	tr->n++;
}

/* The same packets for every NF: flows 16.0.0.1..12 (UDP with checksums), TCP to 22 and 80, replies
 * to the NAT's external address, a non-IPv4 frame. */
static void script(const struct sp_nf *nf, const char *name, const char *const *args)
{
	struct nft_frame f;
	char src[32];
	int slot, i;

	if (nft_deploy(nf, name, args) != 0 || (slot = nft_start(nf, name, args)) < 0) {
		tr->failed = 1;
		snprintf(tr->msg, sizeof(tr->msg), "deploy/start of %s failed", name);
		return;
	}
	for (i = 1; i <= 12; i++) {
		snprintf(src, sizeof(src), "16.0.0.%d", i);
		nft_udp(&f, src, 1025, "48.0.0.1", 12, 60 + 4 * i, true);
		rec(nf, slot, &f);
	}
	nft_udp(&f, "16.0.0.5", 3000, "48.0.0.1", 12, 60, false);
	rec(nf, slot, &f);
	nft_udp(&f, "16.0.1.77", 999, "48.0.0.1", 12, 60, false);
	rec(nf, slot, &f);
	nft_tcp(&f, "16.0.0.1", 40000, "48.0.0.1", 22, 74);
	rec(nf, slot, &f);
	nft_tcp(&f, "16.0.0.3", 40000, "48.0.0.1", 80, 74);
	rec(nf, slot, &f);
	nft_udp(&f, "48.0.0.1", 12, EXT, 2000, 60, true);
	rec(nf, slot, &f);
	nft_tcp(&f, "48.0.0.1", 80, EXT, 2013, 74);
	rec(nf, slot, &f);
	nft_udp(&f, "48.0.0.1", 12, EXT, 2500, 60, true);
	rec(nf, slot, &f);
	nft_arp(&f);
	rec(nf, slot, &f);
	nft_stop(slot);
}

static const char *const fw_args[] = {
	"blacklist", "17,16.0.0.5,*,48.0.0.1,12; 6,*,*,*,22 ;17,16.0.0.7,1025,48.0.0.1,12;",
	"suspicious", "17,16.0.0.9,1025,48.0.0.1,12;udp,16.0.1.0/24,*,*,*", NULL};
static const char *const nat_args[] = {"external_ip", EXT, "ports", "2000-2999", NULL};
static const char *const mon_args[] = {"flows", "1024", "hosts", "256", "update_interval_ms", "10", NULL};

static const char *const *args_of(const char *name)
{
	if (strcmp(name, "fw") == 0)
		return fw_args;
	if (strcmp(name, "nat") == 0)
		return nat_args;
	return mon_args;
}

/* In a child: load with the loader (ldr) or dlopen, run the script, record into tr, _exit. */
static void child(const char *path, const char *name, const struct ldr_image *img, bool ldr)
{
	const struct sp_nf *nf;
	const sp_selector_fn *sel = NULL;
	char err[256];
	double t0;
	void *h;
	int i;

	if (ldr) {
		munmap((void *)BASE, REGION); /* the parent's build mapping: start like a fresh runtime */
		t0 = now_ns();
		if (ldr_map(img, memfd, 0, NULL, err, sizeof(err)) != 0) {
			tr->failed = 1;
			snprintf(tr->msg, sizeof(tr->msg), "ldr_map: %s", err);
			_exit(1);
		}
		nf = ldr_sym(img, "serpens_nf");
		tr->ns = now_ns() - t0;
		ldr_unmap(img);
		t0 = now_ns();
		if (ldr_map(img, memfd, 0, NULL, err, sizeof(err)) != 0) {
			snprintf(tr->msg, sizeof(tr->msg), "second ldr_map: %s", err);
			_exit(1);
		}
		nf = ldr_sym(img, "serpens_nf");
		tr->ns_again = now_ns() - t0;
		sel = ldr_sym(img, "serpens_selector_suspicious");
		record_maps(img);
	} else {
		t0 = now_ns();
		h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		nf = h != NULL ? dlsym(h, "serpens_nf") : NULL;
		tr->ns = now_ns() - t0;
		if (h != NULL) {
			dlclose(h);
			t0 = now_ns();
			h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
			nf = h != NULL ? dlsym(h, "serpens_nf") : NULL;
			tr->ns_again = now_ns() - t0;
		}
		if (h != NULL)
			sel = dlsym(h, "serpens_selector_suspicious");
	}
	if (nf == NULL) {
		tr->failed = 1;
		snprintf(tr->msg, sizeof(tr->msg), "no serpens_nf");
		_exit(1);
	}
	for (i = 0; i < 4; i++)
		tr->selector[i] = sel != NULL ? (*sel)(i - 1) : -100;
	script(nf, name, args_of(name));
	_exit(0);
}

static bool run_child(const char *path, const char *name, const struct ldr_image *img, bool ldr,
		      struct trace *out)
{
	pid_t pid;
	int status;

	memset(tr, 0, sizeof(*tr));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0)
		child(path, name, img, ldr);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s child for %s failed (status 0x%x): %s\n", ldr ? "loader" : "dlopen", name,
			status, tr->msg);
		return false;
	}
	*out = *tr;
	return !out->failed;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Re-execute this program as "--build so": it builds the image at BASE in ordinary memory and writes the
 * bytes to stdout. True if they equal what this process built into the region. */
static bool same_as_build_elsewhere(const char *path, const struct ldr_image *img)
{
	static uint8_t other[REGION];
	int pfd[2], status;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (pipe(pfd) != 0)
		return false;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl("/proc/self/exe", "test_loader", "--build", path, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (got < sizeof(other) && (n = read(pfd[0], other + got, sizeof(other) - got)) > 0)
		got += (size_t)n;
	close(pfd[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return false;
	return got == img->size && memcmp(other, region, img->size) == 0;
}

static int build_mode(const char *path)
{
	struct ldr_image img;
	char err[256];
	void *mem = aligned_alloc(4096, REGION);

	if (mem)
		memset(mem, 0, REGION); /* the loader builds into zero-filled memory */
	if (mem == NULL || ldr_image_build(path, mem, REGION, BASE, &img, err, sizeof(err)) != 0) {
		fprintf(stderr, "--build: %s\n", mem ? err : "no memory");
		return 1;
	}
	return fwrite(mem, 1, img.size, stdout) == img.size && fflush(stdout) == 0 ? 0 : 1;
}

static void test_loaded_nf_matches_dlopen_and_leaves_region_unchanged(const char *path, const char *name)
{
	static struct trace a, b;
	static uint8_t before[REGION];
	struct ldr_image img;
	char err[256];
	const uint64_t *entries;
	uint64_t i;
	int k;

	if (build(path, &img, err, sizeof(err)) != 0) {
		fprintf(stderr, "build %s: %s\n", name, err);
		nft_failures++;
		return;
	}
	printf("%s: image %llu bytes, %u segments, %u imports, %u needed, init %s, %u init_array\n", name,
	       (unsigned long long)img.size, img.nsegs, img.nimports, img.nneeded, img.init ? "yes" : "no",
	       img.ninit_array);
	memcpy(before, region, img.size);
	CHECK(run_child(path, name, &img, true, &a));
	CHECK(run_child(path, name, &img, false, &b));
	/* the children changed nothing in the shared region: text shared read-only, data copy-on-write,
	 * jump table entries private (still zero in the memfd) */
	CHECK(memcmp(before, region, img.size) == 0);
	entries = (const uint64_t *)(region + img.entries_off);
	for (i = 0; i < img.nimports; i++)
		CHECK(entries[i] == 0);
	/* no process-specific address in the image: a build in another process (this program re-executed,
	 * so libc, stack and heap are elsewhere under ASLR) yields the same bytes */
	CHECK(same_as_build_elsewhere(path, &img));
	printf("%s: loader child maps:", name);
	for (k = 0; k < 8 && a.maps[k][0]; k++)
		printf(" [%s]", a.maps[k]);
	printf("\n");
	for (k = 0; k < 8 && a.maps[k][0]; k++) /* nothing both writable and executable, nothing shared-writable */
		CHECK(!(a.maps[k][strlen(a.maps[k]) - 4] == 'w' && a.maps[k][strlen(a.maps[k]) - 3] == 'x') &&
		      !(a.maps[k][strlen(a.maps[k]) - 4] == 'w' && a.maps[k][strlen(a.maps[k]) - 1] == 's'));

	/* identical behaviour, byte for byte */
	CHECK(a.n == b.n && a.n > 0);
	CHECK(memcmp(a.verdict, b.verdict, sizeof(a.verdict)) == 0);
	CHECK(memcmp(a.len, b.len, sizeof(a.len)) == 0);
	CHECK(memcmp(a.data, b.data, sizeof(a.data)) == 0);
	CHECK(memcmp(a.selector, b.selector, sizeof(a.selector)) == 0);

	if (strcmp(name, "fw") == 0) {
		/* packets 0..11 are 16.0.0.1..12: .5 and .7 blacklisted, .9 suspicious */
		for (k = 0; k < 12; k++)
			CHECK(a.verdict[k] == (k == 4 || k == 6 ? SP_DROP : k == 8 ? 1 : SP_PASS));
		CHECK(a.verdict[12] == SP_DROP); /* wildcard source port */
		CHECK(a.verdict[13] == 1);       /* prefix rule */
		CHECK(a.verdict[14] == SP_DROP); /* TCP to 22 */
		CHECK(a.verdict[15] == SP_PASS);
		CHECK(a.selector[0] == -1 || a.selector[0] == b.selector[0]);
	} else if (strcmp(name, "nat") == 0) {
		struct nft_frame f;

		memcpy(f.data, a.data[0], sizeof(f.data));
		CHECK(a.verdict[0] == SP_PASS && nft_src_ip(&f) == nft_ip(EXT) && nft_sport(&f) == 2000);
		CHECK(nft_checksums_ok(&f) && nft_l4_csum(&f) != 0);
		memcpy(f.data, a.data[16], sizeof(f.data)); /* reply to 2000 back to 16.0.0.1:1025 */
		CHECK(a.verdict[16] == SP_PASS && nft_dst_ip(&f) == nft_ip("16.0.0.1") && nft_dport(&f) == 1025);
		CHECK(nft_checksums_ok(&f));
		CHECK(a.verdict[18] == SP_DROP); /* unknown inbound */
	} else {
		for (k = 0; k < a.n; k++)
			CHECK(a.verdict[k] == SP_PASS);
	}

	/* timing: map + bind + init of the built image in a fresh process vs dlopen (not asserted) */
	{
		enum { N = 15 };
		double tl[N], td[N], tl2[N], td2[N];

		for (k = 0; k < N; k++) {
			CHECK(run_child(path, name, &img, true, &a));
			tl[k] = a.ns;
			tl2[k] = a.ns_again;
			CHECK(run_child(path, name, &img, false, &b));
			td[k] = b.ns;
			td2[k] = b.ns_again;
		}
		qsort(tl, N, sizeof(double), cmp_double);
		qsort(td, N, sizeof(double), cmp_double);
		qsort(tl2, N, sizeof(double), cmp_double);
		qsort(td2, N, sizeof(double), cmp_double);
		printf("%s: median over %d fresh processes: ldr_map+bind+init %.1f us, dlopen+dlsym %.1f us "
		       "(min %.1f / %.1f us)\n", name, N, tl[N / 2] / 1e3, td[N / 2] / 1e3, tl[0] / 1e3,
		       td[0] / 1e3);
		printf("%s: again in the same process after unloading: ldr_map+bind+init %.1f us, dlopen+dlsym "
		       "%.1f us (medians)\n", name, tl2[N / 2] / 1e3, td2[N / 2] / 1e3);
	}
}

/* IDS (libhs) and VPN (libcrypto): the image builds, the DT_NEEDED library is loaded and its functions
 * bound per process, init and one packet run, with the same verdict and length as under dlopen. */
static void smoke_child(const char *path, const char *name, const char *const *args, const struct ldr_image *img,
			bool ldr)
{
	const struct sp_nf *nf;
	struct nft_frame f;
	char err[256];
	void *h;
	int slot;

	if (ldr) {
		munmap((void *)BASE, REGION);
		if (ldr_map(img, memfd, 0, NULL, err, sizeof(err)) != 0) {
			snprintf(tr->msg, sizeof(tr->msg), "ldr_map: %s", err);
			_exit(1);
		}
		nf = ldr_sym(img, "serpens_nf");
	} else {
		h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		nf = h != NULL ? dlsym(h, "serpens_nf") : NULL;
	}
	if (nf == NULL || strcmp(nf->name, name) != 0 || nft_deploy(nf, name, args) != 0 ||
	    (slot = nft_start(nf, name, args)) < 0) {
		snprintf(tr->msg, sizeof(tr->msg), "%s: no descriptor, or deploy/start failed", name);
		_exit(1);
	}
	nft_udp(&f, "16.0.0.1", 1025, "48.0.0.1", 12, 128, true);
	tr->verdict[0] = nft_run(nf, slot, &f.pkt);
	tr->len[0] = f.pkt.len;
	memcpy(tr->data[0], f.data, sizeof(f.data));
	tr->n = 1;
	_exit(0);
}

static bool smoke_run(const char *path, const char *name, const char *const *args, const struct ldr_image *img,
		      bool ldr, struct trace *out)
{
	pid_t pid;
	int status;

	memset(tr, 0, sizeof(*tr));
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		smoke_child(path, name, args, img, ldr);
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s smoke child for %s failed: %s\n", ldr ? "loader" : "dlopen", name, tr->msg);
		return false;
	}
	*out = *tr;
	return true;
}

/* cmp_bytes: how much of the output frame must match (the VPN seeds per-flow tags from RAND_bytes, so
 * only its Ethernet and IPv4 headers are deterministic) */
static void test_libhs_libcrypto_nf_binds_per_process(const char *path, const char *name, const char *const *args,
						      size_t cmp_bytes)
{
	static struct trace a, b;
	struct ldr_image img;
	char err[256];

	if (build(path, &img, err, sizeof(err)) != 0) {
		fprintf(stderr, "build %s: %s\n", name, err);
		nft_failures++;
		return;
	}
	CHECK(smoke_run(path, name, args, &img, true, &a));
	CHECK(smoke_run(path, name, args, &img, false, &b));
	CHECK(a.n == 1 && b.n == 1 && a.verdict[0] == b.verdict[0] && a.len[0] == b.len[0] &&
	      memcmp(a.data[0], b.data[0], cmp_bytes) == 0);
	printf("%s: %u imports, %u needed; one packet: verdict %d len %u (dlopen: %d %u)\n", name, img.nimports,
	       img.nneeded, a.verdict[0], a.len[0], b.verdict[0], b.len[0]);
}

/* One image mapped into two processes at once: both run the NF; a write to the NF's code faults only the
 * process that wrote (code is mapped shared and read-only), the other keeps working and the image is
 * unchanged. */
static void test_two_processes_share_image_and_code_write_faults_only_writer(const char *path)
{
	static const char *const args[] = {NULL};
	volatile uint32_t *go;
	struct ldr_image img;
	uint8_t before[64];
	char err[256];
	pid_t a, b;
	int st_a = 0, st_b = 0;
	const struct sp_nf *nf;

	if (build(path, &img, err, sizeof(err)) != 0) {
		fprintf(stderr, "build fw: %s\n", err);
		nft_failures++;
		return;
	}
	go = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(go != MAP_FAILED);
	memset(tr, 0, sizeof(*tr));
	fflush(NULL);
	a = fork();
	if (a == 0) { /* maps, says so, waits until the other has crashed, then processes a packet */
		struct nft_frame f;
		int slot;

		munmap((void *)BASE, REGION);
		if (ldr_map(&img, memfd, 0, NULL, err, sizeof(err)) != 0)
			_exit(10);
		nf = ldr_sym(&img, "serpens_nf");
		if (!nf || nft_deploy(nf, "fw", args) != 0 || (slot = nft_start(nf, "fw", args)) < 0)
			_exit(11);
		__atomic_store_n(&go[0], 1, __ATOMIC_SEQ_CST);
		while (!__atomic_load_n(&go[1], __ATOMIC_SEQ_CST))
			usleep(100);
		nft_udp(&f, "16.0.0.1", 1025, "48.0.0.1", 12, 128, true);
		_exit(nft_run(nf, slot, &f.pkt) == SP_PASS ? 0 : 12);
	}
	while (!__atomic_load_n(&go[0], __ATOMIC_SEQ_CST))
		usleep(100);
	b = fork();
	if (b == 0) { /* maps the same image, then writes into the NF's code */
		munmap((void *)BASE, REGION);
		if (ldr_map(&img, memfd, 0, NULL, err, sizeof(err)) != 0)
			_exit(20);
		nf = ldr_sym(&img, "serpens_nf");
		if (!nf)
			_exit(21);
		*(volatile uint8_t *)(uintptr_t)nf->handler = 0xcc;
		_exit(22); /* must not get here */
	}
	memcpy(before, region + 0x1000, sizeof(before)); /* the first code page, as built */
	CHECK(waitpid(b, &st_b, 0) == b && WIFSIGNALED(st_b) && WTERMSIG(st_b) == SIGSEGV);
	__atomic_store_n(&go[1], 1, __ATOMIC_SEQ_CST);
	CHECK(waitpid(a, &st_a, 0) == a && WIFEXITED(st_a) && WEXITSTATUS(st_a) == 0);
	CHECK(memcmp(before, region + 0x1000, sizeof(before)) == 0);
	printf("fw: one image in two processes: the code writer died of signal %d, the other processed its packet "
	       "(exit %d)\n", WIFSIGNALED(st_b) ? WTERMSIG(st_b) : 0, WIFEXITED(st_a) ? WEXITSTATUS(st_a) : -1);
	munmap((void *)go, 4096);
}

/* Write a variant of the file at path to a temporary file: the first keep bytes (0: all), with byte
 * `at` set to v (at < 0: none). */
static char *variant(const char *path, size_t keep, long at, uint8_t v)
{
	static char tmp[2][64];
	static int which;
	char *name = tmp[which++ & 1];
	FILE *in = fopen(path, "rb"), *out;
	uint8_t buf[1 << 16];
	size_t n, total = 0;
	int fd;

	snprintf(name, 64, "/tmp/ldrtestXXXXXX");
	fd = mkstemp(name);
	if (in == NULL || fd < 0) {
		fprintf(stderr, "cannot make a variant of %s\n", path);
		exit(2);
	}
	out = fdopen(fd, "wb");
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
		if (keep && total + n > keep)
			n = keep - total;
		if (at >= 0 && (size_t)at >= total && (size_t)at < total + n)
			buf[at - total] = v;
		fwrite(buf, 1, n, out);
		total += n;
		if (keep && total >= keep)
			break;
	}
	fclose(in);
	fclose(out);
	return name;
}

static void expect_refused(const char *what, const char *path, const char *reason)
{
	struct ldr_image img;
	char err[256] = "";
	int rc = build(path, &img, err, sizeof(err));

	printf("refused %-22s -> %s\n", what, rc != 0 ? err : "(accepted!)");
	CHECK(rc != 0);
	if (strstr(err, reason) == NULL) {
		fprintf(stderr, "%s: message \"%s\" does not mention \"%s\"\n", what, err, reason);
		nft_failures++;
	}
}

static void test_refuses_malformed_tls_foreign_needed_and_data_imports(const char *fw, const char *tls,
								       const char *needs, const char *dataimport)
{
	char *p;

	p = variant(fw, 40, -1, 0);
	expect_refused("truncated (40 bytes)", p, "truncated");
	unlink(p);
	p = variant(fw, 3000, -1, 0); /* headers intact, segments cut off */
	expect_refused("truncated (3000 bytes)", p, "outside the file");
	unlink(p);
	p = variant(fw, 0, 4 /* EI_CLASS */, 1 /* ELFCLASS32 */);
	expect_refused("ELFCLASS32", p, "not ELF64");
	unlink(p);
	p = variant(fw, 0, 16 /* e_type */, 2 /* ET_EXEC */);
	expect_refused("ET_EXEC", p, "not ET_DYN");
	unlink(p);
	p = variant(fw, 0, 18 /* e_machine */, 3 /* EM_386 */);
	expect_refused("EM_386", p, "not x86-64");
	unlink(p);
	{
		char text[] = "/tmp/ldrtextXXXXXX";
		int fd = mkstemp(text);

		if (fd < 0 || write(fd, "#!/bin/sh\necho not an object\n", 29) != 29) {
			fprintf(stderr, "cannot write %s\n", text);
			exit(2);
		}
		close(fd);
		expect_refused("not ELF (a script)", text, "not an ELF");
		unlink(text);
	}
	expect_refused("TLS variable", tls, "TLS");
	expect_refused("needs libjansson", needs, "only libc, libm, libhs and libcrypto");
	expect_refused("imports stderr (data)", dataimport, "data object stderr");
}

int main(int argc, char **argv)
{
	void *p;

	if (argc == 3 && strcmp(argv[1], "--build") == 0)
		return build_mode(argv[2]);
	if (argc != 10) {
		fprintf(stderr, "usage: %s fw.so nat.so mon.so tls.so needs.so dataimport.so ids.so patterns "
			"vpn.so\n", argv[0]);
		return 2;
	}
	memfd = memfd_create("serpens-nf-image", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, REGION) != 0) {
		perror("memfd");
		return 2;
	}
	p = mmap((void *)BASE, REGION, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, memfd, 0);
	tr = mmap(NULL, sizeof(*tr), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p != (void *)BASE || tr == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	region = p;
	test_loaded_nf_matches_dlopen_and_leaves_region_unchanged(argv[1], "fw");
	test_loaded_nf_matches_dlopen_and_leaves_region_unchanged(argv[2], "nat");
	test_loaded_nf_matches_dlopen_and_leaves_region_unchanged(argv[3], "mon");
	{
		const char *ids_args[] = {"patterns", argv[8], NULL};
		static const char *const vpn_args[] = {NULL};

		test_libhs_libcrypto_nf_binds_per_process(argv[7], "ids", ids_args,
							  sizeof(((struct nft_frame *)0)->data));
		test_libhs_libcrypto_nf_binds_per_process(argv[9], "vpn", vpn_args, 34);
	}
	test_two_processes_share_image_and_code_write_faults_only_writer(argv[1]);
	test_refuses_malformed_tls_foreign_needed_and_data_imports(argv[1], argv[4], argv[5], argv[6]);
	return nft_finish("test_loader");
}
