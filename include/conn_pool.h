/* conn_pool.h - where connection records live: fixed-size, cache-line
 * aligned slots carved from 2 MiB chunks (huge pages where the kernel gives
 * them), recycled through a free list. conn_destroy() gives a pooled record
 * back, so whoever ends up owning a connection frees it as before. */
#ifndef TCPSTATE_CONN_POOL_H
#define TCPSTATE_CONN_POOL_H

#include <stddef.h>

#include "conn.h"

struct conn_pool;

/* An empty pool; NULL on out of memory. */
struct conn_pool *conn_pool_create(void);

/* A zeroed record; NULL on out of memory. */
struct conn *conn_pool_alloc(struct conn_pool *pool);

/* Give the record back (conn_destroy() calls this for pooled records). */
void conn_pool_free(struct conn *c);

/* The owner is done with the pool: its memory goes once every record taken
 * from it has been freed (a report may still hold some). NULL is a no-op. */
void conn_pool_release(struct conn_pool *pool);

#endif
