/*
 * loader.c: the shared-memory NF loader (see loader.h and README.md).
 *
 * Structure (after the usual dynamic-linker order): read and validate the ELF header and program
 * headers; copy the PT_LOAD segments to their place in the image; decode PT_DYNAMIC; collect the
 * imports (first relocation pass, which also refuses what v1 does not handle); lay out the jump table
 * after the image; apply the relocations (second pass). Binding and mapping in other processes only
 * touch the jump table entries and page protections.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"

#define PAGE 4096ull
#define PAGE_DOWN(x) ((uint64_t)(x) & ~(PAGE - 1))
#define PAGE_UP(x) (((uint64_t)(x) + PAGE - 1) & ~(PAGE - 1))
#define TRAMP_BYTES 8 /* ff 25 <rel32> cc cc: jmp *entry(%rip) */

static const char *const allowed_needed[] = {"libc.so", "libm.so", "libhs.so", "libcrypto.so", NULL};

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* What ldr_image_build works on. */
struct build {
	const char *path;
	uint8_t *file;
	size_t file_size;
	uint8_t *mem;       /* the region, as mapped in this process */
	uint64_t mem_size;  /* region size */
	uint64_t img_size;  /* page-rounded extent of the PT_LOAD segments */
	uint64_t text_end;  /* end (p_vaddr + p_memsz) of the last executable, read-only PT_LOAD; 0: none */
	uintptr_t base;
	char *err;
	size_t errlen;
	/* from PT_DYNAMIC */
	const Elf64_Sym *syms;
	unsigned int nsyms;
	const char *strtab;
	uint64_t strsz;
	const Elf64_Rela *rela, *jmprel;
	uint64_t relasz, jmprelsz;
	/* imports: symbol index -> import slot + 1 (0: not an import) */
	uint32_t *slot_of;
	unsigned int nimports;
	uint32_t *import_sym; /* slot -> symbol index */
};

/* A pointer into the image for [vaddr, vaddr + len), or NULL when outside it. */
static void *at(const struct build *b, uint64_t vaddr, uint64_t len)
{
	if (vaddr > b->img_size || len > b->img_size - vaddr)
		return NULL;
	return b->mem + vaddr;
}

static int read_file(struct build *b)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd = open(b->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fail(b->err, b->errlen, "%s: cannot open: %s", b->path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return fail(b->err, b->errlen, "%s: not a regular file", b->path);
	}
	b->file_size = (size_t)st.st_size;
	b->file = malloc(b->file_size ? b->file_size : 1);
	if (b->file == NULL) {
		close(fd);
		return fail(b->err, b->errlen, "%s: out of memory", b->path);
	}
	while (got < b->file_size) {
		n = read(fd, b->file + got, b->file_size - got);
		if (n <= 0) {
			close(fd);
			return fail(b->err, b->errlen, "%s: read failed", b->path);
		}
		got += (size_t)n;
	}
	close(fd);
	return 0;
}

static int check_header(struct build *b, const Elf64_Ehdr **ehp)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)b->file;

	if (b->file_size < EI_NIDENT || memcmp(b->file, ELFMAG, SELFMAG) != 0)
		return fail(b->err, b->errlen, "%s: not an ELF file (%s)", b->path,
			    b->file_size < EI_NIDENT ? "truncated before the ELF identification" : "bad magic");
	if (b->file[EI_CLASS] != ELFCLASS64)
		return fail(b->err, b->errlen, "%s: not ELF64 (EI_CLASS %u; only 64-bit objects are loaded)",
			    b->path, b->file[EI_CLASS]);
	if (b->file[EI_DATA] != ELFDATA2LSB)
		return fail(b->err, b->errlen, "%s: not little-endian ELF", b->path);
	if (b->file_size < sizeof(Elf64_Ehdr))
		return fail(b->err, b->errlen, "%s: truncated ELF header (%zu bytes)", b->path, b->file_size);
	if (eh->e_machine != EM_X86_64)
		return fail(b->err, b->errlen, "%s: machine %u is not x86-64", b->path, eh->e_machine);
	if (eh->e_type != ET_DYN)
		return fail(b->err, b->errlen, "%s: e_type %u is not ET_DYN (a shared object)", b->path,
			    eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phoff > b->file_size ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > b->file_size - eh->e_phoff)
		return fail(b->err, b->errlen, "%s: program headers missing or truncated (file %zu bytes)",
			    b->path, b->file_size);
	*ehp = eh;
	return 0;
}

/* Copy the PT_LOAD segments; record their page ranges and protections; find PT_DYNAMIC / RELRO. */
static int load_segments(struct build *b, const Elf64_Ehdr *eh, struct ldr_image *img,
			 const Elf64_Phdr **dynp)
{
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(b->file + eh->e_phoff);
	uint64_t end = 0, prev_end = 0;
	int i;

	*dynp = NULL;
	for (i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_TLS)
			return fail(b->err, b->errlen,
				    "%s: has a PT_TLS segment (thread-local variables are not supported by the "
				    "shared-memory loader)", b->path);
		if (ph[i].p_type == PT_INTERP)
			return fail(b->err, b->errlen, "%s: has PT_INTERP (an executable, not an NF object)",
				    b->path);
		if (ph[i].p_type == PT_DYNAMIC)
			*dynp = &ph[i];
		if (ph[i].p_type == PT_GNU_RELRO) {
			img->relro_off = PAGE_DOWN(ph[i].p_vaddr);
			img->relro_len = PAGE_DOWN(ph[i].p_vaddr + ph[i].p_memsz) - img->relro_off;
		}
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (ph[i].p_filesz > ph[i].p_memsz || ph[i].p_offset > b->file_size ||
		    ph[i].p_filesz > b->file_size - ph[i].p_offset)
			return fail(b->err, b->errlen, "%s: PT_LOAD segment %d lies outside the file (truncated?)",
				    b->path, i);
		if (ph[i].p_vaddr + ph[i].p_memsz < ph[i].p_vaddr || ph[i].p_vaddr < prev_end)
			return fail(b->err, b->errlen, "%s: PT_LOAD segments overlap or are out of order",
				    b->path);
		if (img->nsegs > 0 && PAGE_DOWN(ph[i].p_vaddr) < img->seg[img->nsegs - 1].off +
								     img->seg[img->nsegs - 1].len)
			return fail(b->err, b->errlen,
				    "%s: PT_LOAD segments share a page (link with -z separate-code; v1 maps "
				    "each segment on its own pages)", b->path);
		if (ph[i].p_align > PAGE && (b->base & (ph[i].p_align - 1)) != 0)
			return fail(b->err, b->errlen, "%s: segment alignment 0x%llx needs a base aligned to it",
				    b->path, (unsigned long long)ph[i].p_align);
		if (img->nsegs == LDR_MAX_SEGS)
			return fail(b->err, b->errlen, "%s: more than %d PT_LOAD segments", b->path,
				    LDR_MAX_SEGS);
		prev_end = ph[i].p_vaddr + ph[i].p_memsz;
		img->seg[img->nsegs].off = PAGE_DOWN(ph[i].p_vaddr);
		img->seg[img->nsegs].len = PAGE_UP(prev_end) - PAGE_DOWN(ph[i].p_vaddr);
		if ((ph[i].p_flags & PF_X) && !(ph[i].p_flags & PF_W))
			b->text_end = prev_end;
		img->seg[img->nsegs].prot = ((ph[i].p_flags & PF_R) ? PROT_READ : 0) |
					    ((ph[i].p_flags & PF_W) ? PROT_WRITE : 0) |
					    ((ph[i].p_flags & PF_X) ? PROT_EXEC : 0);
		img->nsegs++;
		if (PAGE_UP(prev_end) > end)
			end = PAGE_UP(prev_end);
	}
	if (img->nsegs == 0)
		return fail(b->err, b->errlen, "%s: no PT_LOAD segment", b->path);
	if (*dynp == NULL)
		return fail(b->err, b->errlen, "%s: no PT_DYNAMIC (not a dynamic shared object)", b->path);
	if (end > b->mem_size)
		return fail(b->err, b->errlen, "%s: image needs %llu bytes, region has %llu", b->path,
			    (unsigned long long)end, (unsigned long long)b->mem_size);
	b->img_size = end;
	/* bss, the gaps between segments and the jump table entries are left as the region's zeroes (it
	 * must be zero-filled: a fresh memfd is), so that their pages are never allocated: a deployed NF
	 * occupies only the pages that hold its bytes */
	for (i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD)
			memcpy(b->mem + ph[i].p_vaddr, b->file + ph[i].p_offset, ph[i].p_filesz);
	if (img->relro_len > 0 && img->relro_off + img->relro_len > end)
		img->relro_len = 0;
	return 0;
}

/* The number of .dynsym entries, from DT_HASH (nchain) or DT_GNU_HASH (walk to the last chain). */
static int count_syms(struct build *b, uint64_t hash, uint64_t gnu_hash, unsigned int *n)
{
	const uint32_t *h, *buckets, *chain;
	uint32_t nbuckets, symoffset, bloom, max = 0, i;

	if (hash != 0) {
		h = at(b, hash, 8);
		if (h == NULL)
			return fail(b->err, b->errlen, "%s: DT_HASH outside the image", b->path);
		*n = h[1];
		return 0;
	}
	if (gnu_hash == 0)
		return fail(b->err, b->errlen, "%s: neither DT_HASH nor DT_GNU_HASH", b->path);
	h = at(b, gnu_hash, 16);
	if (h == NULL)
		return fail(b->err, b->errlen, "%s: DT_GNU_HASH outside the image", b->path);
	nbuckets = h[0];
	symoffset = h[1];
	bloom = h[2];
	buckets = at(b, gnu_hash + 16 + (uint64_t)bloom * 8, (uint64_t)nbuckets * 4);
	if (buckets == NULL)
		return fail(b->err, b->errlen, "%s: DT_GNU_HASH buckets outside the image", b->path);
	for (i = 0; i < nbuckets; i++)
		if (buckets[i] > max)
			max = buckets[i];
	if (max < symoffset) {
		*n = symoffset;
		return 0;
	}
	chain = (const uint32_t *)(buckets + nbuckets);
	for (;;) {
		if (at(b, (uint64_t)((const uint8_t *)&chain[max - symoffset] - b->mem), 4) == NULL)
			return fail(b->err, b->errlen, "%s: DT_GNU_HASH chain outside the image", b->path);
		if (chain[max - symoffset] & 1)
			break;
		max++;
	}
	*n = max + 1;
	return 0;
}

static bool needed_allowed(const char *name)
{
	int i;

	for (i = 0; allowed_needed[i] != NULL; i++)
		if (strncmp(name, allowed_needed[i], strlen(allowed_needed[i])) == 0)
			return true;
	return false;
}

static int decode_dynamic(struct build *b, const Elf64_Phdr *dynph, struct ldr_image *img,
			  uint64_t *needed, unsigned int *nneeded)
{
	const Elf64_Dyn *d = at(b, dynph->p_vaddr, dynph->p_memsz);
	uint64_t symtab = 0, strtab = 0, hash = 0, gnu_hash = 0, rela = 0, jmprel = 0, init_arraysz = 0;
	uint64_t pltrel = DT_RELA;
	size_t i, n;

	if (d == NULL)
		return fail(b->err, b->errlen, "%s: PT_DYNAMIC outside the image", b->path);
	n = dynph->p_memsz / sizeof(*d);
	*nneeded = 0;
	for (i = 0; i < n && d[i].d_tag != DT_NULL; i++) {
		uint64_t v = d[i].d_un.d_val;

		switch (d[i].d_tag) {
		case DT_SYMTAB: symtab = v; break;
		case DT_STRTAB: strtab = v; break;
		case DT_STRSZ: b->strsz = v; break;
		case DT_HASH: hash = v; break;
		case DT_GNU_HASH: gnu_hash = v; break;
		case DT_RELA: rela = v; break;
		case DT_RELASZ: b->relasz = v; break;
		case DT_JMPREL: jmprel = v; break;
		case DT_PLTRELSZ: b->jmprelsz = v; break;
		case DT_PLTREL: pltrel = v; break;
		case DT_INIT: img->init = v; break;
		case DT_INIT_ARRAY: img->init_array = v; break;
		case DT_INIT_ARRAYSZ: init_arraysz = v; break;
		case DT_REL:
		case DT_RELR:
			return fail(b->err, b->errlen, "%s: DT_REL/DT_RELR relocations are not supported "
				    "(x86-64 objects use DT_RELA)", b->path);
		case DT_FLAGS:
			if (v & DF_STATIC_TLS)
				return fail(b->err, b->errlen, "%s: uses static TLS (DF_STATIC_TLS)", b->path);
			break;
		case DT_NEEDED:
			if (*nneeded == 16)
				return fail(b->err, b->errlen, "%s: more than 16 DT_NEEDED", b->path);
			needed[(*nneeded)++] = v;
			break;
		default: break;
		}
	}
	if (symtab == 0 || strtab == 0)
		return fail(b->err, b->errlen, "%s: no DT_SYMTAB/DT_STRTAB", b->path);
	b->strtab = at(b, strtab, b->strsz);
	if (b->strtab == NULL || b->strsz == 0 || b->strtab[b->strsz - 1] != '\0')
		return fail(b->err, b->errlen, "%s: .dynstr outside the image", b->path);
	if (pltrel != DT_RELA)
		return fail(b->err, b->errlen, "%s: DT_PLTREL is not DT_RELA", b->path);
	if (count_syms(b, hash, gnu_hash, &b->nsyms) != 0)
		return -1;
	b->syms = at(b, symtab, (uint64_t)b->nsyms * sizeof(Elf64_Sym));
	if (b->syms == NULL)
		return fail(b->err, b->errlen, "%s: .dynsym outside the image", b->path);
	for (i = 0; i < b->nsyms; i++)
		if (b->syms[i].st_name >= b->strsz)
			return fail(b->err, b->errlen, "%s: symbol %zu has a bad name", b->path, i);
	if (rela != 0 && (b->rela = at(b, rela, b->relasz)) == NULL)
		return fail(b->err, b->errlen, "%s: DT_RELA outside the image", b->path);
	if (jmprel != 0 && (b->jmprel = at(b, jmprel, b->jmprelsz)) == NULL)
		return fail(b->err, b->errlen, "%s: DT_JMPREL outside the image", b->path);
	for (i = 0; i < *nneeded; i++) {
		if (needed[i] >= b->strsz)
			return fail(b->err, b->errlen, "%s: bad DT_NEEDED", b->path);
		if (!needed_allowed(b->strtab + needed[i]))
			return fail(b->err, b->errlen,
				    "%s: needs %s; only libc, libm, libhs and libcrypto may be needed (they are "
				    "resolved per process)", b->path, b->strtab + needed[i]);
		needed[i] += strtab; /* now a vaddr */
	}
	img->ninit_array = (unsigned int)(init_arraysz / 8);
	if (img->ninit_array > 0 && at(b, img->init_array, init_arraysz) == NULL)
		return fail(b->err, b->errlen, "%s: DT_INIT_ARRAY outside the image", b->path);
	if (img->init != 0 && at(b, img->init, 1) == NULL)
		return fail(b->err, b->errlen, "%s: DT_INIT outside the image", b->path);
	img->symtab = symtab;
	img->strtab = strtab;
	img->strsz = b->strsz;
	img->nsyms = b->nsyms;
	return 0;
}

static const char *rel_name(uint32_t type)
{
	switch (type) {
	case R_X86_64_TPOFF64: return "R_X86_64_TPOFF64 (TLS)";
	case R_X86_64_TPOFF32: return "R_X86_64_TPOFF32 (TLS)";
	case R_X86_64_DTPMOD64: return "R_X86_64_DTPMOD64 (TLS)";
	case R_X86_64_DTPOFF64: return "R_X86_64_DTPOFF64 (TLS)";
	case R_X86_64_TLSDESC: return "R_X86_64_TLSDESC (TLS)";
	case R_X86_64_IRELATIVE: return "R_X86_64_IRELATIVE (IFUNC)";
	case R_X86_64_COPY: return "R_X86_64_COPY";
	default: return NULL;
	}
}

/*
 * One relocation. Pass 0 validates and collects imports; pass 1 writes. Addresses written are base +
 * offset (defined symbols, RELATIVE) or a trampoline address (imports): none is process-specific.
 */
static int do_rel(struct build *b, const struct ldr_image *img, const Elf64_Rela *r, int pass)
{
	uint32_t type = ELF64_R_TYPE(r->r_info), si = ELF64_R_SYM(r->r_info);
	const Elf64_Sym *s;
	uint64_t *where;
	const char *name;

	if (type == R_X86_64_NONE)
		return 0;
	where = at(b, r->r_offset, 8);
	if (where == NULL)
		return fail(b->err, b->errlen, "%s: relocation at 0x%llx outside the image", b->path,
			    (unsigned long long)r->r_offset);
	if (type == R_X86_64_RELATIVE) {
		if (pass == 1)
			*where = b->base + (uint64_t)r->r_addend;
		return 0;
	}
	if (type != R_X86_64_64 && type != R_X86_64_GLOB_DAT && type != R_X86_64_JUMP_SLOT) {
		name = rel_name(type);
		if (name != NULL)
			return fail(b->err, b->errlen, "%s: relocation %s is not supported by the shared-memory "
				    "loader", b->path, name);
		return fail(b->err, b->errlen, "%s: unknown relocation type %u at 0x%llx", b->path, type,
			    (unsigned long long)r->r_offset);
	}
	if (si == 0 || si >= b->nsyms)
		return fail(b->err, b->errlen, "%s: relocation with bad symbol index %u", b->path, si);
	s = &b->syms[si];
	name = b->strtab + s->st_name;
	if (ELF64_ST_TYPE(s->st_info) == STT_TLS)
		return fail(b->err, b->errlen, "%s: relocation against TLS symbol %s (thread-local variables "
			    "are not supported)", b->path, name);
	if (ELF64_ST_TYPE(s->st_info) == STT_GNU_IFUNC)
		return fail(b->err, b->errlen, "%s: IFUNC symbol %s is not supported", b->path, name);
	if (s->st_shndx != SHN_UNDEF) {
		if (pass == 1)
			*where = b->base + s->st_value + (uint64_t)r->r_addend;
		return 0;
	}
	if (ELF64_ST_BIND(s->st_info) == STB_WEAK) {
		/* weak undefined (__gmon_start__, _ITM_*, __cxa_finalize): absent in every process, like
		 * a static link without a definition; the object tests the pointer before using it */
		if (pass == 1)
			*where = (uint64_t)r->r_addend;
		return 0;
	}
	if (ELF64_ST_TYPE(s->st_info) == STT_OBJECT)
		return fail(b->err, b->errlen, "%s: imports the data object %s; only functions can be imported "
			    "through the jump table", b->path, name);
	if (r->r_addend != 0)
		return fail(b->err, b->errlen, "%s: import %s with a nonzero addend", b->path, name);
	if (pass == 0) {
		if (b->slot_of[si] == 0) {
			b->import_sym[b->nimports] = si;
			b->slot_of[si] = ++b->nimports;
		}
		return 0;
	}
	*where = b->base + img->tramp_off + (uint64_t)(b->slot_of[si] - 1) * TRAMP_BYTES;
	return 0;
}

static int relocate(struct build *b, const struct ldr_image *img, int pass)
{
	size_t i;

	for (i = 0; b->rela != NULL && i < b->relasz / sizeof(Elf64_Rela); i++)
		if (do_rel(b, img, &b->rela[i], pass) != 0)
			return -1;
	for (i = 0; b->jmprel != NULL && i < b->jmprelsz / sizeof(Elf64_Rela); i++)
		if (do_rel(b, img, &b->jmprel[i], pass) != 0)
			return -1;
	return 0;
}

/* Lay out the jump table and write the trampolines and name arrays. The entries (per-process, written)
 * go on their own page(s) after the image. The trampolines and the name arrays (read-only, the same in
 * every process) go into the unused tail of the code's last page when they fit (tramp_len 0): that page
 * holds bytes anyway, so they cost no page of their own in the memfd, and no mapping of their own
 * (FW: 5 pages instead of 6, 2 mappings instead of 3). Otherwise, or with LDR_TRAMP_PAGE=1 in the
 * environment, they get page(s) of their own after the entries. */
static int layout_table(struct build *b, struct ldr_image *img, const uint64_t *needed, unsigned int nneeded)
{
	uint64_t tramp_bytes, table_bytes, tail, i;
	uint64_t *names, *need;
	const char *own_page = getenv("LDR_TRAMP_PAGE");
	uint8_t *t;

	img->nimports = b->nimports;
	img->entries_off = b->img_size;
	img->entries_len = PAGE_UP((uint64_t)b->nimports * 8);
	if (img->entries_len == 0)
		img->entries_len = PAGE;
	tramp_bytes = (uint64_t)b->nimports * TRAMP_BYTES;
	table_bytes = tramp_bytes + (uint64_t)b->nimports * 8 + (uint64_t)nneeded * 8;
	tail = (b->text_end + 15) & ~15ull;
	if (b->text_end && PAGE_DOWN(tail) == PAGE_DOWN(b->text_end) && tail + table_bytes <= PAGE_UP(b->text_end) &&
	    !(own_page && !strcmp(own_page, "1"))) {
		img->tramp_off = tail;
		img->tramp_len = 0;
	} else {
		img->tramp_off = img->entries_off + img->entries_len;
		img->tramp_len = PAGE_UP(table_bytes);
		if (img->tramp_len == 0)
			img->tramp_len = PAGE;
	}
	img->names_off = img->tramp_off + tramp_bytes;
	img->nneeded = nneeded;
	img->needed_off = img->names_off + (uint64_t)b->nimports * 8;
	img->size = img->tramp_len ? img->tramp_off + img->tramp_len : img->entries_off + img->entries_len;
	if (img->size > b->mem_size)
		return fail(b->err, b->errlen, "%s: image and jump table need %llu bytes, region has %llu",
			    b->path, (unsigned long long)img->size, (unsigned long long)b->mem_size);
	t = b->mem + img->tramp_off;
	names = (uint64_t *)(b->mem + img->names_off);
	for (i = 0; i < b->nimports; i++) {
		int64_t disp = (int64_t)(img->entries_off + i * 8) - (int64_t)(img->tramp_off + i * TRAMP_BYTES + 6);
		int32_t d32 = (int32_t)disp;

		t[i * TRAMP_BYTES + 0] = 0xff; /* jmp *disp32(%rip) */
		t[i * TRAMP_BYTES + 1] = 0x25;
		memcpy(&t[i * TRAMP_BYTES + 2], &d32, 4);
		t[i * TRAMP_BYTES + 6] = 0xcc; /* int3 padding */
		t[i * TRAMP_BYTES + 7] = 0xcc;
		names[i] = b->base + img->strtab + b->syms[b->import_sym[i]].st_name;
	}
	need = (uint64_t *)(b->mem + img->needed_off);
	for (i = 0; i < nneeded; i++)
		need[i] = b->base + needed[i];
	return 0;
}

int ldr_image_build(const char *so_path, void *region, size_t region_size, uintptr_t base,
		    struct ldr_image *img, char *err, size_t errlen)
{
	struct build b;
	const Elf64_Ehdr *eh = NULL;
	const Elf64_Phdr *dynph;
	uint64_t needed[16];
	unsigned int nneeded = 0;
	int rc = -1;

	memset(&b, 0, sizeof(b));
	memset(img, 0, sizeof(*img));
	b.path = so_path;
	b.mem = region;
	b.mem_size = region_size;
	b.base = base;
	b.err = err;
	b.errlen = errlen;
	if (base & (PAGE - 1) || (uintptr_t)region & (PAGE - 1))
		return fail(err, errlen, "%s: base and region must be page-aligned", so_path);
	img->base = base;
	if (read_file(&b) != 0 || check_header(&b, &eh) != 0 || load_segments(&b, eh, img, &dynph) != 0 ||
	    decode_dynamic(&b, dynph, img, needed, &nneeded) != 0)
		goto out;
	b.slot_of = calloc(b.nsyms + 1, sizeof(*b.slot_of));
	b.import_sym = calloc(b.nsyms + 1, sizeof(*b.import_sym));
	if (b.slot_of == NULL || b.import_sym == NULL) {
		fail(err, errlen, "%s: out of memory", so_path);
		goto out;
	}
	if (relocate(&b, img, 0) != 0 || layout_table(&b, img, needed, nneeded) != 0 ||
	    relocate(&b, img, 1) != 0)
		goto out;
	rc = 0;
out:
	free(b.file);
	free(b.slot_of);
	free(b.import_sym);
	return rc;
}

void *ldr_resolve_default(const char *name)
{
	return dlsym(RTLD_DEFAULT, name);
}

/*
 * The per-process import cache. An import's address depends only on the process (where its libc and
 * runtime are), never on the NF, so a pool process resolves each name once — dlsym(RTLD_DEFAULT) walks
 * every loaded object, about 1–2 µs per name in a DPDK process with ~60 libraries — and every later
 * mapping of any NF binds from here. Only ldr_bind's default resolver is cached; a caller's resolver is
 * called every time. Open addressing on the name's hash; names are the image's .dynstr strings, so the
 * cache keeps its own copies (images are unmapped again).
 */
#define CACHE_SLOTS 1024
static struct cache_ent {
	uint64_t hash;
	char *name;
	void *addr;
} cache[CACHE_SLOTS];
static unsigned int cache_used;
static const char *needed_done[8];
static unsigned int nneeded_done;

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h | 1;
}

static void *resolve_cached(const char *name)
{
	uint64_t h = name_hash(name);
	unsigned int i = (unsigned int)h & (CACHE_SLOTS - 1);
	void *addr;

	for (; cache[i].hash; i = (i + 1) & (CACHE_SLOTS - 1))
		if (cache[i].hash == h && !strcmp(cache[i].name, name))
			return cache[i].addr;
	addr = dlsym(RTLD_DEFAULT, name);
	if (addr && cache_used < CACHE_SLOTS / 2) { /* keep it sparse; beyond that, resolve uncached */
		cache[i].name = strdup(name);
		if (cache[i].name) {
			cache[i].addr = addr;
			cache[i].hash = h;
			cache_used++;
		}
	}
	return addr;
}

int ldr_prewarm(const struct ldr_image *img, int memfd, off_t fd_off)
{
	const uint64_t *names = (const uint64_t *)(img->base + img->names_off);
	void *want = (void *)img->base, *p;
	unsigned int i;

	/* the names are in the image: map it read-only for a moment (nothing is bound or run) */
	p = mmap(want, img->size, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, memfd, fd_off);
	if (p == MAP_FAILED || p != want) {
		if (p != MAP_FAILED)
			munmap(p, img->size);
		return -1;
	}
	for (i = 0; i < img->nimports; i++)
		resolve_cached((const char *)names[i]);
	munmap(want, img->size);
	return 0;
}

/* DT_NEEDED libraries stay loaded once a mapped NF needed them: skip dlopen's lock and search after. */
static int load_needed(const char *name, char *err, size_t errlen)
{
	unsigned int i;

	for (i = 0; i < nneeded_done; i++)
		if (!strcmp(needed_done[i], name))
			return 0;
	if (dlopen(name, RTLD_NOW | RTLD_GLOBAL) == NULL)
		return fail(err, errlen, "cannot load %s: %s", name, dlerror());
	if (nneeded_done < sizeof(needed_done) / sizeof(needed_done[0]))
		needed_done[nneeded_done++] = strdup(name);
	return 0;
}

/* One mapping at a fixed address that must be free: MAP_FIXED_NOREPLACE, so nothing of the process is
 * ever replaced, and no existing mapping is split — which would cost a TLB shootdown to every CPU the
 * (multi-threaded, DPDK) process ran on: several µs per call on a KVM guest. */
static int map_at(uintptr_t addr, uint64_t len, int prot, int flags, int fd, off_t off)
{
	void *p = mmap((void *)addr, len, prot, flags | MAP_FIXED_NOREPLACE, fd, off);

	if (p == MAP_FAILED)
		return -1;
	if (p != (void *)addr) { /* a kernel older than 4.17 ignores NOREPLACE */
		munmap(p, len);
		errno = EEXIST;
		return -1;
	}
	return 0;
}

/* Load the needed libraries and write this process's address of every import into the (writable,
 * private) jump table entries. */
static int fill_entries(const struct ldr_image *img, void *(*resolve)(const char *name), char *err, size_t errlen)
{
	const uint64_t *names = (const uint64_t *)(img->base + img->names_off);
	const uint64_t *needed = (const uint64_t *)(img->base + img->needed_off);
	uint64_t *entries = (uint64_t *)(img->base + img->entries_off);
	unsigned int i;

	if (resolve == NULL || resolve == ldr_resolve_default)
		resolve = resolve_cached;
	for (i = 0; i < img->nneeded; i++)
		if (load_needed((const char *)needed[i], err, errlen) != 0)
			return -1;
	for (i = 0; i < img->nimports; i++) {
		void *addr = resolve((const char *)names[i]);

		if (addr == NULL)
			return fail(err, errlen, "unresolved import %s", (const char *)names[i]);
		entries[i] = (uint64_t)(uintptr_t)addr;
	}
	return 0;
}

int ldr_bind(const struct ldr_image *img, void *(*resolve)(const char *name), char *err, size_t errlen)
{
	uint64_t *entries = (uint64_t *)(img->base + img->entries_off);

	/* a private anonymous page at the fixed address: this process's addresses never reach the
	 * shared region */
	if (map_at((uintptr_t)entries, img->entries_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		   0) != 0)
		return fail(err, errlen, "cannot map the jump table at %p: %s", (void *)entries, strerror(errno));
	if (fill_entries(img, resolve, err, errlen) != 0) {
		munmap(entries, img->entries_len);
		return -1;
	}
	if (mprotect(entries, img->entries_len, PROT_READ) != 0) {
		munmap(entries, img->entries_len);
		return fail(err, errlen, "mprotect jump table: %s", strerror(errno));
	}
	return 0;
}

/*
 * The compact layout: three mappings instead of one per segment plus an mprotect per protected range.
 * The image's layout is [read-only and code segments][RELRO][writable data + bss][jump table entries]
 * [trampolines]; the first two map as one shared read+exec mapping (as every Linux object was laid out
 * before binutils 2.31's separate-code: read-only data is executable, nothing is writable and
 * executable), data + bss + entries as one private writable mapping (entries stay writable, like a
 * lazily bound GOT), the trampolines as one shared read+exec mapping. Each mmap in a DPDK process on
 * this VM costs ~3–4 µs, so this takes startup from ~30 µs to ~10 µs (docs/startup.md). Used when the
 * image has that shape (one writable segment, last, RELRO its leading pages or none); otherwise, or
 * with LDR_STRICT=1 in the environment, the strict per-segment mapping below.
 */
static int compact_shape(const struct ldr_image *img, unsigned int *rw)
{
	unsigned int i, nrw = 0;

	for (i = 0; i < img->nsegs; i++)
		if (img->seg[i].prot & PROT_WRITE) {
			*rw = i;
			nrw++;
		}
	if (nrw != 1 || *rw != img->nsegs - 1)
		return 0;
	if (img->relro_len > 0 && (img->relro_off != img->seg[*rw].off || img->relro_len > img->seg[*rw].len))
		return 0;
	return img->seg[*rw].off + img->seg[*rw].len == img->entries_off &&
	       (img->tramp_len == 0 || img->entries_off + img->entries_len == img->tramp_off);
}

static int map_compact(const struct ldr_image *img, unsigned int rw, int memfd, off_t fd_off,
		       void *(*resolve)(const char *name), char *err, size_t errlen)
{
	uint64_t shared_end = img->seg[rw].off + img->relro_len;
	uint64_t priv_len = img->entries_off + img->entries_len - shared_end;

	if (map_at(img->base, shared_end, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_POPULATE, memfd, fd_off) != 0)
		return fail(err, errlen, "cannot map the image's shared part at %#lx: %s", (unsigned long)img->base,
			    strerror(errno));
	if (map_at(img->base + shared_end, priv_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_POPULATE, memfd,
		   fd_off + (off_t)shared_end) != 0) {
		fail(err, errlen, "cannot map the image's data at %#lx: %s", (unsigned long)(img->base + shared_end),
		     strerror(errno));
		munmap((void *)img->base, shared_end);
		return -1;
	}
	if (img->tramp_len && map_at(img->base + img->tramp_off, img->tramp_len, PROT_READ | PROT_EXEC,
				     MAP_SHARED | MAP_POPULATE, memfd, fd_off + (off_t)img->tramp_off) != 0) {
		fail(err, errlen, "cannot map the trampolines: %s", strerror(errno));
		munmap((void *)img->base, img->tramp_off);
		return -1;
	}
	if (fill_entries(img, resolve, err, errlen) != 0) {
		munmap((void *)img->base, img->size);
		return -1;
	}
	ldr_run_init(img);
	return 0;
}

int ldr_map(const struct ldr_image *img, int memfd, off_t fd_off, void *(*resolve)(const char *name),
	    char *err, size_t errlen)
{
	static int strict = -1;
	uintptr_t done[LDR_MAX_SEGS + 2][2];
	unsigned int i, ndone = 0, rw;
	bool relro_mapped = false;

	if (strict < 0)
		strict = getenv("LDR_STRICT") && !strcmp(getenv("LDR_STRICT"), "1");
	if (!strict && compact_shape(img, &rw))
		return map_compact(img, rw, memfd, fd_off, resolve, err, errlen);

	/* Segments straight into their place, each in one mmap. Code and read-only data are shared with
	 * every other process; writable data is copy-on-write. RELRO needs no write after the build
	 * (relocations were applied there, imports go through the jump table), so when it is the leading
	 * pages of the writable segment it is mapped read-only (and shared) from the start instead of being
	 * mprotect()ed after binding. */
	for (i = 0; i < img->nsegs; i++) {
		const struct ldr_seg *s = &img->seg[i];
		uint64_t off = s->off, len = s->len;
		int prot = s->prot, flags = (s->prot & PROT_WRITE) ? MAP_PRIVATE : MAP_SHARED;

		if ((prot & PROT_WRITE) && img->relro_len > 0 && img->relro_off == off && img->relro_len <= len) {
			if (map_at(img->base + off, img->relro_len, PROT_READ, MAP_SHARED, memfd,
				   fd_off + (off_t)off) != 0) {
				fail(err, errlen, "cannot map RELRO at %#lx: %s", (unsigned long)(img->base + off),
				     strerror(errno));
				goto undo;
			}
			done[ndone][0] = img->base + off;
			done[ndone++][1] = img->relro_len;
			relro_mapped = true;
			off += img->relro_len;
			len -= img->relro_len;
			if (len == 0)
				continue;
		}
		if (map_at(img->base + off, len, prot, flags | MAP_POPULATE, memfd, fd_off + (off_t)off) != 0) {
			fail(err, errlen, "cannot map segment %u at %#lx: %s", i, (unsigned long)(img->base + off),
			     strerror(errno));
			goto undo;
		}
		done[ndone][0] = img->base + off;
		done[ndone++][1] = len;
	}
	if (img->tramp_len) { /* else they are in the code's last page, mapped with it */
		if (map_at(img->base + img->tramp_off, img->tramp_len, PROT_READ | PROT_EXEC,
			   MAP_SHARED | MAP_POPULATE, memfd, fd_off + (off_t)img->tramp_off) != 0) {
			fail(err, errlen, "cannot map the trampolines: %s", strerror(errno));
			goto undo;
		}
		done[ndone][0] = img->base + img->tramp_off;
		done[ndone++][1] = img->tramp_len;
	}
	if (ldr_bind(img, resolve, err, errlen) != 0)
		goto undo;
	if (!relro_mapped && img->relro_len > 0 &&
	    mprotect((void *)(img->base + img->relro_off), img->relro_len, PROT_READ) != 0) {
		fail(err, errlen, "mprotect RELRO: %s", strerror(errno));
		goto undo_all;
	}
	ldr_run_init(img);
	return 0;
undo_all:
	munmap((void *)(img->base + img->entries_off), img->entries_len);
undo:
	while (ndone > 0) {
		ndone--;
		munmap((void *)done[ndone][0], done[ndone][1]);
	}
	return -1;
}

void ldr_run_init(const struct ldr_image *img)
{
	const uint64_t *arr = (const uint64_t *)(img->base + img->init_array);
	unsigned int i;

	if (img->init != 0)
		((void (*)(void))(img->base + img->init))();
	for (i = 0; i < img->ninit_array; i++)
		if (arr[i] != 0 && arr[i] != (uint64_t)-1)
			((void (*)(void))arr[i])();
}

void *ldr_sym(const struct ldr_image *img, const char *name)
{
	const Elf64_Sym *syms = (const Elf64_Sym *)(img->base + img->symtab);
	const char *strtab = (const char *)(img->base + img->strtab);
	unsigned int i;

	for (i = 1; i < img->nsyms; i++) {
		if (syms[i].st_shndx == SHN_UNDEF || ELF64_ST_BIND(syms[i].st_info) == STB_LOCAL)
			continue;
		if (strcmp(strtab + syms[i].st_name, name) == 0)
			return (void *)(img->base + syms[i].st_value);
	}
	return NULL;
}

void ldr_unmap(const struct ldr_image *img)
{
	munmap((void *)img->base, img->size);
}
