/* conn_pack.h - a connection packed into a few bytes while it is idle. Most
 * tracked connections are waiting: in TIME_WAIT for a minute, or a flood's
 * lone SYN for its check. Packed, such a record takes about a third of a live
 * one; the tracker unpacks it when a segment or a timer needs it. Packing is
 * lossless: a connection unpacked is the connection that was packed. */
#ifndef TCPSTATE_CONN_PACK_H
#define TCPSTATE_CONN_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"

/* The flow table and the idle lists hold either kind of record; node.frozen
 * says which. */
struct frozen_conn {
	struct idle_node node;
	uint64_t last_ns;    /* c->last_ns, for eviction without unpacking */
	uint8_t data[];      /* the key, then the rest of the connection, packed (conn_pack.c) */
};

/* c packed into a new frozen record (last_ns and data; the node is the
 * caller's to set). NULL when c cannot be packed (it has a rare part, which
 * few connections need) or memory ran out. */
struct frozen_conn *conn_freeze(const struct conn *c);

/* The key of f. */
void frozen_conn_key(const struct frozen_conn *f, struct flow_key *k);

/* Unpack f into c, which must be zeroed (c->pooled and c->node are left as
 * they are). false if memory for the timeline ran out. */
bool conn_thaw(const struct frozen_conn *f, struct conn *c);

/* The connection id of f, without unpacking the rest. */
uint64_t frozen_conn_id(const struct frozen_conn *f);

/* Free f; NULL is a no-op. */
void frozen_conn_destroy(struct frozen_conn *f);

#endif
