/* bigmem.h - large zeroed arrays straight from mmap, in huge pages where
 * the kernel gives them: at a million entries, an array on 4 KiB pages
 * pays a page fault every 4 KiB when first written and a TLB miss on
 * almost every random access. Under AddressSanitizer they come from
 * calloc instead, so overruns are still caught. */
#ifndef TCPSTATE_BIGMEM_H
#define TCPSTATE_BIGMEM_H

#include <stddef.h>

/* bytes of zeroed memory, page aligned; NULL on out of memory. */
void *bigmem_alloc(size_t bytes);

/* Give back what bigmem_alloc(bytes) returned; NULL is a no-op. */
void bigmem_free(void *p, size_t bytes);

#endif
