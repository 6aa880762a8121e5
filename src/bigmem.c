/* bigmem.c - see bigmem.h. */
#include <sys/mman.h>

#include "bigmem.h"

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
