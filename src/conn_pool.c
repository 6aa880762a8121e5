/* conn_pool.c - connection records in 2 MiB chunks. With a million
 * connections live, malloc'd records sit on a quarter of a million 4 KiB
 * pages, and almost every packet paid a TLB miss (a long page walk under a
 * hypervisor) on top of its cache misses; records in huge pages, aligned to
 * cache lines, with no allocator header between them, cost fewer of both.
 * A record finds its pool through the header at the start of its chunk, so
 * conn_destroy() needs no pool argument. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "conn_pool.h"

/* Under AddressSanitizer every record is its own allocation, so a use after
 * free of a connection is still caught (the fuzz and hostile suites). */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_USE_MALLOC 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_USE_MALLOC 1
#endif
#endif

#define CHUNK_BYTES ((size_t)2 << 20)
#define SLOT_BYTES (((sizeof(struct conn) + 63) / 64) * 64)
/* The chunk header takes the first slot. */
#define SLOTS_PER_CHUNK (CHUNK_BYTES / SLOT_BYTES - 1)

struct chunk {
	struct conn_pool *pool;
	struct chunk *next;
};

struct free_slot {
	struct free_slot *next;
};

struct conn_pool {
	struct chunk *chunks;
	struct free_slot *free;   /* records given back, reused first */
	char *bump, *bump_end;    /* the unused rest of the newest chunk */
	size_t live;
	int released;             /* the owner is gone: free when live drops to 0 */
};

_Static_assert(sizeof(struct chunk) <= 64, "chunk header must fit in one slot");

#ifndef POOL_USE_MALLOC
/* A 2 MiB-aligned chunk: mmap twice the size and trim, so the kernel can
 * back it with one huge page. */
static struct chunk *chunk_map(void)
{
	char *p = mmap(NULL, 2 * CHUNK_BYTES, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;
	size_t head;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + CHUNK_BYTES - 1) & ~(uintptr_t)(CHUNK_BYTES - 1);
	head = a - (uintptr_t)p;
	if (head)
		munmap(p, head);
	munmap((char *)a + CHUNK_BYTES, CHUNK_BYTES - head);
#ifdef MADV_HUGEPAGE
	madvise((void *)a, CHUNK_BYTES, MADV_HUGEPAGE);
#endif
	return (struct chunk *)a;
}
#endif

struct conn_pool *conn_pool_create(void)
{
	return calloc(1, sizeof(struct conn_pool));
}

static void pool_free_all(struct conn_pool *pool)
{
	struct chunk *ch = pool->chunks, *next;

	for (; ch; ch = next) {
		next = ch->next;
		munmap(ch, CHUNK_BYTES);
	}
	free(pool);
}

#ifdef POOL_USE_MALLOC
struct conn *conn_pool_alloc(struct conn_pool *pool)
{
	(void)pool;
	return calloc(1, sizeof(struct conn)); /* not pooled: conn_destroy() frees it */
}
#else
struct conn *conn_pool_alloc(struct conn_pool *pool)
{
	struct conn *c;

	if (pool->free) {
		c = (struct conn *)pool->free;
		pool->free = pool->free->next;
	} else {
		if (pool->bump == pool->bump_end) {
			struct chunk *ch = chunk_map();

			if (!ch)
				return NULL;
			ch->pool = pool;
			ch->next = pool->chunks;
			pool->chunks = ch;
			pool->bump = (char *)ch + SLOT_BYTES;
			pool->bump_end = pool->bump + SLOTS_PER_CHUNK * SLOT_BYTES;
		}
		c = (struct conn *)pool->bump;
		pool->bump += SLOT_BYTES;
	}
	*c = (struct conn){ .pooled = 1 };
	pool->live++;
	return c;
}
#endif

void conn_pool_free(struct conn *c)
{
	struct chunk *ch = (struct chunk *)((uintptr_t)c & ~(uintptr_t)(CHUNK_BYTES - 1));
	struct conn_pool *pool = ch->pool;
	struct free_slot *f = (struct free_slot *)c;

	f->next = pool->free;
	pool->free = f;
	if (--pool->live == 0 && pool->released)
		pool_free_all(pool);
}

void conn_pool_release(struct conn_pool *pool)
{
	if (!pool)
		return;
	pool->released = 1;
	if (pool->live == 0)
		pool_free_all(pool);
}

