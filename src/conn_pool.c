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
 * (TIME_WAIT's minute runs out), so slabs empty out. Slabs are cut from
 * 2 MiB arenas: a flood packs three million records, and 64 KiB mappings
 * of their own were a sixth of its run. The arenas are not asked for huge
 * pages (the live records' chunks are): a packed record is written once
 * and read once, so it needs no TLB reach, and in a guest whose free
 * memory the hypervisor has taken back, a fresh huge page costs about
 * seven times what its 512 small pages cost. An emptied arena is unmapped
 * (one is kept for the next slabs), and free slabs in arenas that still
 * hold records give their pages back when they are many (slab_give), so
 * memory follows the records held, not the length of the capture. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "conn_pool.h"

/* Put node x first on the doubly linked list whose first node is *head,
 * and take it off, its links being the fields prev and next (the lists here
 * are of different types and link fields). */
#define LIST_PUSH(head, x, prev, next)                    \
	do {                                              \
		(x)->prev = NULL;                         \
		(x)->next = *(head);                      \
		if (*(head))                              \
			(*(head))->prev = (x);            \
		*(head) = (x);                            \
	} while (0)

#define LIST_UNLINK(head, x, prev, next)                  \
	do {                                              \
		if ((x)->prev)                            \
			(x)->prev->next = (x)->next;      \
		else                                      \
			*(head) = (x)->next;              \
		if ((x)->next)                            \
			(x)->next->prev = (x)->prev;      \
	} while (0)

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
/* A slot: the record and the room for changes the pool gives it
 * (conn_pool_create), in whole cache lines. The chunk header takes a
 * chunk's first slot. */
static size_t slot_bytes(uint32_t tl_inline)
{
	return (sizeof(struct conn) + tl_inline * sizeof(struct transition) + 63) / 64 * 64;
}

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

/* A 2 MiB-aligned mapping cut into ARENA_SLABS slabs. */
#define ARENA_BYTES ((size_t)2 << 20)
#define ARENA_SLABS (ARENA_BYTES / SLAB_BYTES)
#define ARENA_ALL_FREE ((uint32_t)-1)
_Static_assert(ARENA_SLABS == 32, "an arena's free slabs are the bits of a uint32_t");

struct arena {
	char *base;
	struct arena *prev, *next;  /* on the pool's list of arenas with a free slab */
	struct arena *all_prev, *all_next;  /* on the pool's list of all its arenas */
	uint32_t free;              /* bit i: slab i is free */
	uint32_t backed;            /* bit i: slab i is free and its pages are still there */
	uint8_t small_pages;        /* pages given back: no longer a huge page */
};

/* The first SLAB_HEAD bytes of a 64 KiB-aligned slab. */
struct slab {
	struct conn_pool *pool;
	struct slab *prev, *next;   /* on its class's list of slabs with room; a large
				     * record's, on the pool's list of them */
	struct free_slot *free;     /* slots given back */
	struct arena *arena;        /* where it was cut from; NULL: a mapping of its own */
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
	struct arena *arenas;     /* arenas with a free slab */
	struct arena *empty;      /* the one emptied arena kept, on that list too */
	struct arena *all;        /* every arena mapped (conn_pool_drop_packed) */
	struct slab *large;       /* every record too large for a slab class */
	struct packed_head *heads; /* under AddressSanitizer: every packed record */
	size_t packed_mapped;     /* bytes mapped for packed records, less pages given back */
	size_t slabs_used;        /* arena slabs holding records */
	size_t free_backed;       /* free arena slabs whose pages are still there */
	int released;             /* the owner is gone: free when nothing is live */
	size_t slot_bytes;        /* a record and its room for changes, in whole lines */
	uint8_t tl_inline;        /* changes that room takes (conn->tl_inline) */
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

/* 2 MiB, aligned so that one huge page can back it. */
static void *map_huge(void)
{
	void *a = map_aligned(CHUNK_BYTES, CHUNK_BYTES);

#ifdef MADV_HUGEPAGE
	if (a)
		madvise(a, CHUNK_BYTES, MADV_HUGEPAGE);
#endif
	return a;
}
#endif

struct conn_pool *conn_pool_create(uint32_t tl_inline)
{
	struct conn_pool *pool = calloc(1, sizeof(struct conn_pool));

	if (!pool)
		return NULL;
	if (tl_inline > UINT8_MAX)
		tl_inline = UINT8_MAX;
	pool->slot_bytes = slot_bytes(tl_inline);
	/* the lines' rounding may leave room for more */
	if (tl_inline)
		tl_inline = (uint32_t)((pool->slot_bytes - sizeof(struct conn)) / sizeof(struct transition));
	pool->tl_inline = (uint8_t)(tl_inline > UINT8_MAX ? UINT8_MAX : tl_inline);
	return pool;
}

static void pool_free_all(struct conn_pool *pool)
{
	struct chunk *ch = pool->chunks, *next;

	for (; ch; ch = next) {
		next = ch->next;
		munmap(ch, CHUNK_BYTES);
	}
#ifndef POOL_USE_MALLOC
	/* Nothing is live: every slab is free, so every arena is empty, and
	 * each but the one kept has been unmapped. */
	if (pool->empty) {
		munmap(pool->empty->base, ARENA_BYTES);
		free(pool->empty);
	}
#endif
	free(pool);
}

#ifdef POOL_USE_MALLOC
struct conn *conn_pool_alloc(struct conn_pool *pool)
{
	struct conn *c = calloc(1, pool->slot_bytes); /* not pooled: conn_destroy() frees it */

	if (c)
		c->tl_inline = pool->tl_inline;
	return c;
}
#else
/* Zero a record with a call to memset(), not inline: for a struct of this
 * size the compiler writes `rep stos`, whose start-up took 13 ns a record
 * in a microbenchmark against 4-9 ns for the C library's vector stores
 * (the record in L1 or L2, as the prefetch below leaves it), and a record
 * is zeroed for every connection made and every one thawed. The empty asm
 * hides the size from the compiler, so it cannot expand the call again. */
static void record_zero(struct conn *c)
{
	size_t n = sizeof(*c);

	__asm__("" : "+r"(n));
	memset(c, 0, n);
}

struct conn *conn_pool_alloc(struct conn_pool *pool)
{
	struct conn *c;

	if (pool->free) {
		c = (struct conn *)pool->free;
		pool->free = pool->free->next;
		/* A freed record is long out of the cache: fetch the next one
		 * now, its link and the lines its zeroing will write. */
		if (pool->free)
			for (size_t off = 0; off < pool->slot_bytes; off += 64)
				__builtin_prefetch((char *)pool->free + off, 1);
	} else {
		if (pool->bump == pool->bump_end) {
			struct chunk *ch = map_huge();

			if (!ch)
				return NULL;
			ch->pool = pool;
			ch->next = pool->chunks;
			pool->chunks = ch;
			pool->bump = (char *)ch + pool->slot_bytes;
			pool->bump_end = (char *)ch + CHUNK_BYTES / pool->slot_bytes * pool->slot_bytes;
		}
		c = (struct conn *)pool->bump;
		pool->bump += pool->slot_bytes;
	}
	record_zero(c);
	c->pooled = 1;
	c->tl_inline = pool->tl_inline;
	pool->live++;
	return c;
}
#endif

/* A pooled record's pool, from the header at the start of its chunk. */
static inline struct conn_pool *pool_of(const struct conn *c)
{
	return ((const struct chunk *)((uintptr_t)c & ~(uintptr_t)(CHUNK_BYTES - 1)))->pool;
}

void conn_pool_free(struct conn *c)
{
	struct conn_pool *pool = pool_of(c);
	struct free_slot *f = (struct free_slot *)c;

	f->next = pool->free;
	pool->free = f;
	if (--pool->live == 0 && pool->packed_live == 0 && pool->released)
		pool_free_all(pool);
}

/* Under AddressSanitizer each packed record is an allocation of its own,
 * after this header, which keeps them all on a list for
 * conn_pool_drop_packed(). */
struct packed_head {
	struct packed_head *prev, *next;
	struct conn_pool *pool;
	uint64_t pad_;            /* the record stays 16-byte aligned */
};

#ifdef POOL_USE_MALLOC
void *conn_pool_alloc_packed(struct conn_pool *pool, size_t n)
{
	struct packed_head *h = malloc(sizeof(*h) + (n ? n : 1));

	if (!h)
		return NULL;
	h->pool = pool;
	LIST_PUSH(&pool->heads, h, prev, next);
	pool->packed_live++;
	return h + 1;
}

void conn_pool_free_packed(void *p)
{
	struct packed_head *h;
	struct conn_pool *pool;

	if (!p)
		return;
	h = (struct packed_head *)p - 1;
	pool = h->pool;
	LIST_UNLINK(&pool->heads, h, prev, next);
	free(h);
	if (--pool->packed_live == 0 && pool->live == 0 && pool->released)
		pool_free_all(pool);
}

void conn_pool_drop_packed(struct conn_pool *pool)
{
	struct packed_head *h, *next;

	for (h = pool->heads; h; h = next) {
		next = h->next;
		free(h);
	}
	pool->heads = NULL;
	pool->packed_live = 0;
}
#else
static void room_push(struct slab **list, struct slab *s)
{
	LIST_PUSH(list, s, prev, next);
	s->listed = 1;
}

static void room_unlink(struct slab **list, struct slab *s)
{
	LIST_UNLINK(list, s, prev, next);
	s->prev = s->next = NULL;
	s->listed = 0;
}

static void arena_push(struct arena **list, struct arena *a)
{
	LIST_PUSH(list, a, prev, next);
}

static void arena_unlink(struct arena **list, struct arena *a)
{
	LIST_UNLINK(list, a, prev, next);
}

/* A free 64 KiB slab from an arena, mapping a new one if none has room;
 * *from: the arena. One whose pages are still there is taken first. */
static struct slab *slab_take(struct conn_pool *pool, struct arena **from)
{
	struct arena *a = pool->arenas;
	uint32_t bit;

	if (!a) {
		if (!(a = malloc(sizeof(*a))))
			return NULL;
		/* 2 MiB-aligned, but not asked for a huge page: packed
		 * records are written once and read once, so a huge page
		 * buys them no TLB reach, and under a hypervisor that has
		 * taken the guest's free memory back, touching a fresh huge
		 * page costs seven times what 512 small ones cost
		 * (bench/ROUNDS.md, the seventeenth round). */
		if (!(a->base = map_aligned(ARENA_BYTES, ARENA_BYTES))) {
			free(a);
			return NULL;
		}
		a->free = a->backed = ARENA_ALL_FREE;
		a->small_pages = 0;
		arena_push(&pool->arenas, a);
		LIST_PUSH(&pool->all, a, all_prev, all_next);
		pool->packed_mapped += ARENA_BYTES;
		pool->free_backed += ARENA_SLABS;
	}
	if (a == pool->empty)
		pool->empty = NULL;
	bit = a->free & a->backed ? a->free & a->backed : a->free;
	bit &= -bit;
	if (a->backed & bit) {
		a->backed &= ~bit;
		pool->free_backed--;
	} else {
		pool->packed_mapped += SLAB_BYTES;  /* its pages come back when written */
	}
	a->free &= ~bit;
	if (!a->free)
		arena_unlink(&pool->arenas, a);  /* full */
	pool->slabs_used++;
	*from = a;
	return (struct slab *)(a->base + (size_t)__builtin_ctz(bit) * SLAB_BYTES);
}

/* Free slabs whose pages are still there, in arenas that hold records too,
 * give their pages back. Runs of them go in one call. */
static void arenas_trim(struct conn_pool *pool)
{
	for (struct arena *a = pool->arenas; a; a = a->next) {
		uint32_t m = a->backed;

		if (a == pool->empty)
			continue;
		while (m) {
			unsigned lo = (unsigned)__builtin_ctz(m), n = 0;

			while (lo + n < ARENA_SLABS && (m >> (lo + n) & 1))
				n++;
			madvise(a->base + lo * SLAB_BYTES, n * SLAB_BYTES, MADV_DONTNEED);
#ifdef MADV_NOHUGEPAGE
			/* else khugepaged may fill the holes again to make it whole */
			if (!a->small_pages) {
				madvise(a->base, ARENA_BYTES, MADV_NOHUGEPAGE);
				a->small_pages = 1;
			}
#endif
			pool->packed_mapped -= n * SLAB_BYTES;
			pool->free_backed -= n;
			m &= n == ARENA_SLABS ? 0 : ~(((1u << n) - 1) << lo);
		}
		a->backed = 0;
	}
}

/* a off the list of all arenas, before it is unmapped */
static void arena_forget(struct conn_pool *pool, struct arena *a)
{
	LIST_UNLINK(&pool->all, a, all_prev, all_next);
}

/* Slab s, empty, back to its arena. An arena emptied is unmapped, but one
 * is kept for the next slabs. Free slabs in arenas that still hold records
 * keep their pages only while they are few: more than a quarter of the
 * slabs in use (and one arena's worth), and their pages go back too. */
static void slab_give(struct conn_pool *pool, struct slab *s)
{
	struct arena *a = s->arena;
	uint32_t bit = 1u << (((char *)s - a->base) / SLAB_BYTES);

	if (!a->free)
		arena_push(&pool->arenas, a);
	a->free |= bit;
	a->backed |= bit;
	pool->free_backed++;
	pool->slabs_used--;
	if (a->free != ARENA_ALL_FREE) {
		if (pool->free_backed > pool->slabs_used / 4 + 2 * ARENA_SLABS)
			arenas_trim(pool);
		return;
	}
	if (!pool->empty) {
		pool->empty = a;
		return;
	}
	arena_unlink(&pool->arenas, a);
	arena_forget(pool, a);
	munmap(a->base, ARENA_BYTES);
	pool->packed_mapped -= ARENA_BYTES - (size_t)__builtin_popcount(~a->backed) * SLAB_BYTES;
	pool->free_backed -= (size_t)__builtin_popcount(a->backed);
	free(a);
}

/* A new slab of one slot size (size 0: for one record of large bytes, in a
 * mapping of its own). */
static struct slab *slab_new(struct conn_pool *pool, uint32_t size, size_t large)
{
	size_t bytes = size ? SLAB_BYTES : (SLAB_HEAD + large + 4095) & ~(size_t)4095;
	struct arena *a = NULL;
	struct slab *s = size ? slab_take(pool, &a) : map_aligned(bytes, SLAB_BYTES);

	if (!s)
		return NULL;
	*s = (struct slab){ .pool = pool, .arena = a, .bump = SLAB_HEAD, .map_bytes = bytes,
			    .size = size };
	return s;
}

void *conn_pool_alloc_packed(struct conn_pool *pool, size_t n)
{
	size_t cls = n ? (n - 1) / PACKED_STEP : 0;
	struct slab *s;
	void *p;

	if (n > PACKED_MAX) {
		if (!(s = slab_new(pool, 0, n)))
			return NULL;
		room_push(&pool->large, s);
		s->live = 1;
		pool->packed_live++;
		pool->packed_mapped += s->map_bytes;
		return (char *)s + SLAB_HEAD;
	}
	if (!(s = pool->room[cls])) {
		if (!(s = slab_new(pool, (uint32_t)((cls + 1) * PACKED_STEP), 0)))
			return NULL;
		room_push(&pool->room[cls], s);
	}
	if (s->free) {
		p = s->free;
		s->free = s->free->next;
		if (s->free)   /* as conn_pool_alloc */
			__builtin_prefetch(s->free, 1);
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
		room_unlink(&pool->large, s);
		pool->packed_mapped -= s->map_bytes;
		munmap(s, s->map_bytes);
	} else if (--s->live == 0) {
		/* empty: back to its arena */
		if (s->listed)
			room_unlink(&pool->room[cls], s);
		slab_give(pool, s);
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

void conn_pool_drop_packed(struct conn_pool *pool)
{
	struct arena *a, *an;
	struct slab *s, *sn;

	for (a = pool->all; a; a = an) {
		an = a->all_next;
		munmap(a->base, ARENA_BYTES);
		free(a);
	}
	for (s = pool->large; s; s = sn) {
		sn = s->next;
		munmap(s, s->map_bytes);
	}
	for (size_t c = 0; c < PACKED_CLASSES; c++)
		pool->room[c] = NULL;
	pool->all = pool->arenas = pool->empty = NULL;
	pool->large = NULL;
	pool->packed_live = pool->packed_mapped = pool->slabs_used = pool->free_backed = 0;
}
#endif

size_t conn_pool_packed_mapped(const struct conn_pool *pool)
{
#ifdef POOL_USE_MALLOC
	(void)pool;
	return 0;
#else
	return pool->packed_mapped;
#endif
}

void conn_pool_release(struct conn_pool *pool)
{
	if (!pool)
		return;
	pool->released = 1;
	if (pool->live == 0 && pool->packed_live == 0)
		pool_free_all(pool);
}

