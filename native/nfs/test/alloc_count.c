/* alloc_count.c: see alloc_count.h. glibc lets a program replace malloc; these forward to glibc. */
#include <stddef.h>

#include "alloc_count.h"

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

int alloc_counting;
unsigned long alloc_count;

void *malloc(size_t n)
{
	alloc_count += (unsigned long)alloc_counting;
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	alloc_count += (unsigned long)alloc_counting;
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	alloc_count += (unsigned long)alloc_counting;
	return __libc_realloc(p, n);
}

void free(void *p) { __libc_free(p); }
