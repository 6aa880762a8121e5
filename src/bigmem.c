/* bigmem.c - see bigmem.h. */
#include <stdlib.h>
#include <sys/mman.h>

#include "bigmem.h"

/* Under AddressSanitizer these arrays come from calloc, so an access past
 * their end is still caught (as conn_pool.c does for its records). */
#if defined(__SANITIZE_ADDRESS__)
#define BIGMEM_USE_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BIGMEM_USE_MALLOC 1
#endif
#endif

#ifdef BIGMEM_USE_MALLOC
void *bigmem_alloc(size_t bytes)
{
	return calloc(1, bytes ? bytes : 1);
}

void bigmem_free(void *p, size_t bytes)
{
	(void)bytes;
	free(p);
}
#else
void *bigmem_alloc(size_t bytes)
{
	void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	if (bytes >= ((size_t)2 << 20))
		madvise(p, bytes, MADV_HUGEPAGE);
#endif
	return p;
}

void bigmem_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes ? bytes : 1);
}
#endif
