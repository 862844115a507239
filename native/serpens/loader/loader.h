/*
 * loader.h: the shared-memory NF loader (paper Section III-A, "NF Startup With Reusable Runtime is
 * Practical"); see README.md in this directory for the design.
 *
 * One process (serpensd) builds an NF object once into a shared region that every runtime maps at the
 * same fixed virtual address `base`: PT_LOAD segments copied in, relocations applied. The image holds
 * no process-specific address: calls to imported functions go through trampolines (`jmp *entry(%rip)`)
 * at a fixed address after the image, and each process fills the entries with its own addresses
 * (ldr_bind), so ASLR of libc and the runtime stays on. Other processes map the built image with
 * ldr_map: code and read-only data shared, writable data copy-on-write per process.
 *
 * v1 handles x86-64 ELF64 ET_DYN objects as our meson files build them; it refuses TLS, IFUNC
 * (IRELATIVE), COPY relocations, imported data objects, and libraries other than
 * libc/libm/libhs/libcrypto (those are loaded and resolved per process).
 *
 * struct ldr_image holds only offsets and fixed addresses inside the region, so it may be copied to
 * another process (fork, or a copy placed in shared memory).
 */
#ifndef SERPENS_LOADER_H
#define SERPENS_LOADER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LDR_MAX_SEGS 8

struct ldr_seg {
	uint64_t off; /* page-aligned offset from base */
	uint64_t len; /* page-rounded length */
	int prot;     /* PROT_* of the segment */
};

struct ldr_image {
	uintptr_t base;       /* the fixed address the region is mapped at in every process */
	uint64_t size;        /* bytes of the region used: image + jump table (page-rounded) */
	unsigned int nsegs;
	struct ldr_seg seg[LDR_MAX_SEGS];
	uint64_t relro_off, relro_len; /* page range made read-only after binding (0 length: none) */

	/* the jump table: entries (one uint64 per import, per-process private page(s)), trampolines
	 * (8 bytes each, shared, read+exec), and the addresses of the import names (in .dynstr) */
	unsigned int nimports;
	uint64_t entries_off, entries_len;
	uint64_t tramp_off, tramp_len; /* tramp area also holds the name and needed arrays; tramp_len 0: it is
					* in the tail of the code's last page (mapped with the code) */
	uint64_t names_off;            /* uint64 name addresses, nimports of them */
	unsigned int nneeded;
	uint64_t needed_off;           /* uint64 addresses of DT_NEEDED names */

	/* initialisers the loader runs explicitly (vaddr offsets from base; 0 = none) */
	uint64_t init;
	uint64_t init_array;
	unsigned int ninit_array;

	/* .dynsym / .dynstr for ldr_sym (offsets from base) */
	uint64_t symtab, strtab, strsz;
	unsigned int nsyms;
};

/*
 * Build the object at so_path into region (zero-filled writable memory of region_size bytes — a fresh
 * memfd is; pages the image leaves zero are never touched — that will be mapped
 * at base in every process; region itself may be mapped elsewhere in the building process). 0 on
 * success; -1 with a message in err otherwise.
 */
int ldr_image_build(const char *so_path, void *region, size_t region_size, uintptr_t base,
		    struct ldr_image *img, char *err, size_t errlen);

/* The default resolver: dlsym(RTLD_DEFAULT, name). ldr_bind caches what it resolves through it, per
 * process (an import's address depends on the process, not on the NF). */
void *ldr_resolve_default(const char *name);
/* Resolve the imports of the image in memfd into this process's cache now (the image is mapped
 * read-only for the moment, nothing is bound or run), so that a later ldr_map of any NF with those
 * imports binds without a symbol search. Pool processes do this before they are needed. 0, or -1 if
 * the image's range is taken. */
int ldr_prewarm(const struct ldr_image *img, int memfd, off_t fd_off);

/*
 * In a process where the image is mapped at img->base: load the DT_NEEDED libraries (dlopen,
 * RTLD_GLOBAL), map a private page over the jump table entries and fill them with resolve(name)
 * (NULL resolve: ldr_resolve_default), then make them read-only. 0, or -1 with a message.
 */
int ldr_bind(const struct ldr_image *img, void *(*resolve)(const char *name), char *err, size_t errlen);

/*
 * In another process: map the built image from memfd (the region starts at fd_off in the file) at
 * img->base — code and read-only data MAP_SHARED without write permission, writable data MAP_PRIVATE
 * (copy-on-write per process) — then ldr_bind, make RELRO read-only, and run DT_INIT and
 * DT_INIT_ARRAY. Fails if anything is already mapped in [base, base + size). 0, or -1 with a message.
 */
int ldr_map(const struct ldr_image *img, int memfd, off_t fd_off, void *(*resolve)(const char *name),
	    char *err, size_t errlen);

/* Run DT_INIT then DT_INIT_ARRAY (ldr_map does this; for callers that bind themselves). */
void ldr_run_init(const struct ldr_image *img);

/* The address of the defined symbol `name` exported by the mapped image, or NULL. */
void *ldr_sym(const struct ldr_image *img, const char *name);

/* Unmap [base, base + size) in this process. */
void ldr_unmap(const struct ldr_image *img);

#ifdef __cplusplus
}
#endif

#endif /* SERPENS_LOADER_H */
