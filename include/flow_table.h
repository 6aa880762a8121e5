/* flow_table.h - connections by canonical 4-tuple, one entry per live
 * incarnation, each either a struct conn or a frozen one (conn_pack.h). An
 * open-addressing table of (hash, record) slots, so a lookup touches one slot
 * line and the record it finds, and a caller that knows the key early can
 * prefetch both (flow_table_prefetch). */
#ifndef TCPSTATE_FLOW_TABLE_H
#define TCPSTATE_FLOW_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "packet.h"

struct flow_table;
struct frozen_conn;

/* What the table holds for a key: at most one of the two is set. */
struct flow_entry {
	struct conn *conn;
	struct frozen_conn *frozen;
};

/* An empty table; NULL on out of memory. */
struct flow_table *flow_table_create(void);

/* Destroy the table and every connection still in it; NULL is a no-op. */
void flow_table_destroy(struct flow_table *ft);

/* Fill *k with the canonical key of p; *src_side is the key side (0/1) of its sender. */
void flow_key_make(const struct packet *p, struct flow_key *k, int *src_side);

/* Both at once: fills *k and *src_side as flow_key_make() does and
 * returns flow_key_hash(k). */
uint32_t flow_key_make_hash(const struct packet *p, struct flow_key *k, int *src_side);

/* The table's hash of a key (for the *_hashed calls and prefetching). */
uint32_t flow_key_hash(const struct flow_key *k);

/* The (not frozen) connection with this key, or NULL. */
struct conn *flow_table_find(struct flow_table *ft, const struct flow_key *k);

/* A guess read from the slots only: the first record whose hash is `hash`
 * and where it stood. Its key is not compared, so taking it costs no wait on
 * the record; it may be wrong, or out of date by the time it is used. */
struct flow_hint {
	void *rec;           /* NULL: no slot had the hash */
	uint32_t slot;
	uint32_t frozen;     /* rec is a struct frozen_conn */
};

/* The entry for this key, hash = flow_key_hash(k) computed earlier. A hint
 * (or NULL) taken for the same hash spares the probe when it still holds:
 * its slot still names its record, a live one with this key. */
struct flow_entry flow_table_lookup(struct flow_table *ft, const struct flow_key *k,
				    uint32_t hash, const struct flow_hint *hint);

/* Hint: a lookup of hash is coming; start fetching the slots it reads. */
void flow_table_prefetch(const struct flow_table *ft, uint32_t hash);

/* The guess for hash, for prefetching its record and for a later lookup. */
struct flow_hint flow_table_hint(const struct flow_table *ft, uint32_t hash);

/* The live connection a hint named, if its slot still holds it (the same
 * record, perhaps for another key that shares the hash), else NULL. */
struct conn *flow_table_hint_conn(const struct flow_table *ft, const struct flow_hint *hint);

/* The live connection a hint named if its slot still holds it and its key
 * is k: the table's entry for k. NULL otherwise. */
struct conn *flow_table_hint_check(const struct flow_table *ft, const struct flow_hint *hint,
				   const struct flow_key *k);

/* A count that changes whenever a live connection stops being the table's
 * entry for its key (removed, or frozen): a connection found while it had
 * one value is still the entry for its key while it keeps it. */
uint64_t flow_table_epoch(const struct flow_table *ft);

/* Insert c (its key must be set and absent from the table); false on out of
 * memory. The key's hash is kept in c->node.hash, which the calls below (and
 * flow_table_prefetch) take it from, and which freezing and thawing carry
 * from one record to the other. */
bool flow_table_add(struct flow_table *ft, struct conn *c);

/* Remove c from the table (does not free it). */
void flow_table_remove(struct flow_table *ft, struct conn *c);

/* c, in the table, is replaced by its frozen form f (same key); and back. */
void flow_table_freeze(struct flow_table *ft, struct conn *c, struct frozen_conn *f);
void flow_table_thaw(struct flow_table *ft, struct frozen_conn *f, struct conn *c);

/* Empty the table and hand over every entry in the table's own memory, so
 * that taking them all needs none more: *n entries, in no particular order,
 * at the start of an array of *bytes bytes that the caller gives back with
 * bigmem_free(). NULL, the table unchanged, when even an empty table's
 * slots cannot be had. */
struct flow_entry *flow_table_take(struct flow_table *ft, size_t *n, size_t *bytes);

/* Number of connections in the table. */
size_t flow_table_count(const struct flow_table *ft);

/* Iteration in no particular order: start with *pos = 0; false at the end.
 * The table must not change during the iteration. */
bool flow_table_next(const struct flow_table *ft, size_t *pos, struct flow_entry *e);

#endif
