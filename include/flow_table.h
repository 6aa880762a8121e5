/* flow_table.h - connections by canonical 4-tuple (uthash), one entry per
 * live incarnation. All uthash calls live in flow_table.c because it sets its
 * own HASH_FUNCTION. */
#ifndef TCPSTATE_FLOW_TABLE_H
#define TCPSTATE_FLOW_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"
#include "packet.h"

struct flow_table;

/* An empty table; NULL on out of memory. */
struct flow_table *flow_table_create(void);

/* Destroy the table and every connection still in it; NULL is a no-op. */
void flow_table_destroy(struct flow_table *ft);

/* Fill *k with the canonical key of p; *src_side is the key side (0/1) of its sender. */
void flow_key_make(const struct packet *p, struct flow_key *k, int *src_side);

/* The connection with this key, or NULL. */
struct conn *flow_table_find(struct flow_table *ft, const struct flow_key *k);

/* Insert c (its key must be set and absent from the table); false on out of memory. */
bool flow_table_add(struct flow_table *ft, struct conn *c);

/* Remove c from the table (does not free it). */
void flow_table_remove(struct flow_table *ft, struct conn *c);

/* Number of connections in the table. */
size_t flow_table_count(const struct flow_table *ft);

/* First connection for iteration (then c->hh.next); removal of the current
 * element during iteration is allowed if its next pointer was read first. */
struct conn *flow_table_first(const struct flow_table *ft);

#endif
