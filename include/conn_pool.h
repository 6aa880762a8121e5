/* conn_pool.h - where connection records live: fixed-size, cache-line
 * aligned slots carved from 2 MiB chunks (huge pages where the kernel gives
 * them), recycled through a free list. conn_destroy() gives a pooled record
 * back, so whoever ends up owning a connection frees it as before. Packed
 * (frozen) records, of any size, come from 64 KiB slabs of 8-byte size
 * classes, without malloc's per-chunk header and 16-byte rounding, cut from
 * 2 MiB arenas (huge pages again). */
#ifndef TCPSTATE_CONN_POOL_H
#define TCPSTATE_CONN_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

struct conn_pool;

/* An empty pool; NULL on out of memory. Its records have room for at
 * least tl_inline changes of their timelines after them (conn.h,
 * CONN_TL_INLINE; 0: none, when no timeline is kept). */
struct conn_pool *conn_pool_create(uint32_t tl_inline);

/* A zeroed record but its c->pooled and c->tl_inline; NULL on out of memory. */
struct conn *conn_pool_alloc(struct conn_pool *pool);

/* Give the record back (conn_destroy() calls this for pooled records). */
void conn_pool_free(struct conn *c);

/* n bytes, 8-byte aligned, for a packed record; NULL on out of memory. */
void *conn_pool_alloc_packed(struct conn_pool *pool, size_t n);

/* Give a packed record back; NULL is a no-op. An emptied slab goes back to
 * its 2 MiB arena, an emptied arena to the system (one is kept for the next
 * slabs). */
void conn_pool_free_packed(void *p);

/* Give back every packed record still taken from the pool at once, as
 * they are no longer referred to (the end of a run, tracker_finish(), once
 * each has been unpacked): their slabs' arenas are unmapped whole, not
 * record by record, a slab header (a cache miss) each. */
void conn_pool_drop_packed(struct conn_pool *pool);
/* Bytes mapped for packed records now (0 where records come from malloc,
 * under AddressSanitizer). */
size_t conn_pool_packed_mapped(const struct conn_pool *pool);

/* The owner is done with the pool: its memory goes once every record taken
 * from it, packed ones too, has been freed (a report may still hold some).
 * NULL is a no-op. */
void conn_pool_release(struct conn_pool *pool);

#endif
