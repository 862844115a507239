/*
 * alloc_count.h: counts heap allocations made while alloc_counting is set, so a test can prove that an
 * NF's handler never allocates (nf.h: handlers must not). alloc_count.c replaces the malloc family in the
 * test program and forwards to glibc's allocator.
 */
#ifndef NF_TEST_ALLOC_COUNT_H
#define NF_TEST_ALLOC_COUNT_H

extern int alloc_counting;
extern unsigned long alloc_count;

#endif
