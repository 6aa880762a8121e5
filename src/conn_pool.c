/* conn_pool.c - connection records in 2 MiB chunks. With a million
 * connections live, malloc'd records sit on a quarter of a million 4 KiB
 * pages, and almost every packet paid a TLB miss (a long page walk under a
 * hypervisor) on top of its cache misses; records in huge pages, aligned to
 * cache lines, with no allocator header between them, cost fewer of both.
 * A record finds its pool through the header at the start of its chunk, so
 * conn_destroy() needs no pool argument.
 *
 * Packed records (conn_pack.c) vary in size, 60 to 300 bytes and more with
 * a timeline, and a million of them wait in TIME_WAIT. malloc gives each an
 * 8-byte header and rounds it to 16; here they sit in 64 KiB slabs, one size
 * class every 8 bytes, found again the same way (the slab's header at its
 * 64 KiB-aligned start). They are freed about in the order they were made
 * (TIME_WAIT's minute runs out), so slabs empty out and are unmapped. */
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

/* Packed records: slabs, size classes, and the largest size a class takes
 * (a larger record gets a mapping of its own, a "slab" of one). */
#define SLAB_BYTES ((size_t)64 << 10)
#define PACKED_STEP 8
#define PACKED_MAX 1024
#define PACKED_CLASSES (PACKED_MAX / PACKED_STEP)

struct chunk {
	struct conn_pool *pool;
	struct chunk *next;
};

struct free_slot {
	struct free_slot *next;
};

/* The first SLAB_HEAD bytes of a 64 KiB-aligned slab. */
struct slab {
	struct conn_pool *pool;
	struct slab *prev, *next;   /* on its class's list of slabs with room */
	struct free_slot *free;     /* slots given back */
	size_t bump;                /* offset of the first slot never used */
	size_t map_bytes;           /* the mapping's size */
	uint32_t size;              /* slot size; 0: one large record */
	uint32_t live;              /* slots in use */
	uint8_t listed;             /* on the list of slabs with room */
};

#define SLAB_HEAD ((sizeof(struct slab) + 15) & ~(size_t)15)

struct conn_pool {
	struct chunk *chunks;
	struct free_slot *free;   /* records given back, reused first */
	char *bump, *bump_end;    /* the unused rest of the newest chunk */
	size_t live;
	size_t packed_live;       /* packed records not yet given back */
	struct slab *room[PACKED_CLASSES];   /* per class, slabs with a free slot */
	struct slab *spare[PACKED_CLASSES];  /* per class, one emptied slab kept */
	int released;             /* the owner is gone: free when nothing is live */
};

_Static_assert(sizeof(struct chunk) <= 64, "chunk header must fit in one slot");

#ifndef POOL_USE_MALLOC
/* bytes at an align-aligned address: mmap align more and trim. A 2 MiB
 * chunk so aligned can be backed by one huge page. */
static void *map_aligned(size_t bytes, size_t align)
{
	char *p = mmap(NULL, bytes + align, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;
	size_t head;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
	head = a - (uintptr_t)p;
	if (head)
		munmap(p, head);
	munmap((char *)a + bytes, align - head);
	return (void *)a;
}

static struct chunk *chunk_map(void)
{
	void *a = map_aligned(CHUNK_BYTES, CHUNK_BYTES);

#ifdef MADV_HUGEPAGE
	if (a)
		madvise(a, CHUNK_BYTES, MADV_HUGEPAGE);
#endif
	return a;
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
#ifndef POOL_USE_MALLOC
	/* nothing is live: every other slab has been unmapped */
	for (int i = 0; i < PACKED_CLASSES; i++)
		if (pool->spare[i])
			munmap(pool->spare[i], pool->spare[i]->map_bytes);
#endif
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
	if (--pool->live == 0 && pool->packed_live == 0 && pool->released)
		pool_free_all(pool);
}

#ifdef POOL_USE_MALLOC
void *conn_pool_alloc_packed(struct conn_pool *pool, size_t n)
{
	(void)pool;
	return malloc(n ? n : 1);
}

void conn_pool_free_packed(void *p)
{
	free(p);
}
#else
static void room_push(struct slab **list, struct slab *s)
{
	s->prev = NULL;
	s->next = *list;
	if (*list)
		(*list)->prev = s;
	*list = s;
	s->listed = 1;
}

static void room_unlink(struct slab **list, struct slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*list = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->listed = 0;
}

/* A new slab of one slot size (size 0: for one record of large bytes). */
static struct slab *slab_map(struct conn_pool *pool, uint32_t size, size_t large)
{
	size_t bytes = size ? SLAB_BYTES : (SLAB_HEAD + large + 4095) & ~(size_t)4095;
	struct slab *s = map_aligned(bytes, SLAB_BYTES);

	if (!s)
		return NULL;
	*s = (struct slab){ .pool = pool, .bump = SLAB_HEAD, .map_bytes = bytes, .size = size };
	return s;
}

void *conn_pool_alloc_packed(struct conn_pool *pool, size_t n)
{
	size_t cls = n ? (n - 1) / PACKED_STEP : 0;
	struct slab *s;
	void *p;

	if (n > PACKED_MAX) {
		if (!(s = slab_map(pool, 0, n)))
			return NULL;
		s->live = 1;
		pool->packed_live++;
		return (char *)s + SLAB_HEAD;
	}
	if (!(s = pool->room[cls])) {
		if ((s = pool->spare[cls]))
			pool->spare[cls] = NULL;
		else if (!(s = slab_map(pool, (uint32_t)((cls + 1) * PACKED_STEP), 0)))
			return NULL;
		room_push(&pool->room[cls], s);
	}
	if (s->free) {
		p = s->free;
		s->free = s->free->next;
	} else {
		p = (char *)s + s->bump;
		s->bump += s->size;
	}
	s->live++;
	if (!s->free && s->bump + s->size > SLAB_BYTES)
		room_unlink(&pool->room[cls], s);  /* full */
	pool->packed_live++;
	return p;
}

void conn_pool_free_packed(void *p)
{
	struct slab *s = (struct slab *)((uintptr_t)p & ~(uintptr_t)(SLAB_BYTES - 1));
	struct conn_pool *pool;
	size_t cls;

	if (!p)
		return;
	pool = s->pool;
	cls = s->size / PACKED_STEP - 1;
	if (s->size == 0) {
		munmap(s, s->map_bytes);
	} else if (--s->live == 0) {
		/* empty: keep one per class for the next records, unmap the rest */
		if (s->listed)
			room_unlink(&pool->room[cls], s);
		if (pool->spare[cls]) {
			munmap(s, SLAB_BYTES);
		} else {
			s->free = NULL;
			s->bump = SLAB_HEAD;
			pool->spare[cls] = s;
		}
	} else {
		struct free_slot *f = p;

		f->next = s->free;
		s->free = f;
		/* room again: the next records fill its holes */
		if (!s->listed)
			room_push(&pool->room[cls], s);
	}
	if (--pool->packed_live == 0 && pool->live == 0 && pool->released)
		pool_free_all(pool);
}
#endif

void conn_pool_release(struct conn_pool *pool)
{
	if (!pool)
		return;
	pool->released = 1;
	if (pool->live == 0 && pool->packed_live == 0)
		pool_free_all(pool);
}

